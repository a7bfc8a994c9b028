"""Hostile files: crafted pickles placed as CIFAR-10 batch files, a crafted last.pt handed to --resume,
safetensors files whose header lies, and crafted .pt files given to --init. Each must be refused with one
line naming the file, and a canary file proves that nothing in them ran. A control run loads every live
payload with plain ``pickle.loads`` in a child process, which does run it: the canaries can fire."""

from __future__ import annotations

import json
import os
import pickle
import posix
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from reliability_helpers import invoke, memory_ceiling
from test_datasets_cifar10 import write_cifar

AREA = "hostile data"
GIB = 1 << 30


class Reduce:
    """Pickles as ``fn(*args)``: what a crafted file asks the unpickler to call."""

    def __init__(self, fn: Callable, *args: object) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple:
        return (self.fn, self.args)


# -- a small pickle assembler, for the opcodes pickle.dumps never writes ----------------------------------


def text(s: str) -> bytes:  # BINUNICODE
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def glob(module: str, name: str) -> bytes:  # GLOBAL (protocols 0-3)
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def stack_glob(module: str, name: str) -> bytes:  # STACK_GLOBAL (protocol 4+)
    return b"".join(b"\x8c" + bytes([len(s)]) + s.encode() for s in (module, name)) + b"\x93"


P2 = b"\x80\x02"


def batch(data: object, labels: object = (0,)) -> dict:
    return {
        b"batch_label": b"x",
        b"labels": list(labels) if isinstance(labels, tuple) else labels,
        b"data": data,
    }


def shared_lists(depth: int, leaf: bytes) -> bytes:
    """A list of depth ``depth``, each level two references to the level below (memo gets): 2**depth leaves
    from a few hundred bytes, the 'billion laughs' of pickles."""
    out = b"](" + leaf * 2 + b"eq\x00"  # level 0 in memo 0
    for level in range(1, depth + 1):
        out += b"](h" + bytes([level - 1]) + b"h" + bytes([level - 1]) + b"eq" + bytes([level])
    return out


@dataclass
class Payload:
    kind: str  # the row of the report
    name: str
    target: str  # the CIFAR-10 file it replaces
    make: Callable[[Path], bytes]  # canary path -> file content
    live: bool = True  # plain pickle.loads runs it (checked by the control test)


def shell(c: Path) -> str:
    return f"touch {c}"


def code(c: Path) -> str:
    return f"open({str(c)!r}, 'w').close()"


def _object_array(c: Path) -> bytes:
    return pickle.dumps(batch(np.array([Reduce(os.system, shell(c)), 1], dtype=object)), protocol=2)


def _short_object_array(c: Path) -> bytes:
    # _reconstruct(ndarray, (0,), b'b') then BUILD with an object array of 1000 elements and a list of 3:
    # numpy 2.4 reads past the list and crashes the process
    array = (
        glob("numpy.core.multiarray", "_reconstruct")
        + glob("numpy", "ndarray")
        + b"K\x00\x85C\x01b\x87R"
        + b"(K\x01M\xe8\x03\x85"
        + glob("numpy", "dtype")
        + b"("
        + text("O")
        + b"tR\x89](NNNetb"
    )
    return P2 + b"}(" + text("data") + array + text("labels") + b"](K\x00eu."


def _codecs_chain(c: Path) -> bytes:
    inner = glob("_codecs", "encode") + b"(" + text("a" * (1 << 20)) + text("latin1") + b"tR"
    for _ in range(24):
        inner = glob("_codecs", "encode") + b"(" + inner + text("hex") + b"tR"
    return P2 + inner + b"."


def _ndarray_called(c: Path) -> bytes:
    shape = b"(J\x00\x00\x00\x10\x85"  # (2**28,)
    return P2 + glob("numpy", "ndarray") + shape + glob("numpy", "dtype") + text("O") + b"\x85RtR."


def _lying_rows(c: Path) -> bytes:
    honest = pickle.dumps(batch(np.zeros((1, 3072), np.uint8)), protocol=2)
    shape = b"K\x01M\x00\x0c\x86"  # the array state's shape (1, 3072)
    assert honest.count(shape) == 1
    return honest.replace(shape, b"\x8a\x05\x00\x10\xa5\xd4\xe8M\x00\x0c\x86")  # (10**12, 3072)


def _giant(opcode: bytes, size_format: str, size: int, proto: int = 4) -> Callable[[Path], bytes]:
    return lambda c: b"\x80" + bytes([proto]) + opcode + struct.pack(size_format, size) + b"abc."


PAYLOADS = [
    *[
        Payload(
            "__reduce__ to os.system",
            f"os.system, protocol {p}",
            "data_batch_1",
            lambda c, p=p: pickle.dumps(batch(Reduce(os.system, shell(c))), protocol=p),
        )
        for p in (2, 3, 4, 5)
    ],
    Payload(
        "__reduce__ to os.system",
        "posix.system, protocol 0 (text)",
        "data_batch_2",
        lambda c: pickle.dumps(batch(Reduce(posix.system, shell(c))), protocol=0),
    ),
    Payload(
        "exec / eval",
        "builtins.exec, protocol 3",
        "data_batch_3",
        lambda c: pickle.dumps(batch(Reduce(exec, code(c))), protocol=3),
    ),
    Payload(
        "exec / eval",
        "builtins.eval, protocol 4",
        "data_batch_4",
        lambda c: pickle.dumps(batch(Reduce(eval, code(c))), protocol=4),
    ),
    Payload(
        "subprocess",
        "subprocess.Popen, protocol 5",
        "data_batch_5",
        lambda c: pickle.dumps(batch(Reduce(subprocess.Popen, ["touch", str(c)])), protocol=5),
    ),
    Payload(
        "subprocess",
        "subprocess.check_call, protocol 2",
        "test_batch",
        lambda c: pickle.dumps(batch(Reduce(subprocess.check_call, ["touch", str(c)])), protocol=2),
    ),
    Payload(
        "getattr / __import__ chains",
        "getattr(__import__('os'), 'system')(cmd)",
        "data_batch_1",
        lambda c: (
            P2
            + glob("builtins", "getattr")
            + b"("
            + glob("builtins", "__import__")
            + b"("
            + text("os")
            + b"tR"
            + text("system")
            + b"tR("
            + text(shell(c))
            + b"tR."
        ),
    ),
    Payload(
        "getattr / __import__ chains",
        "__import__('os').system via STACK_GLOBAL and getattr",
        "data_batch_2",
        lambda c: (
            b"\x80\x04"
            + stack_glob("builtins", "getattr")
            + b"("
            + stack_glob("builtins", "__import__")
            + b"("
            + text("os")
            + b"tR"
            + text("system")
            + b"tR("
            + text(shell(c))
            + b"tR."
        ),
    ),
    Payload(
        "STACK_GLOBAL under protocols 2-5",
        "STACK_GLOBAL os.system inside a protocol-2 stream",
        "data_batch_3",
        lambda c: P2 + stack_glob("os", "system") + b"(" + text(shell(c)) + b"tR.",
    ),
    Payload(
        "STACK_GLOBAL under protocols 2-5",
        "STACK_GLOBAL posix.system, protocol 5 frame",
        "data_batch_4",
        lambda c: b"\x80\x05" + stack_glob("posix", "system") + b"(" + text(shell(c)) + b"tR.",
    ),
    Payload(
        "other call opcodes",
        "INST opcode (protocol 0) os.system",
        "data_batch_5",
        lambda c: b"(S'" + shell(c).encode() + b"'\nios\nsystem\n.",
    ),
    Payload(
        "other call opcodes",
        "OBJ opcode (protocol 1) os.system",
        "test_batch",
        lambda c: b"(" + glob("os", "system") + text(shell(c)) + b"o.",
    ),
    Payload(
        "other call opcodes",
        "NEWOBJ of subprocess.Popen",
        "data_batch_1",
        lambda c: P2 + glob("subprocess", "Popen") + b"(](" + text("touch") + text(str(c)) + b"et\x81.",
        live=False,  # NEWOBJ calls __new__ only
    ),
    Payload(
        "other call opcodes",
        "copyreg._reconstructor (a class instance, protocol 2)",
        "data_batch_2",
        lambda c: P2 + glob("copyreg", "_reconstructor") + b"(" + glob("os", "system") + b"NNtR.",
        live=False,
    ),
    Payload(
        "other call opcodes",
        "persistent id (BINPERSID)",
        "data_batch_3",
        lambda c: P2 + text(shell(c)) + b"Q.",
        live=False,
    ),
    Payload(
        "other call opcodes",
        "extension code (EXT1)",
        "data_batch_4",
        lambda c: P2 + b"\x82\x01.",
        live=False,
    ),
    Payload(
        "other call opcodes",
        "torch._utils._rebuild_tensor_v2",
        "data_batch_5",
        lambda c: P2 + glob("torch._utils", "_rebuild_tensor_v2") + b"(tR.",
        live=False,
    ),
    Payload("numpy object arrays", "object array holding os.system", "data_batch_1", _object_array),
    Payload(
        "numpy object arrays",
        "object array of plain values (no global at all)",
        "data_batch_2",
        lambda c: pickle.dumps(batch(np.array([1, "a", None], dtype=object)), protocol=2),
        live=False,
    ),
    Payload(
        "numpy object arrays",
        "object array whose list is shorter than its shape (crashes numpy)",
        "data_batch_3",
        _short_object_array,
        live=False,
    ),
    Payload(
        "numpy object arrays",
        "numpy.ndarray called directly: 2**28 objects (2 GiB, filled)",
        "data_batch_4",
        _ndarray_called,
        live=False,
    ),
    Payload(
        "nested pickle.loads",
        "pickle.loads of an os.system pickle",
        "data_batch_5",
        lambda c: pickle.dumps(
            batch(Reduce(pickle.loads, pickle.dumps(Reduce(os.system, shell(c))))), protocol=2
        ),
    ),
    Payload(
        "nested pickle.loads",
        "_pickle.loads via STACK_GLOBAL, protocol 4",
        "test_batch",
        lambda c: pickle.dumps(Reduce(pickle.loads, pickle.dumps(Reduce(exec, code(c)))), protocol=4),
    ),
    Payload(
        "payload only in batches.meta",
        "os.system in label_names",
        "batches.meta",
        lambda c: pickle.dumps({b"label_names": Reduce(os.system, shell(c))}, protocol=2),
    ),
    Payload(
        "payload only in batches.meta",
        "builtins.eval as the whole meta file",
        "batches.meta",
        lambda c: P2 + glob("builtins", "eval") + text(code(c)) + b"\x85R.",
    ),
    Payload(
        "giant declared lengths",
        "BINBYTES8 of 2**40 bytes",
        "data_batch_1",
        _giant(b"\x8e", "<Q", 1 << 40),
        live=False,
    ),
    Payload(
        "giant declared lengths",
        "BINUNICODE8 of 2**62 bytes",
        "data_batch_2",
        _giant(b"\x8d", "<Q", 1 << 62),
        live=False,
    ),
    Payload(
        "giant declared lengths",
        "BINBYTES of 2**32-1 bytes",
        "data_batch_3",
        _giant(b"B", "<I", (1 << 32) - 1, proto=3),
        live=False,
    ),
    Payload(
        "giant declared lengths",
        "LONG4 of 2**31-1 bytes",
        "data_batch_4",
        _giant(b"\x8b", "<i", (1 << 31) - 1, proto=2),
        live=False,
    ),
    Payload(
        "giant declared lengths",
        "FRAME of 2**40 bytes",
        "data_batch_5",
        _giant(b"\x95", "<Q", 1 << 40),
        live=False,
    ),
    Payload(
        "giant declared lengths",
        "array state declaring 10**12 rows over 3 KB of data",
        "test_batch",
        _lying_rows,
        live=False,
    ),
    Payload(
        "giant declared lengths",
        "_codecs.encode chained to hex 24 times (16 TiB from 1 MiB)",
        "data_batch_1",
        _codecs_chain,
        live=False,
    ),
    Payload(
        "giant declared lengths",
        "labels as 2**40 shared references (billion laughs)",
        "data_batch_2",
        lambda c: (
            P2
            + b"}("
            + text("data")
            + pickle.dumps(np.zeros((1, 3072), np.uint8), protocol=2)[2:-1]
            + text("labels")
            + shared_lists(40, b"K\x00")
            + b"u."
        ),
        live=False,
    ),
    Payload(
        "giant declared lengths",
        "label_names as 2**40 shared references (billion laughs)",
        "batches.meta",
        lambda c: P2 + b"}(" + text("label_names") + b"](" + shared_lists(40, text("cat")) + b"eu.",
        live=False,
    ),
]
IDS = [f"{p.target}:{p.name}" for p in PAYLOADS]


def cifar_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_cifar(root / "cifar-10-batches-py")
    return root


@pytest.fixture(scope="module")
def warm() -> None:
    """Import everything the command needs once, outside the memory ceiling."""
    invoke(["train", "cifar10", "lenet", "--data-dir", "/nonexistent/zoo-data", "--epochs", "1"])


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_a_crafted_cifar10_file_is_refused_in_one_line_and_nothing_runs(
    payload: Payload, tmp_path: Path, ledger, warm
) -> None:
    root = cifar_root(tmp_path)
    canary = tmp_path / "CANARY"
    (root / "cifar-10-batches-py" / payload.target).write_bytes(payload.make(canary))
    run = tmp_path / "run"
    args = [
        "train",
        "cifar10",
        "lenet",
        "--data-dir",
        root,
        "--epochs",
        "1",
        "--out",
        run,
        "--no-tensorboard",
    ]
    with memory_ceiling(3 * GIB):
        outcome = invoke(args, timeout=240)
    problems = outcome.problems(codes=(1, 2), names=(payload.target,))
    if canary.exists():
        problems.append("THE PAYLOAD RAN (canary file created)")
    if (run / "last.pt").exists():
        problems.append("training started")
    ledger.record(AREA, payload.kind, f"{payload.target}: {payload.name}", not problems, outcome.summary())
    assert not problems, problems


LIVE_CHECK = r"""
import json, os, pickle, sys, time
results = {}
for path, canary in json.loads(sys.argv[1]):
    pid = os.fork()
    if pid == 0:
        try:
            pickle.loads(open(path, "rb").read())
        except BaseException:
            pass
        os._exit(0)
    os.waitpid(pid, 0)
    for _ in range(50):  # a spawned `touch` may finish after the child
        if os.path.exists(canary):
            break
        time.sleep(0.1)
    results[path] = os.path.exists(canary)
print(json.dumps(results))
"""


def test_the_live_payloads_do_run_under_plain_pickle(tmp_path: Path, ledger) -> None:
    """The control: each payload marked live does create its canary when loaded with plain pickle (in a
    forked child), so the canary checks above can fail."""
    jobs = []
    for i, payload in enumerate(p for p in PAYLOADS if p.live):
        canary = tmp_path / f"canary-{i}"
        path = tmp_path / f"payload-{i}.pkl"
        path.write_bytes(payload.make(canary))
        jobs.append((str(path), str(canary), payload))
    proc = subprocess.run(
        [sys.executable, "-c", LIVE_CHECK, json.dumps([(p, c) for p, c, _ in jobs])],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    ran = json.loads(proc.stdout)
    dead = [payload.name for path, _, payload in jobs if not ran[path]]
    ledger.record(
        AREA,
        "control: plain pickle runs the live payloads",
        f"{len(jobs)} live payloads loaded with pickle.loads",
        not dead,
        f"{len(jobs) - len(dead)} of {len(jobs)} created their canary",
    )
    assert not dead, f"these payloads do not run even under plain pickle: {dead}"


def test_the_object_array_crash_is_real_under_numpy(tmp_path: Path, ledger) -> None:
    """The control for the short object array: plain pickle.loads crashes the interpreter."""
    path = tmp_path / "short.pkl"
    path.write_bytes(_short_object_array(tmp_path / "unused"))
    proc = subprocess.run(
        [sys.executable, "-c", f"import pickle; pickle.loads(open({str(path)!r}, 'rb').read())"],
        capture_output=True,
        timeout=240,
    )
    crashed = proc.returncode < 0  # killed by a signal (SIGSEGV), not a Python exception
    ledger.record(
        AREA,
        "control: plain pickle runs the live payloads",
        "short object array under plain pickle.loads",
        crashed,
        f"exit status {proc.returncode} (negative: killed by a signal)",
    )
    assert crashed, (
        f"plain pickle.loads no longer crashes on it (exit {proc.returncode}): the control is void"
    )


# -- checkpoints: last.pt, .safetensors, --init ----------------------------------------------------------


def digits_run(tmp_path: Path) -> Path:
    """A run directory as `zoo train digits lenet` leaves it, without training: config.json only."""
    from zoo_core.train.config import TrainConfig

    run = tmp_path / "run"
    run.mkdir()
    cfg = TrainConfig(dataset="digits", model="lenet", epochs=1, batch_size=64, tensorboard=False)
    from zoo_core.catalog import get_catalog
    from zoo_core.train.config import merged_recipe

    entry = get_catalog().datasets.get("digits")
    cfg = cfg.with_recipe(merged_recipe("digits", entry.meta, get_catalog().models.get("lenet").meta))
    cfg.save(run / "config.json")
    return run


def hostile_torch_file(path: Path, canary: Path, how: str) -> None:
    if how == "zip":  # torch.save's own format, with a pickled call inside data.pkl
        torch.save({"model": Reduce(os.system, shell(canary)), "epoch": 1}, path)
    elif how == "legacy":  # a bare pickle, as torch.load's legacy path reads it
        path.write_bytes(pickle.dumps({"model": Reduce(exec, code(canary))}, protocol=2))
    elif how == "eval-global":
        path.write_bytes(P2 + glob("builtins", "eval") + text(code(canary)) + b"\x85R.")
    elif how == "wrong-shape":  # loads weights-only, but is no training state: a dict of a few numbers
        torch.save({"epoch": 3, "model": {"conv.weight": torch.zeros(2)}}, path)
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["zip", "legacy", "eval-global", "wrong-shape"])
def test_a_hostile_last_pt_is_refused_by_resume(how: str, tmp_path: Path, ledger) -> None:
    run = digits_run(tmp_path)
    canary = tmp_path / "CANARY"
    hostile_torch_file(run / "last.pt", canary, how)
    before = (run / "last.pt").read_bytes()
    outcome = invoke(["train", "--resume", run], timeout=300)
    problems = outcome.problems(codes=(1, 2), names=("last.pt",))
    if canary.exists():
        problems.append("THE PAYLOAD RAN")
    if (run / "last.pt").read_bytes() != before:
        problems.append("last.pt was overwritten")
    ledger.record(AREA, "hostile last.pt to --resume", how, not problems, outcome.summary())
    assert not problems, problems


def safetensors_bytes(header: dict | bytes, declared: int | None = None, body: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if declared is None else declared) + raw + body


CARD = {
    "zoo_version": "0.1.0",
    "model": "lenet",
    "model_kwargs": "{}",
    "dataset": "digits",
    "classes": json.dumps([str(i) for i in range(10)]),
    "mean": "[0.5]",
    "std": "[0.5]",
    "input_size": "[1, 32, 32]",
}
LYING_HEADERS = {
    "length 2**40": lambda: safetensors_bytes({"__metadata__": CARD}, declared=1 << 40),
    "length 2**64-1": lambda: safetensors_bytes({"__metadata__": CARD}, declared=(1 << 64) - 1),
    "length 10 bytes past the end": lambda: safetensors_bytes(
        {"__metadata__": CARD}, declared=len(json.dumps({"__metadata__": CARD})) + 10
    ),
    "length cutting the JSON short": lambda: safetensors_bytes({"__metadata__": CARD}, declared=20),
    "tensor offsets past the end": lambda: safetensors_bytes(
        {"__metadata__": CARD, "w": {"dtype": "F32", "shape": [1000000], "data_offsets": [0, 4000000]}},
        body=b"\x00" * 16,
    ),
    "shape larger than its offsets": lambda: safetensors_bytes(
        {"__metadata__": CARD, "w": {"dtype": "F32", "shape": [1 << 40], "data_offsets": [0, 16]}},
        body=b"\x00" * 16,
    ),
}


USES = [  # every lie through eval and predict; --init and export-model (which train or import more) twice
    *[(lie, use) for lie in LYING_HEADERS for use in ("eval", "predict")],
    *[
        (lie, use)
        for lie in ("length 2**40", "tensor offsets past the end")
        for use in ("init", "export-model")
    ],
]


@pytest.mark.parametrize(("lie", "use"), USES)
def test_a_safetensors_file_whose_header_lies_is_refused(lie: str, use: str, tmp_path: Path, ledger) -> None:
    weights = tmp_path / "run" / "best.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(LYING_HEADERS[lie]())
    image = tmp_path / "digit.png"
    from PIL import Image

    Image.new("L", (8, 8), 128).save(image)
    args = {
        "eval": ["eval", weights.parent],
        "predict": ["predict", weights, image],
        "init": ["train", "digits", "lenet", "--init", weights, "--epochs", "1", "--out", tmp_path / "new"],
        "export-model": ["export-model", weights, "--output", tmp_path / "m.onnx"],
    }[use]
    with memory_ceiling(3 * GIB):
        outcome = invoke(args, timeout=300)
    problems = outcome.problems(codes=(1, 2), names=("best.safetensors",))
    if (tmp_path / "new" / "last.pt").exists():
        problems.append("training went on")
    ledger.record(AREA, "lying .safetensors header", f"{lie} (zoo {use})", not problems, outcome.summary())
    assert not problems, problems


@pytest.mark.parametrize(
    ("how", "suffix"),
    [("zip", ".pt"), ("zip", ".pth"), ("legacy", ".bin"), ("eval-global", ".ckpt"), ("legacy", ".pt")],
)
def test_a_hostile_state_dict_given_to_init_is_refused(suffix: str, how: str, tmp_path: Path, ledger) -> None:
    canary = tmp_path / "CANARY"
    source = tmp_path / f"weights{suffix}"
    hostile_torch_file(source, canary, how)
    run = tmp_path / "new"
    outcome = invoke(
        ["train", "digits", "lenet", "--init", source, "--epochs", "1", "--out", run, "--no-tensorboard"],
        timeout=120,
    )
    problems = outcome.problems(codes=(1, 2), names=(source.name,))
    if canary.exists():
        problems.append("THE PAYLOAD RAN")
    if (run / "last.pt").exists():
        problems.append("training went on")
    ledger.record(AREA, "hostile .pt to --init", f"{how} as {suffix}", not problems, outcome.summary())
    assert not problems, problems
