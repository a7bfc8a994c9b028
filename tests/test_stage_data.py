"""benchmarks/stage_data.py: the real data carried to a GPU machine in parts that each fit one device call."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("stage_data", ROOT / "benchmarks" / "stage_data.py")
stage_data = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(stage_data)
MIB = 1 << 20


@pytest.fixture
def source(tmp_path):
    """A shared/data look-alike: prepare.py, six 'batches' of 3 MiB, MNIST and a JPEG archive."""
    root = tmp_path / "shared-data"
    (root / "cifar10").mkdir(parents=True)
    (root / "mnist").mkdir()
    (root / "prepare.py").write_text("print('prepare')\n")
    (root / "README.md").write_text("data\n")
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (root / "cifar10" / f"{name}.u8.xz").write_bytes(bytes(3 * MIB))
    (root / "cifar10" / "labels.txt.gz").write_bytes(b"labels")
    (root / "cifar10" / "cifar10-jpeg.tar.gz").write_bytes(bytes(2 * MIB))
    (root / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(bytes(MIB))
    return root


def test_every_part_fits_the_budget_and_every_file_travels_once(source):
    parts = stage_data.plan(source, budget_mib=7)
    carried = [f for part in parts for f in part]
    assert sorted(carried) == sorted(stage_data.data_files(source)) and len(set(carried)) == len(carried)
    assert all(sum((source / f).stat().st_size for f in part) <= 7 * MIB for part in parts)
    assert Path("prepare.py") in parts[0]
    assert not any(f.name.startswith("cifar10-jpeg") for f in carried)  # only with jpeg=True
    assert any(f.name.startswith("cifar10-jpeg") for p in stage_data.plan(source, jpeg=True) for f in p)


def test_a_file_larger_than_a_part_is_refused(source):
    with pytest.raises(SystemExit, match="larger than the 2 MiB budget"):
        stage_data.plan(source, budget_mib=2)


def test_the_parts_assemble_into_the_whole_folder_and_a_missing_one_is_named(source, tmp_path):
    stage = tmp_path / "stage"
    parts = stage_data.plan(source, budget_mib=7)
    assert len(parts) >= 3
    for n in range(1, len(parts)):  # all but the last, as after the calls before the last one
        stage_data.lay_out(source, parts, n, stage)
    with pytest.raises(SystemExit, match=f"part\\(s\\) {len(parts)} not carried yet"):
        stage_data.assemble(tmp_path / "joined", stage)
    stage_data.lay_out(source, parts, len(parts), stage)
    joined = stage_data.assemble(tmp_path / "joined", stage)
    for f in stage_data.data_files(source):
        assert (joined / f).read_bytes() == (source / f).read_bytes()


def test_the_dry_run_shows_each_call_with_its_carry(source):
    result = subprocess.run(
        [sys.executable, "benchmarks/stage_data.py", "--dry-run", "--source", str(source), "--budget", "7"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    calls = [line for line in lines if "device: run(" in line]
    assert len(calls) >= 3
    assert 'carry=[".gpu/data/part1"]' in calls[0]
    assert "bash benchmarks/gpu_checks.sh" in calls[-1]  # the last call runs the checks
