"""Corrupt inputs: truncated or garbled IDX, pickle, PNG/JPEG, safetensors, config.json, last.pt and
metrics.jsonl, each through the command that reads it. A file zoo needs and cannot use ends in one line that
names it, exit 2 (bad input) or 1 (runtime failure), never a traceback; a file zoo only appends to
(metrics.jsonl) or reads for convenience (config.json for `zoo eval`) must not stop the run."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import struct
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import invoke
from test_datasets_cifar10 import write_cifar
from test_datasets_mnist import write_mnist

AREA = "corrupt inputs"
RNG_SEED = 10


def truncate(fraction: float) -> Callable[[bytes], bytes]:
    return lambda data: data[: int(len(data) * fraction)]


def garble(start: int, length: int, seed: int = RNG_SEED) -> Callable[[bytes], bytes]:
    """Random bytes over ``data[start:start+length]`` (negative start: from the end)."""

    def apply(data: bytes) -> bytes:
        noise = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
        begin = start if start >= 0 else len(data) + start
        return data[:begin] + noise + data[begin + length :]

    return apply


EMPTY: Callable[[bytes], bytes] = lambda data: b""  # noqa: E731
TEXT: Callable[[bytes], bytes] = lambda data: b"this is not the file you are looking for\n"  # noqa: E731


def damage(path: Path, how: Callable[[bytes], bytes]) -> None:
    path.write_bytes(how(path.read_bytes()))


def check(ledger, kind: str, case: str, outcome, *, names: tuple[str, ...], codes=(1, 2)) -> None:
    problems = outcome.problems(codes=codes, names=names)
    ledger.record(AREA, kind, case, not problems, outcome.summary())
    assert not problems, problems


# -- IDX (MNIST) ------------------------------------------------------------------------------------------


def idx_header(magic_ndim: int, *dims: int) -> bytes:
    return bytes([0, 0, 0x08, magic_ndim]) + struct.pack(f">{len(dims)}I", *dims)


IDX_CASES: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "images truncated to half": ("train-images-idx3-ubyte", truncate(0.5)),
    "images truncated inside the header": ("train-images-idx3-ubyte", truncate(0.001)),
    "images empty": ("train-images-idx3-ubyte", EMPTY),
    "images magic garbled": ("train-images-idx3-ubyte", garble(0, 4)),
    "images dimensions garbled": ("train-images-idx3-ubyte", garble(4, 12)),
    "images data garbled and cut": ("train-images-idx3-ubyte", lambda d: garble(200, 300)(d)[:-7]),
    "images declaring 2**31 x 2**31 x 4 (an int64 product of 0)": (
        "train-images-idx3-ubyte",
        lambda d: idx_header(3, 1 << 31, 1 << 31, 4),
    ),
    "images declaring 4e9 x 4e9 x 4e9 with 10 bytes": (
        "train-images-idx3-ubyte",
        lambda d: idx_header(3, 4_000_000_000, 4_000_000_000, 4_000_000_000) + b"\x00" * 10,
    ),
    "labels truncated": ("train-labels-idx1-ubyte", truncate(0.7)),
    "labels of another shape (an images file)": (
        "train-labels-idx1-ubyte",
        lambda d: idx_header(3, 1, 1, 1) + b"x",
    ),
    "labels above 9": ("train-labels-idx1-ubyte", lambda d: d[:8] + b"\xff" * (len(d) - 8)),
    "labels fewer than images": ("train-labels-idx1-ubyte", lambda d: idx_header(1, 3) + b"\x01\x02\x03"),
    "test images text": ("t10k-images-idx3-ubyte", TEXT),
}
GZ_CASES: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "gzip truncated": ("train-images-idx3-ubyte.gz", truncate(0.5)),
    "gzip body garbled": ("train-images-idx3-ubyte.gz", garble(12, 40)),
    "gzip of a truncated IDX": (
        "train-images-idx3-ubyte.gz",
        lambda d: gzip.compress(gzip.decompress(d)[:-5]),
    ),
    "gzip header only": ("train-labels-idx1-ubyte.gz", lambda d: d[:10]),
}


@pytest.mark.parametrize("case", [*IDX_CASES, *GZ_CASES])
def test_a_damaged_idx_file_is_one_line_naming_it(case: str, tmp_path: Path, ledger) -> None:
    gz = case in GZ_CASES
    name, how = (GZ_CASES if gz else IDX_CASES)[case]
    write_mnist(tmp_path / "mnist", gz=gz)
    damage(tmp_path / "mnist" / name, how)
    outcome = invoke(
        ["train", "mnist", "lenet", "--data-dir", tmp_path, "--epochs", "1", "--out", tmp_path / "run"]
    )
    check(ledger, "IDX (MNIST)", f"{name}: {case}", outcome, names=(name,))


# -- pickle (CIFAR-10) ------------------------------------------------------------------------------------

PICKLE_CASES: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "batch truncated to half": ("data_batch_1", truncate(0.5)),
    "batch truncated to 10 bytes": ("data_batch_2", truncate(0.0007)),
    "batch empty": ("data_batch_3", EMPTY),
    "batch opcodes garbled": ("data_batch_4", garble(2, 64)),
    "batch tail garbled": ("data_batch_5", garble(-40, 40)),
    "test batch text": ("test_batch", TEXT),
    "meta truncated": ("batches.meta", truncate(0.6)),
    "meta garbled": ("batches.meta", garble(0, 30)),
    "meta a pickled list": ("batches.meta", lambda d: b"\x80\x02]q\x00(K\x01K\x02e."),
    "batch without data": ("data_batch_1", lambda d: b"\x80\x02}q\x00X\x06\x00\x00\x00labelsq\x01]q\x02s."),
}


@pytest.mark.parametrize("case", list(PICKLE_CASES))
def test_a_damaged_cifar10_batch_is_one_line_naming_it(case: str, tmp_path: Path, ledger) -> None:
    name, how = PICKLE_CASES[case]
    write_cifar(tmp_path / "cifar-10-batches-py")
    damage(tmp_path / "cifar-10-batches-py" / name, how)
    outcome = invoke(
        ["train", "cifar10", "lenet", "--data-dir", tmp_path, "--epochs", "1", "--out", tmp_path / "run"]
    )
    check(ledger, "pickle (CIFAR-10)", f"{name}: {case}", outcome, names=(name,))


# -- weights files and images: zoo predict, zoo eval, --init ----------------------------------------------


def image_bytes(fmt: str, size: tuple[int, int] = (40, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width × height pixels over a few bytes of data: a decompression bomb."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


IMAGE_CASES: dict[str, Callable[[], bytes]] = {
    "PNG truncated to half": lambda: truncate(0.5)(image_bytes("PNG")),
    "PNG signature garbled": lambda: garble(0, 8)(image_bytes("PNG")),
    "PNG chunk data garbled": lambda: garble(40, 60)(image_bytes("PNG")),
    "PNG declaring 100000 x 100000 pixels": lambda: png_declaring(100_000, 100_000),
    "JPEG truncated to a third": lambda: truncate(0.33)(image_bytes("JPEG")),
    "JPEG header garbled": lambda: garble(2, 40)(image_bytes("JPEG")),
    "JPEG of 0 bytes": lambda: b"",
    "text named .jpg": lambda: TEXT(b""),
}


@pytest.mark.parametrize("case", list(IMAGE_CASES))
def test_a_damaged_image_given_to_predict_is_one_line_naming_it(
    case: str, tmp_path: Path, weights, ledger
) -> None:
    suffix = ".png" if case.startswith("PNG") else ".jpg"
    good = tmp_path / "good.png"
    good.write_bytes(image_bytes("PNG"))
    bad = tmp_path / f"damaged{suffix}"
    bad.write_bytes(IMAGE_CASES[case]())
    outcome = invoke(["predict", weights, good, bad])
    check(ledger, "PNG/JPEG", f"zoo predict: {case}", outcome, names=(bad.name,))


def write_tree(root: Path, n: int = 6) -> None:
    for split in ("train", "test"):
        for label in ("a", "b"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                (folder / f"{i}.png").write_bytes(image_bytes("PNG", (16, 16)))


def test_a_damaged_image_in_a_tree_is_skipped_with_a_warning_naming_it(tmp_path: Path, ledger) -> None:
    write_tree(tmp_path / "tree")
    damage(tmp_path / "tree" / "train" / "a" / "3.png", truncate(0.4))
    # in-process, pytest records Python warnings instead of letting them reach stderr: collect them too
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = invoke(
            [
                "train",
                "imagefolder",
                "lenet",
                "--data-dir",
                tmp_path / "tree",
                "--epochs",
                "1",
                "--out",
                tmp_path / "run",
            ],
            env={"ZOO_CACHE": str(tmp_path / "cache")},
            timeout=600,
        )
    problems = outcome.problems(codes=(0,))
    if "3.png" not in outcome.err + "".join(str(w.message) for w in caught):
        problems.append("the warning does not name the damaged image")
    ledger.record(
        AREA, "PNG/JPEG", "image tree with one truncated PNG: skipped, named", not problems, outcome.summary()
    )
    assert not problems, problems


def test_a_tree_of_only_damaged_images_is_one_line(tmp_path: Path, ledger) -> None:
    write_tree(tmp_path / "tree", n=2)
    for png in (tmp_path / "tree").rglob("*.png"):
        damage(png, garble(0, 16))
    outcome = invoke(
        [
            "train",
            "imagefolder",
            "lenet",
            "--data-dir",
            tmp_path / "tree",
            "--epochs",
            "1",
            "--out",
            tmp_path / "run",
        ],
        env={"ZOO_CACHE": str(tmp_path / "cache")},
    )
    check(ledger, "PNG/JPEG", "image tree of garbled PNGs only", outcome, names=("tree",))


SAFETENSORS_CASES: dict[str, Callable[[bytes], bytes]] = {
    "truncated inside the tensors": truncate(0.8),
    "truncated inside the header": truncate(0.004),
    "header JSON garbled": garble(12, 30),
    "empty": EMPTY,
    "text": TEXT,
    "card not JSON": lambda d: d.replace(b'"input_size":"[1, 32, 32]"', b'"input_size":"[1, 32, 3{]"'),
}


@pytest.mark.parametrize("use", ["eval", "predict", "init"])
@pytest.mark.parametrize("case", list(SAFETENSORS_CASES))
def test_a_damaged_safetensors_file_is_one_line_naming_it(
    case: str, use: str, tmp_path: Path, weights: Path, ledger
) -> None:
    damaged = tmp_path / "model.safetensors"
    shutil.copy(weights, damaged)
    damage(damaged, SAFETENSORS_CASES[case])
    assert damaged.read_bytes() != weights.read_bytes()
    image = tmp_path / "x.png"
    image.write_bytes(image_bytes("PNG"))
    args = {
        "eval": ["eval", damaged],
        "predict": ["predict", damaged, image],
        "init": ["train", "digits", "lenet", "--init", damaged, "--epochs", "1", "--out", tmp_path / "run"],
    }[use]
    outcome = invoke(args, timeout=300)
    if use == "init" and case == "card not JSON":  # --init reads tensors only: the card is not needed
        check(
            ledger, "safetensors", f"zoo {use}: {case} (tensors intact: used)", outcome, names=(), codes=(0,)
        )
        return
    check(ledger, "safetensors", f"zoo {use}: {case}", outcome, names=(damaged.name,))


# -- a run directory: config.json, last.pt, metrics.jsonl -------------------------------------------------


class StopAfterFirstEpoch:
    def on_epoch_end(self, trainer, metrics) -> None:
        trainer.stop_signals.request()  # what Ctrl-C does: saved at the next step, resumable


@pytest.fixture(scope="module")
def half_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits/lenet run of 2 epochs stopped (as by Ctrl-C) early in the second: resumable."""
    from zoo_core.train.config import TrainConfig
    from zoo_core.train.trainer import Trainer, TrainingInterrupted

    run = tmp_path_factory.mktemp("half") / "run"
    cfg = TrainConfig(
        dataset="digits", model="lenet", epochs=2, batch_size=64, tensorboard=False, log_every=5
    )
    with pytest.raises(TrainingInterrupted):
        Trainer(cfg, run, callbacks=[StopAfterFirstEpoch()]).fit()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    return run


CONFIG_CASES: dict[str, Callable[[bytes], bytes]] = {
    "truncated": truncate(0.5),
    "garbled": garble(20, 40),
    "empty": EMPTY,
    "a JSON list": lambda d: b"[1, 2, 3]",
    "without model": lambda d: json.dumps({k: v for k, v in json.loads(d).items() if k != "model"}).encode(),
    "epochs a string": lambda d: json.dumps({**json.loads(d), "epochs": "three"}).encode(),
    "not UTF-8": lambda d: b"\xff\xfe" + d,
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_a_damaged_config_json_on_resume_is_one_line_naming_it(
    case: str, tmp_path: Path, half_run: Path, ledger
) -> None:
    run = tmp_path / "run"
    shutil.copytree(half_run, run)
    damage(run / "config.json", CONFIG_CASES[case])
    outcome = invoke(["train", "--resume", run])
    check(ledger, "config.json", f"zoo train --resume: {case}", outcome, names=("config.json",))


def test_a_damaged_config_json_beside_weights_does_not_stop_eval(
    tmp_path: Path, half_run: Path, ledger
) -> None:
    run = tmp_path / "run"
    shutil.copytree(half_run, run)
    damage(run / "config.json", truncate(0.5))
    outcome = invoke(["eval", run, "--out", tmp_path / "confusion.png"], timeout=300)
    check(
        ledger,
        "config.json",
        "zoo eval: truncated (ignored, the weights' card is used)",
        outcome,
        names=(),
        codes=(0,),
    )


STATE_CASES: dict[str, Callable[[bytes], bytes]] = {
    "truncated to half": truncate(0.5),
    "zip directory garbled": garble(-60, 60),
    "empty": EMPTY,
    "text": TEXT,
}


@pytest.mark.parametrize("case", list(STATE_CASES))
def test_a_damaged_last_pt_on_resume_is_one_line_naming_it(
    case: str, tmp_path: Path, half_run: Path, ledger
) -> None:
    run = tmp_path / "run"
    shutil.copytree(half_run, run)
    (run / "previous.pt").unlink()  # the state before it, which a resume would fall back to
    damage(run / "last.pt", STATE_CASES[case])
    outcome = invoke(["train", "--resume", run])
    check(ledger, "last.pt", f"zoo train --resume: {case}", outcome, names=("last.pt",))


@pytest.mark.parametrize("case", list(STATE_CASES))
def test_a_damaged_last_pt_beside_previous_pt_resumes_from_it(
    case: str, tmp_path: Path, half_run: Path, ledger
) -> None:
    run = tmp_path / "run"
    shutil.copytree(half_run, run)
    damage(run / "last.pt", STATE_CASES[case])
    outcome = invoke(["train", "--resume", run], timeout=300)
    problems = outcome.problems(codes=(0,))
    warned = [line for line in outcome.err.splitlines() if line.startswith("zoo: warning:")]
    if not any("last.pt" in line and "resuming from" in line and "previous.pt" in line for line in warned):
        problems.append(f"no one-line warning naming last.pt and previous.pt: {outcome.err[-300:]!r}")
    ledger.record(
        AREA, "last.pt", f"zoo train --resume: {case}, previous.pt kept", not problems, outcome.summary()
    )
    assert not problems, problems


METRICS_CASES: dict[str, Callable[[bytes], bytes]] = {
    "last line cut mid-record (a crash while appending)": lambda d: d[: len(d) // 2],
    "garbled bytes": garble(5, 30),
    "empty": EMPTY,
    "deleted": EMPTY,
}


@pytest.mark.parametrize("case", list(METRICS_CASES))
def test_a_damaged_metrics_jsonl_does_not_stop_resume(
    case: str, tmp_path: Path, half_run: Path, ledger
) -> None:
    """zoo only appends to metrics.jsonl: a damaged one must not stop the run, and the lines it appends must
    each be whole JSON (a line cut short by a crash must not swallow the next)."""
    run = tmp_path / "run"
    shutil.copytree(half_run, run)
    if case == "deleted":
        (run / "metrics.jsonl").unlink()
    else:
        damage(run / "metrics.jsonl", METRICS_CASES[case])
    outcome = invoke(["train", "--resume", run], timeout=300)
    problems = outcome.problems(codes=(0,))
    lines = (run / "metrics.jsonl").read_text(errors="replace").splitlines()
    try:
        last = json.loads(lines[-1])
    except (IndexError, ValueError) as err:
        problems.append(f"the appended line is not JSON: {err}")
    else:
        if last.get("epoch") != 2:
            problems.append(f"the appended line is not epoch 2: {lines[-1][:100]}")
    ledger.record(AREA, "metrics.jsonl", f"zoo train --resume: {case}", not problems, outcome.summary())
    assert not problems, problems
