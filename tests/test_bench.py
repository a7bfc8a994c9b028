"""``zoo bench`` and zoo_core.bench: timings, FLOPs, the machine, error rows and the out-of-memory retry."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from zoo_core import bench as zbench
from zoo_core.cli import cli
from zoo_core.cli.bench import bench
from zoo_core.errors import BadInputError


def test_bench_writes_a_json_report_naming_the_machine(tmp_path):
    out = tmp_path / "x.json"
    args = [
        "lenet",
        "--device",
        "cpu",
        "--runs",
        "2",
        "--warmup",
        "1",
        "--batch-size",
        "4",
        "--output",
        str(out),
    ]
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["machine"]["torch"] == torch.__version__
    assert report["machine"]["cpu"] and report["machine"]["date"]
    assert report["settings"] == {
        "mode": "throughput",
        "device": "cpu",
        "batch_size": 4,
        "precision": "fp32",
        "channels_last": False,
        "compile": False,
        "warmup": 1,
        "runs": 2,
    }
    rows = report["results"]
    assert [(r["model"], r["mode"]) for r in rows] == [("lenet", "infer"), ("lenet", "train")]
    for row in rows:
        assert row["error"] is None
        assert row["params"] == 61_706 and row["input_size"] == [1, 32, 32] and row["batch_size"] == 4
        assert row["gflops"] == pytest.approx(833_040 / 1e9)  # 2 × multiply-adds of LeNet-5 at 32×32
        assert row["img_per_s"] > 0 and row["img_per_s"] == pytest.approx(4 / (row["step_ms"] / 1e3))
    assert "| lenet |" in result.stdout  # the table is printed too


def test_bench_writes_a_markdown_table(tmp_path):
    out = tmp_path / "bench.md"
    args = [
        "lenet",
        "--device",
        "cpu",
        "--mode",
        "infer",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--output",
        str(out),
    ]
    assert CliRunner().invoke(bench, args).exit_code == 0
    text = out.read_text()
    assert f"torch {torch.__version__}" in text and "Machine:" in text
    assert (
        "| model | input | params | GFLOPs | infer img/s | train img/s | infer TFLOP/s | train TFLOP/s "
        "| infer MFU | train MFU | notes |" in text
    )
    row = next(line for line in text.splitlines() if line.startswith("| lenet |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1:4] == ["1×32×32", "61,706", "0.000833"]
    assert float(cells[4].replace(",", "")) > 0 and cells[5] == "—"
    assert float(cells[6]) > 0 and cells[7:10] == ["—", "—", "—"]  # TFLOP/s; no MFU off a known GPU


def test_device_cuda_without_cuda_exits_2(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = CliRunner().invoke(bench, ["lenet", "--device", "cuda"])
    assert result.exit_code == 2
    assert "CUDA is not available" in result.output


def test_output_must_be_markdown_json_or_csv(tmp_path):
    result = CliRunner().invoke(bench, ["lenet", "--device", "cpu", "--output", str(tmp_path / "x.txt")])
    assert result.exit_code == 2 and ".md, .json or .csv" in result.output


def test_pattern_matching_nothing_is_bad_input():
    with pytest.raises(BadInputError, match="No model matches"):
        zbench.select_models(["nosuchnet*"])
    result = CliRunner().invoke(cli, ["bench", "nosuchnet*", "--device", "cpu"])
    assert result.exit_code == 2 and "No model matches" in result.output


def test_namespace_models_are_benchmarked_only_when_named(catalog):
    default = zbench.select_models(())
    assert "resnet18" in default and not any(name.startswith("timm/") for name in default)
    assert zbench.select_models(["timm/resnet10t"]) == ["timm/resnet10t"]


def test_a_failing_model_becomes_an_error_row(catalog):
    def broken(*, num_classes: int, in_chans: int = 3) -> nn.Module:
        raise RuntimeError("cannot build\nthis one")

    catalog.models.register("broken", broken, input_size=(3, 32, 32), num_classes=10)
    rows = zbench.run_bench(["broken", "lenet"], device="cpu", batch_size=2, runs=1, warmup=0, progress=False)
    error = "RuntimeError: cannot build this one"
    assert [(r["model"], r["mode"], r["error"]) for r in rows] == [
        ("broken", "infer", error),
        ("broken", "train", error),
        ("lenet", "infer", None),
        ("lenet", "train", None),
    ]
    assert rows[0]["img_per_s"] is None and rows[2]["img_per_s"] > 0


class _OutOfMemoryAbove2(nn.Module):
    """Acts as if the device could hold at most two images."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.fc(x.flatten(1))


def test_out_of_memory_retries_at_half_the_batch(catalog):
    catalog.models.register(
        "oomnet", lambda *, num_classes, in_chans=3: _OutOfMemoryAbove2(), input_size=(3, 8, 8), num_classes=2
    )
    row = zbench.benchmark_model("oomnet", device="cpu", batch_size=8, precision="fp32", warmup=1, runs=2)
    assert row["error"] is None and row["batch_size"] == 2 and row["img_per_s"] > 0
    report = zbench.make_report(
        [row], device="cpu", batch_size=8, precision="fp32", channels_last=False, warmup=1, runs=2
    )
    assert "infer: batch 2 after out-of-memory" in zbench.format_markdown(report)


def test_flops_count_a_multiply_add_as_two():
    model = nn.Sequential(nn.Flatten(1), nn.Linear(3 * 32 * 32, 10))
    assert zbench.count_flops(model, in_chans=3) == 2 * 3 * 32 * 32 * 10


def test_auto_precision_is_fp32_on_cpu():
    assert zbench.resolve_precision("auto", "cpu") == "fp32"
    with pytest.raises(BadInputError):
        zbench.resolve_precision("int4", "cpu")


def test_the_header_says_other_work_shared_the_cpu_only_when_the_load_exceeded_the_cores():
    from zoo_core.bench.report import load_verdict

    assert "other work shared the CPU" in load_verdict({"cpu_cores": 2, "load_avg": 0.5, "load_avg_end": 6.9})
    assert load_verdict({"cpu_cores": 2, "load_avg": 0.0, "load_avg_end": 1.9}) == (
        " (at most the 2 cores: the machine was not oversubscribed)"
    )
    assert load_verdict({"cpu_cores": 2, "load_avg": None, "load_avg_end": None}) == ""


def test_models_run_in_the_order_their_patterns_name_them():
    from zoo_core.bench.throughput import select_models

    assert select_models(["vgg1*", "lenet", "fastnet", "lenet"]) == [
        "vgg11",
        "vgg13",
        "vgg16",
        "vgg19",
        "lenet",
        "fastnet",
    ]
    assert select_models([]) == sorted(select_models([]))


def test_the_machine_line_names_the_cpus_instruction_set() -> None:
    from zoo_core.bench import describe_machine
    from zoo_core.device import cpu_capability

    line = describe_machine("cpu")
    assert line.startswith("CPU: ") and f"({cpu_capability()})," in line
