"""``zoo bench --accuracy`` (real trainings on the bundled digits), the accuracy chart, and the TFLOP/s and
MFU arithmetic of the throughput rows."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

from zoo_core.bench import accuracy as zacc
from zoo_core.bench import peaks, throughput
from zoo_core.bench.plot import plot_accuracy
from zoo_core.cli import cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _mlp(*, num_classes: int, in_chans: int = 1, **kwargs) -> nn.Module:
    return nn.Sequential(nn.Flatten(1), nn.Linear(in_chans * 32 * 32, num_classes))


class _NaNNet(nn.Module):
    """Trains into NaN at once: the loss is NaN from the first step."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(32 * 32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * float("nan")


class _OutOfMemoryAbove16(nn.Module):
    """Acts as if a training batch of more than 16 images did not fit on the device."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(32 * 32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] > 16:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.fc(x.flatten(1))


def _register(catalog, name, builder):
    catalog.models.register(name, builder, input_size=(1, 32, 32), num_classes=10, default_dataset="digits")


# -- accuracy rows from real trainings --------------------------------------------------------------------


def test_accuracy_row_from_a_real_training(catalog):
    _register(catalog, "mlp", _mlp)
    [row] = zacc.run_accuracy(["mlp"], device="cpu", epochs=3, targets=(0.5, 0.999), progress=False)
    assert row["error"] is None
    assert (row["mode"], row["model"], row["dataset"], row["epochs"]) == ("accuracy", "mlp", "digits", 3)
    assert row["batch_size"] == 64 and row["precision"] == "fp32"  # the digits recipe, on the CPU
    assert row["params"] == 1024 * 10 + 10
    assert [p["epoch"] for p in row["curve"]] == [1, 2, 3]
    assert 0.8 < row["top1"] <= row["top5"] <= 1  # a linear model reaches ~90% on digits
    assert row["top1"] == row["curve"][-1]["val_acc"] and row["train_s"] == row["curve"][-1]["time_s"]
    times = [p["time_s"] for p in row["curve"]]
    assert times == sorted(times) and row["wall_s"] > row["train_s"] > 0
    first_above_half = next(p["time_s"] for p in row["curve"] if p["val_acc"] >= 0.5)
    assert row["time_to"] == {"0.5": first_above_half, "0.999": None}
    assert row["img_per_s"] > 0


def test_a_recipe_with_tta_adds_its_score_beside_the_plain_top1(catalog):
    from zoo_core.bench.report import _accuracy_line

    catalog.models.register(
        "mlp_tta",
        _mlp,
        input_size=(1, 32, 32),
        num_classes=10,
        default_dataset="digits",
        recipe={"digits": {"tta": "flip"}},
    )
    _register(catalog, "mlp", _mlp)
    rows = zacc.run_accuracy(["mlp_tta", "mlp"], device="cpu", epochs=1, progress=False)
    tta_row, plain = sorted(rows, key=lambda row: row["model"] != "mlp_tta")
    assert tta_row["tta"] == "flip" and 0.5 < tta_row["tta_top1"] <= 1
    assert tta_row["top1"] == tta_row["curve"][-1]["val_acc"]  # top1 stays the plain score
    assert tta_row["curve"][-1]["tta_acc"] == tta_row["tta_top1"] and "tta_acc" not in plain["curve"][-1]
    assert f"with TTA (flip) {tta_row['tta_top1'] * 100:.2f}%" in _accuracy_line(tta_row, [0.9])
    assert plain["tta"] is None and plain["tta_top1"] is None
    assert "TTA" not in _accuracy_line(plain, [0.9])


def test_a_failing_or_diverging_model_leaves_an_error_row_and_the_sweep_goes_on(catalog):
    def broken(*, num_classes: int, in_chans: int = 1) -> nn.Module:
        raise RuntimeError("cannot build\nthis one")

    _register(catalog, "broken", broken)
    _register(catalog, "nannet", lambda *, num_classes, in_chans=1: _NaNNet(num_classes))
    _register(catalog, "mlp", _mlp)
    seen = []
    rows = zacc.run_accuracy(
        ["broken", "nannet", "mlp"], device="cpu", epochs=1, progress=False, on_row=seen.append
    )
    assert seen == rows and sorted(r["model"] for r in rows) == ["broken", "mlp", "nannet"]
    by_name = {r["model"]: r for r in rows}
    assert by_name["broken"]["error"] == "RuntimeError: cannot build this one"
    assert by_name["broken"]["top1"] is None
    assert by_name["nannet"]["error"].startswith("TrainingDiverged: The training loss became nan")
    assert by_name["nannet"]["top1"] is None and by_name["nannet"]["curve"] == []
    assert by_name["mlp"]["error"] is None and by_name["mlp"]["top1"] > 0.5


def test_out_of_memory_halves_the_training_batch(catalog):
    _register(catalog, "oomnet", lambda *, num_classes, in_chans=1: _OutOfMemoryAbove16(num_classes))
    row = zacc.benchmark_accuracy("oomnet", device="cpu", epochs=1)
    assert row["error"] is None, row["error"]
    assert row["batch_size"] == 16 and row["oom_retries"] == 2  # 64 → 32 → 16
    assert len(row["curve"]) == 1 and row["top1"] is not None


def test_a_model_without_default_dataset_needs_one(catalog):
    catalog.models.register("nodefault", _mlp, input_size=(1, 32, 32), num_classes=10)
    row = zacc.benchmark_accuracy("nodefault", device="cpu", epochs=1)
    assert "declares no default_dataset" in row["error"]


def test_time_to_targets_takes_the_first_epoch_that_reaches_each():
    curve = [
        {"time_s": 1.0, "val_acc": 0.5},
        {"time_s": 2.0, "val_acc": 0.95},
        {"time_s": 3.0, "val_acc": 0.9},
    ]
    assert zacc.time_to_targets(curve, (0.5, 0.9, 0.94, 0.99)) == {
        "0.5": 1.0,
        "0.9": 2.0,
        "0.94": 2.0,
        "0.99": None,
    }


def test_time_to_targets_counts_the_last_epochs_tta_score():
    curve = [
        {"time_s": 1.0, "val_acc": 0.85},
        {"time_s": 2.0, "val_acc": 0.89, "tta_acc": 0.905},  # the recipe's final score
    ]
    assert zacc.time_to_targets(curve, (0.85, 0.9, 0.94)) == {"0.85": 1.0, "0.9": 2.0, "0.94": None}


# -- the command ----------------------------------------------------------------------------------------


def test_cli_accuracy_prints_the_table_and_writes_json_and_plot(tmp_path):
    out, plot = tmp_path / "acc.json", tmp_path / "acc.png"
    args = ["bench", "lenet", "--accuracy", "--dataset", "digits", "--epochs", "1", "--device", "cpu"]
    result = CliRunner().invoke(cli, [*args, "--output", str(out), "--plot", str(plot), "--target", "0.5"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["settings"]["mode"] == "accuracy" and report["settings"]["targets"] == [0.5]
    assert report["machine"]["cpu"] and report["command"].startswith("zoo ")
    [row] = report["results"]
    assert row["model"] == "lenet" and row["dataset"] == "digits" and row["error"] is None
    header = "| model | data set | epochs | batch | params | top-1 | top-5 | train s | img/s | s to 50% |"
    assert header in result.stdout
    line = next(line for line in result.stdout.splitlines() if line.startswith("| lenet |"))
    assert f"{row['top1'] * 100:.2f}%" in line
    assert plot.read_bytes()[:8] == PNG_MAGIC


def test_cli_accuracy_writes_csv(tmp_path, catalog):
    _register(catalog, "mlp", _mlp)
    out = tmp_path / "acc.csv"
    args = ["bench", "mlp", "--accuracy", "--epochs", "1", "--device", "cpu", "--output", str(out)]
    result = CliRunner().invoke(cli, [*args, "--target", "0.5", "--target", "0.9"])
    assert result.exit_code == 0, result.output
    [record] = list(csv.DictReader(out.open()))
    assert record["model"] == "mlp" and record["mode"] == "accuracy" and record["dataset"] == "digits"
    assert float(record["top1"]) > 0.5 and record["machine_cpu"]
    assert "time_to_0.5" in record and "time_to_0.9" in record
    assert [point["epoch"] for point in json.loads(record["curve"])] == [1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--accuracy", "--dataset", "digitz"], "Did you mean 'digits'"),
        (["--accuracy", "--epochs", "0"], "--epochs"),
        (["--accuracy", "--epochs", "two"], "--epochs"),
        (["--epochs", "2"], "--epochs needs --accuracy"),
        (["--dataset", "digits"], "--dataset needs --accuracy"),
        (["--plot", "x.png"], "--plot needs --accuracy"),
        (["--accuracy", "--plot", "x.jpg"], "must end in .png"),
        (["--accuracy", "--runs", "3"], "--runs applies to the throughput benchmark"),
        (["--accuracy", "--target", "1.5"], "--target"),
        (["--accuracy", "--output", "x.txt"], ".md, .json or .csv"),
    ],
)
def test_bad_accuracy_options_exit_2(args, message, tmp_path):
    result = CliRunner().invoke(cli, ["bench", "lenet", "--device", "cpu", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


# -- the chart -------------------------------------------------------------------------------------------


def test_plot_is_a_png_with_one_curve_per_model(tmp_path):
    rows = [
        {"model": "fast", "curve": [{"time_s": 1.0, "val_acc": 0.8}, {"time_s": 2.0, "val_acc": 0.9}]},
        {"model": "slow", "curve": [{"time_s": 100.0, "val_acc": 0.95}]},  # one epoch: a point
        {"model": "failed", "curve": []},
    ]
    path = plot_accuracy(rows, tmp_path / "sub" / "acc.png", title="digits")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (800, 480)
        pixels = image.convert("RGB")
        colours = {pixels.getpixel((x, y)) for x in range(0, 800, 4) for y in range(0, 480, 4)}
    assert len(colours) > 20  # drawn, not blank
    assert path.stat().st_size < 200_000


def test_plot_without_any_finished_epoch_is_an_error(tmp_path):
    from zoo_core.errors import ZooError

    with pytest.raises(ZooError, match="nothing to plot"):
        plot_accuracy([{"model": "x", "curve": []}], tmp_path / "a.png")


# -- TFLOP/s and MFU ----------------------------------------------------------------------------------


def test_peaks_of_known_gpus():
    assert peaks.peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.4
    assert peaks.peak_tflops("NVIDIA H100 PCIe", "bf16") == 756.0
    assert peaks.peak_tflops("NVIDIA H200", "fp16") == 989.4
    assert peaks.peak_tflops("NVIDIA A100-SXM4-80GB", "bf16") == 312.0
    assert peaks.peak_tflops("NVIDIA A100-SXM4-80GB", "fp32") == 156.0  # TF32 tensor cores
    assert peaks.peak_tflops("NVIDIA A100-SXM4-80GB", "fp32", tf32=False) == 19.5
    assert peaks.peak_tflops("NVIDIA GeForce RTX 4090", "bf16") is None
    assert peaks.peak_tflops(None, "fp32") is None


def test_mfu_arithmetic_by_hand():
    # ResNet-18 at 32×32: 1.11 GFLOPs forward; 20,000 training img/s is 3 × 1.11e9 × 2e4 = 66.6 TFLOP/s,
    # which is 66.6 / 989.4 = 6.73% of an H100's dense bf16 peak.
    tflops = peaks.achieved_tflops(1.11e9, 20_000, "train")
    assert tflops == pytest.approx(66.6)
    assert peaks.mfu(tflops, peaks.peak_tflops("NVIDIA H100 80GB HBM3", "bf16")) == pytest.approx(
        0.0673, abs=1e-4
    )
    assert peaks.achieved_tflops(1.11e9, 20_000, "infer") == pytest.approx(22.2)
    assert peaks.mfu(22.2, None) is None


def test_throughput_rows_carry_tflops_and_mfu(monkeypatch):
    monkeypatch.setattr(throughput, "gpu_name", lambda device: "NVIDIA H100 80GB HBM3")  # as if on an H100
    infer = throughput.benchmark_model("lenet", device="cpu", batch_size=4, warmup=0, runs=2, mode="infer")
    train = throughput.benchmark_model("lenet", device="cpu", batch_size=4, warmup=0, runs=2, mode="train")
    flops = 833_040  # LeNet-5's forward at 32×32
    assert infer["tflops"] == pytest.approx(flops * infer["img_per_s"] / 1e12)
    assert train["tflops"] == pytest.approx(3 * flops * train["img_per_s"] / 1e12)
    # precision fp32 on the CPU; on the H100 fp32 convolutions run as TF32: 494.7 TFLOP/s
    assert infer["mfu"] == pytest.approx(infer["tflops"] / 494.7)
    monkeypatch.setattr(throughput, "gpu_name", lambda device: None)
    cpu = throughput.benchmark_model("lenet", device="cpu", batch_size=4, warmup=0, runs=1, mode="infer")
    assert cpu["tflops"] > 0 and cpu["mfu"] is None


@pytest.mark.slow
def test_compiled_throughput_row(catalog):
    row = throughput.benchmark_model("lenet", device="cpu", batch_size=4, warmup=0, runs=1, compile=True)
    assert row["error"] is None and row["compile"] is True and row["img_per_s"] > 0


def test_confusion_png_is_skipped_with_a_warning_without_matplotlib(tmp_path, monkeypatch, capsys):
    import importlib.util

    from zoo_core import confusion

    real = importlib.util.find_spec
    monkeypatch.setattr(
        confusion.importlib.util, "find_spec", lambda name: None if name == "matplotlib" else real(name)
    )
    assert (
        confusion.save_confusion_png(tmp_path / "cm.png", torch.eye(3, dtype=torch.int64), list("abc"))
        is None
    )
    assert not (tmp_path / "cm.png").exists()
    assert "pip install 'zoo-models[plot]'" in capsys.readouterr().err
