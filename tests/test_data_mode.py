"""The memory plan and streamed ImageFolder trees: decided before decoding, same pixels as in memory,
resumable exactly, unreadable files skipped (or fatal under --strict), --data-mode forcing either."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from zoo_core import notices
from zoo_core.cli import cli
from zoo_core.data import memory
from zoo_core.data.loader import make_loader
from zoo_core.data.memory import human_bytes, plan_data_mode
from zoo_core.errors import BadInputError, ZooError
from zoo_plugins.datasets import imagefolder as module
from zoo_plugins.datasets.imagefolder import imagefolder
from zoo_plugins.datasets.imagefolder_stream import StreamingImageFolder

ROOT = Path(__file__).resolve().parents[1]
GB = 10**9


# -- the plan, a pure function of sizes -------------------------------------------------------------------


def test_a_set_larger_than_free_memory_streams_and_the_line_says_why():
    plan = plan_data_mode("auto", images=3000, shape=(3, 2048, 2048), free=int(5.1 * GB), where="free RAM")
    assert plan.mode == "stream" and not plan.fits
    assert plan.need == 2 * 3000 * 3 * 2048 * 2048
    assert "3,000 images at 3×2048×2048 = 37.7 GB" in plan.line
    assert plan.line.endswith("> 80% of 5.1 GB free RAM: streaming from disk")


def test_a_set_that_fits_with_its_decoding_copy_stays_in_memory():
    fits = plan_data_mode("auto", images=50_000, shape=(3, 32, 32), free=GB)  # 153.6 MB × 2
    assert fits.mode == "memory" and fits.fits and "held in memory" in fits.line
    # 0.6 GB tensor: 1.2 GB while decoding > 80% of 1.4 GB, though the tensor alone would fit
    tight = plan_data_mode("auto", images=200_000, shape=(3, 32, 32), free=int(1.4 * GB))
    assert tight.mode == "stream"
    assert plan_data_mode("auto", images=200_000, shape=(3, 32, 32), free=int(1.4 * GB), copies=1).fits


def test_a_forced_mode_is_kept_and_said():
    stream = plan_data_mode("stream", images=10, shape=(3, 8, 8), free=GB)
    assert stream.mode == "stream" and stream.fits and "(--data-mode stream)" in stream.line
    memory_plan = plan_data_mode("memory", images=3000, shape=(3, 2048, 2048), free=GB)
    assert memory_plan.mode == "memory" and not memory_plan.fits
    with pytest.raises(ValueError, match="data mode"):
        plan_data_mode("disk", images=1, shape=(3, 8, 8), free=GB)


def test_bytes_read_as_people_write_them():
    assert [human_bytes(n) for n in (12, 9_216_000, 37_748_736_000)] == ["12 B", "9.2 MB", "37.7 GB"]


def test_free_ram_is_the_least_of_available_cgroup_and_ulimit(monkeypatch):
    unlimited = (memory.resource.RLIM_INFINITY, memory.resource.RLIM_INFINITY)
    monkeypatch.setattr(memory.resource, "getrlimit", lambda which: unlimited)
    monkeypatch.setattr(memory, "_mem_available", lambda: 20 * GB)
    monkeypatch.setattr(memory, "_cgroup_room", lambda: 6 * GB)
    assert memory.free_ram() == 6 * GB
    monkeypatch.setattr(memory, "_cgroup_room", lambda: None)
    assert memory.free_ram() == 20 * GB
    monkeypatch.setattr(memory, "_vm_size", lambda: 3 * GB)
    monkeypatch.setattr(memory.resource, "getrlimit", lambda which: (8 * GB, unlimited[1]))  # ulimit -v
    assert memory.free_ram() == 5 * GB


# -- imagefolder in either mode -----------------------------------------------------------------------------


def make_tree(root: Path, per_class: int = 24, size: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("test", per_class // 3)):
        for label, base in (("dark", 50), ("light", 190)):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = np.clip(rng.normal(base, 30, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture
def tree(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    notices.forget()
    return make_tree(tmp_path / "tree")


def test_streamed_samples_are_the_in_memory_pixels(tree, capsys):
    held = imagefolder(root=tree, split="train", image_size=16, cache=False)
    streamed = imagefolder(root=tree, split="train", image_size=16, data_mode="stream", cache=False)
    assert isinstance(streamed, StreamingImageFolder) and len(streamed) == len(held) == 48
    assert streamed.classes == held.classes and streamed.input_size == (3, 16, 16)
    for i in (0, 7, 47):
        image, label = streamed[i]
        assert image.dtype == torch.uint8 and torch.equal(image, held.images[i]) and label == held.labels[i]
    assert "(--data-mode stream)" in capsys.readouterr().err
    # mean/std of a sample, here every image: those of the in-memory split
    assert streamed.mean == pytest.approx(held.mean, abs=1e-6) and streamed.std == pytest.approx(held.std)


def test_too_little_free_memory_streams_before_decoding_anything(tree, monkeypatch, capsys):
    monkeypatch.setattr(module, "free_ram", lambda: 10_000)
    decoded = []
    monkeypatch.setattr(module, "_decode_all", lambda *a, **k: decoded.append(a) or ([], []))
    data = imagefolder(root=tree, split="train", image_size=64)
    assert isinstance(data, StreamingImageFolder) and not decoded
    err = capsys.readouterr().err
    assert "48 images at 3×64×64 = 589.8 KB (×2 while decoding) > 80% of 10.0 KB free RAM" in err
    assert err.rstrip().endswith("streaming from disk")


def test_a_forced_memory_mode_that_cannot_fit_fails_at_once_with_the_plan(tree, monkeypatch):
    monkeypatch.setattr(module, "free_ram", lambda: 10_000)
    with pytest.raises(BadInputError, match=r"10\.0 KB free RAM.*cannot fit: --data-mode stream"):
        imagefolder(root=tree, split="train", image_size=64, data_mode="memory")


def test_zoo_train_data_mode_memory_that_cannot_fit_exits_2_in_one_line(tree, monkeypatch):
    monkeypatch.setattr(module, "free_ram", lambda: 10_000)
    args = ["train", "imagefolder", "lenet", "--data-dir", str(tree), "--data-mode", "memory"]
    result = CliRunner().invoke(cli, [*args, "--image-size", "64", "--no-tensorboard"])
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert "cannot fit" in line


def test_a_data_set_without_data_mode_refuses_the_option():
    result = CliRunner().invoke(cli, ["train", "digits", "lenet", "--data-mode", "stream"])
    assert result.exit_code == 2 and "does not take --data-mode" in result.output


def test_an_unreadable_file_is_replaced_by_the_next_and_named(tree, capfd):
    (tree / "train" / "dark" / "003.png").write_bytes(b"not a png")
    data = imagefolder(root=tree, split="train", image_size=16, data_mode="stream", cache=False)
    capfd.readouterr()
    image, label = data[3]
    assert torch.equal(image, data[4][0]) and label == 0
    err = capfd.readouterr().err
    assert "skipped unreadable image" in err and "003.png" in err and "004.png stands in" in err


def test_an_unreadable_file_under_strict_stops_a_streamed_epoch_in_one_line(tree):
    (tree / "train" / "light" / "005.png").write_bytes(b"not a png")
    data = imagefolder(root=tree, split="train", image_size=16, data_mode="stream", strict=True, cache=False)
    loader = make_loader(data, batch_size=8, device="cpu", train=True, num_workers=2, shuffle=False)
    with pytest.raises(ZooError) as caught:
        list(loader)
    message = str(caught.value)
    assert message.startswith("Cannot read image") and "005.png" in message and "\n" not in message


def test_streamed_batches_equal_the_in_memory_batches(tree):
    held = imagefolder(root=tree, split="train", image_size=16, cache=False)
    streamed = imagefolder(root=tree, split="train", image_size=16, data_mode="stream", cache=False)
    options = dict(batch_size=16, device="cpu", train=True, crop_padding=2, flip=True, seed=3)
    a = make_loader(held, **options, mean=held.mean, std=held.std)
    b = make_loader(streamed, **options, mean=held.mean, std=held.std, num_workers=2)
    for epoch in (0, 1):
        a.set_epoch(epoch), b.set_epoch(epoch)
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


# -- a streamed run, killed and resumed ----------------------------------------------------------------------

KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from zoo_core.train.trainer import Trainer
from zoo_core.train.config import TrainConfig

class KillAt:
    def on_step_end(self, trainer):
        if trainer.step == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)

cfg = TrainConfig(dataset="imagefolder", model="lenet", epochs=3, batch_size=16, tensorboard=False,
                  data_dir=sys.argv[2], dataset_kwargs={"data_mode": "stream", "image_size": 32}, log_every=2)
Trainer(cfg, Path(sys.argv[1]), callbacks=[KillAt()]).fit()
"""


def zoo(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zoo_core", *args], capture_output=True, text=True, cwd=ROOT, env=env
    )


@pytest.mark.slow
def test_a_streamed_run_killed_mid_epoch_resumes_bit_identical(tree, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZOO_CACHE": str(tmp_path / "cache")}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    common = ["--data-dir", str(tree), "--data-mode", "stream", "--image-size", "32", "--batch-size", "16"]
    done = zoo("train", "imagefolder", "lenet", *common, "--epochs", "3", "--out", str(straight),
               "--no-tensorboard", "--log-every", "2", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "streaming from disk (--data-mode stream)" in done.stderr
    cut = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(killed), str(tree), "4"],
        cwd=ROOT,
        env=env,
        capture_output=True,
    )
    assert cut.returncode == -signal.SIGKILL, cut.stderr  # 3 batches an epoch: killed in the second
    resumed = zoo("train", "--resume", str(killed), env=env)
    assert resumed.returncode == 0, resumed.stderr
    from safetensors.torch import load_file

    a, b = load_file(straight / "model.safetensors"), load_file(killed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    epochs = [json.loads(x)["epoch"] for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


def test_an_in_memory_set_too_large_for_the_gpu_is_copied_from_host_memory():
    from zoo_core.data import loader
    from zoo_core.data.plan import plan_feed

    shape = (100, 3, 32, 32)  # 307.2 KB
    small = plan_feed(in_memory=True, device_type="cuda", train=True, shape=shape, free_device=100_000)
    assert small.feed == "host" and small.line == (
        "data set: 100 images at 3×32×32 = 307.2 KB > 80% of 100.0 KB free on the device: "
        "copied from host memory batch by batch"
    )
    large = plan_feed(in_memory=True, device_type="cuda", train=True, shape=shape, free_device=10**9)
    assert (
        large.feed == "device" and plan_feed(in_memory=True, device_type="cpu", train=True).feed == "device"
    )
    images = torch.zeros(shape, dtype=torch.uint8)
    pairs = loader._TensorPairs(images, torch.arange(100))
    assert len(pairs) == 100 and pairs[7][1] == 7 and torch.equal(pairs[7][0], images[7])
