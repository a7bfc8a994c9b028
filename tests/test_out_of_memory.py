"""Out of memory is one line with exit 1: what ran out, where, the figures, what to change, the checkpoint."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

import zoo_core.train.trainer as trainer_module
from zoo_core.cli import cli
from zoo_core.out_of_memory import OutOfMemory, kind_of, memory_error, requested_bytes

# what PyTorch 2.x says when a host allocation fails (ulimit -v, a full machine)
CPU_MESSAGE = (
    "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to "
    "allocate 67108864 bytes. Error code 12 (Cannot allocate memory)"
)
CUDA_MESSAGE = (
    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
    "1.06 GiB is free. Including non-PyTorch memory, this process has 78.12 GiB memory in use."
)
FAST = ["--batch-size", "64", "--no-tensorboard"]


def test_host_and_gpu_failures_are_recognised_and_others_are_not():
    assert kind_of(RuntimeError(CPU_MESSAGE)) == "host"
    assert kind_of(MemoryError()) == "host"
    assert kind_of(torch.OutOfMemoryError(CUDA_MESSAGE)) == "GPU"
    assert kind_of(torch.cuda.OutOfMemoryError(CUDA_MESSAGE)) == "GPU"
    assert kind_of(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None
    assert kind_of(ValueError(CPU_MESSAGE)) is None


def test_the_size_asked_for_is_read_from_either_message():
    assert requested_bytes(RuntimeError(CPU_MESSAGE)) == 64 << 20
    assert requested_bytes(torch.OutOfMemoryError(CUDA_MESSAGE)) == 2 << 30
    assert requested_bytes(MemoryError()) is None


def test_the_line_names_what_ran_out_the_figures_the_options_and_the_state():
    said = memory_error(
        RuntimeError(CPU_MESSAGE),
        where="a training step of fastnet (batch 4 of 3×2048×2048 images)",
        options=["--batch-size 2", "a smaller --image-size"],
        state="no checkpoint was written yet in runs/x",
    )
    assert isinstance(said, OutOfMemory) and said.exit_code == 1
    text = str(said)
    assert text.startswith(
        "Out of host memory in a training step of fastnet (batch 4 of 3×2048×2048 images) ("
    )
    assert "it asked for 67.1 MB more" in text and " in use" in text and " free)" in text
    assert text.endswith(
        "; try --batch-size 2 or a smaller --image-size; no checkpoint was written yet in runs/x"
    )
    assert "\n" not in text
    assert memory_error(ValueError("no"), where="x") is None


def raise_in_step(monkeypatch, error: BaseException, after: int = 0) -> None:
    real = trainer_module.Trainer.train_step
    calls = []

    def step(self, x, y):
        calls.append(1)
        if len(calls) > after:
            raise error
        return real(self, x, y)

    monkeypatch.setattr(trainer_module.Trainer, "train_step", step)


@pytest.mark.parametrize(
    ("error", "what"),
    [(RuntimeError(CPU_MESSAGE), "host memory"), (torch.cuda.OutOfMemoryError(CUDA_MESSAGE), "GPU memory")],
)
def test_out_of_memory_in_a_step_is_one_line_and_exit_1(tmp_path, catalog, monkeypatch, error, what):
    raise_in_step(monkeypatch, error)
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "digits", "lenet", "--out", str(run), *FAST])
    assert result.exit_code == 1
    line = result.output.splitlines()[-1]
    assert line.startswith(f"Error: Out of {what} in a training step of lenet (batch 64 of 1×32×32 images)")
    assert "try --batch-size 32" in line
    assert line.endswith(f"no checkpoint was written yet in {run}")
    assert "Traceback" not in result.output and "enforce fail" not in result.output


def test_out_of_memory_after_a_save_says_the_checkpoint_is_intact(tmp_path, catalog, monkeypatch):
    raise_in_step(monkeypatch, RuntimeError(CPU_MESSAGE), after=30)  # digits: 22 steps an epoch at batch 64
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "digits", "lenet", "--epochs", "3", "--out", str(run), *FAST])
    assert result.exit_code == 1
    line = result.output.splitlines()[-1]
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and state["step"] == 22
    assert line.endswith(f"the last checkpoint (epoch 1, step 22) is intact: zoo train --resume {run}")


def test_out_of_memory_in_evaluation_names_evaluation(tmp_path, catalog, monkeypatch):
    import zoo_core.train.evaluate as evaluate_module

    def evaluate(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(evaluate_module, "evaluate", evaluate)
    result = CliRunner().invoke(cli, ["train", "digits", "lenet", "--out", str(tmp_path / "r"), *FAST])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(
        "Error: Out of host memory in evaluation of lenet (batches of 256)"
    )


def test_out_of_memory_while_reading_an_image_tree_suggests_streaming(tmp_path, catalog, monkeypatch):
    from zoo_plugins.datasets import imagefolder

    def decode_all(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(imagefolder, "_decode_all", decode_all)
    tree = image_tree(tmp_path / "tree")
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "imagefolder",
            "lenet",
            "--data-dir",
            str(tree),
            "--out",
            str(tmp_path / "r"),
            "--no-tensorboard",
        ],
        env={"ZOO_CACHE": str(tmp_path / "cache")},
    )
    assert result.exit_code == 1
    line = result.output.splitlines()[-1]
    assert line.startswith("Error: Out of host memory in reading data set imagefolder")
    assert "try --data-mode stream or a smaller --image-size" in line


def image_tree(root, size: int = 16):
    from PIL import Image

    for split in ("train", "test"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (size, size), (9 * i, 9, 9)).save(root / split / name / f"{i}.png")
    return root


def test_evaluation_batches_of_large_images_hold_no_more_pixels_than_256_of_224(
    tmp_path, catalog, monkeypatch
):
    """Training fits at batch 16 of 448×448; evaluation at 256 of them would not: it takes 64 (the pixels
    of 256 images of 224×224), and never fewer than the training batch."""
    from zoo_core.train.config import TrainConfig

    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    tree = image_tree(tmp_path / "tree", size=512)
    kwargs = dict(model="resnet18", epochs=1, tensorboard=False, data_dir=str(tree))
    large = TrainConfig(dataset="imagefolder", batch_size=16, dataset_kwargs={"image_size": 448}, **kwargs)
    trainer = trainer_module.Trainer(large, tmp_path / "run")
    assert trainer.input_size == (3, 448, 448)
    assert trainer.eval_batch_size == 64 == trainer.test_loader.batch_size
    small = TrainConfig(dataset="imagefolder", batch_size=4, dataset_kwargs={"image_size": 32}, **kwargs)
    assert trainer_module.Trainer(small, tmp_path / "run2").eval_batch_size == 256


def test_zoo_eval_out_of_memory_is_one_line_with_a_smaller_batch(tmp_path, catalog, monkeypatch):
    import zoo_core.train.evaluate as evaluate_module

    run = tmp_path / "run"
    trained = CliRunner().invoke(cli, ["train", "digits", "lenet", "--epochs", "1", "--out", str(run), *FAST])
    assert trained.exit_code == 0, trained.output

    def evaluate(*args, **kwargs):
        raise RuntimeError(CPU_MESSAGE)

    monkeypatch.setattr(evaluate_module, "evaluate", evaluate)
    result = CliRunner().invoke(cli, ["eval", str(run), "--batch-size", "100"])
    assert result.exit_code == 1
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert line.startswith(
        "Error: Out of host memory in evaluation of lenet (batches of 100 images of 1×32×32)"
    )
    assert "try --batch-size 50" in line
