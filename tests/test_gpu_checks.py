"""benchmarks/gpu_checks.sh --dry-run: every step of the GPU script for one batch on the CPU, so the script
cannot rot between the rare runs on a GPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_checks.sh"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash")
def test_gpu_checks_dry_run_runs_every_step(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECKS_WORK": str(work), "ZOO_DEBUG": ""}
    env.pop("OUT", None)
    result = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    steps = (out / "steps.txt").read_text()
    for step in ("01 fastnet seed 0", "02 throughput eager", "03 throughput compiled", "04 accuracy sweep"):
        assert f"{step}: finished" in steps, steps
    for step in (
        "05 resnet18 recipe",
        "06 inception cutmix",
        "09 augmentation policies",
        "10 streamed photos, decode on the device",
    ):
        assert f"{step}: finished" in steps, steps
    # the fairness check may disagree on one CPU batch (exit 1), but it must run and give its verdict
    assert "07 bench vs timm: finished" in steps or "07 bench vs timm: failed (exit 1)" in steps, steps
    assert "Verdict:" in (out / "07-bench-vs-timm.md").read_text()

    assert "torch" in (out / "00-versions.txt").read_text()
    policies = (out / "09-augmentations-policies.md").read_text()
    assert "| `randaugment` |" in policies and "| posterize |" in policies
    assert "| 0 | 1 |" in (out / "01-fastnet.md").read_text()  # seed 0, one epoch
    assert "decode='device'" in (out / "10-imagefolder-stream.md").read_text()
    eager = json.loads((out / "02-throughput-eager.json").read_text())["results"]
    assert {(r["model"], r["mode"]) for r in eager} == {
        (m, mode) for m in ("lenet", "fastnet") for mode in ("infer", "train")
    }
    assert all(r["error"] is None and r["tflops"] > 0 for r in eager)
    [compiled] = json.loads((out / "03-throughput-compiled.json").read_text())["results"]
    assert compiled["error"] is None
    accuracy = json.loads((out / "04-accuracy-cifar10.json").read_text())["results"]
    assert sorted(r["model"] for r in accuracy) == ["fastnet", "lenet"]
    assert all(r["error"] is None and r["top1"] is not None for r in accuracy)
    assert "| lenet |" in (out / "04-accuracy-cifar10.md").read_text()
    for name in ("05-resnet18-recipe", "06-inception-cutmix"):
        [epoch] = (out / f"{name}.jsonl").read_text().splitlines()
        assert json.loads(epoch)["epoch"] == 1
