"""The precision choice: a pure function of (requested, device type, capability), said in one line."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from zoo_core.cli import cli
from zoo_core.device import (
    Hardware,
    choose_precision,
    cpu_capability,
    physical_cores,
    pick_precision,
)
from zoo_core.errors import BadInputError

AVX2 = Hardware("cpu", "AVX2", native_bf16=False, native_fp16=False)
AVX512 = Hardware("cpu", "AVX512", native_bf16=False, native_fp16=False)
AVX512_BF16 = Hardware("cpu", "AVX512_BF16", native_bf16=True, native_fp16=False)
AMX = Hardware("cpu", "AMX", native_bf16=True, native_fp16=False)
AMX_FP16 = Hardware("cpu", "AMX", native_bf16=True, native_fp16=True)
H100 = Hardware("cuda", "NVIDIA H100 80GB HBM3", native_bf16=True, native_fp16=True)
V100 = Hardware("cuda", "Tesla V100-SXM2-16GB", native_bf16=False, native_fp16=True)

CASES = [
    # requested, hardware, chosen, warns
    ("auto", AVX2, "fp32", False),
    ("auto", AVX512, "fp32", False),
    ("auto", AVX512_BF16, "bf16", False),
    ("auto", AMX, "bf16", False),
    ("auto", H100, "bf16", False),
    ("auto", V100, "fp16", False),
    ("fp32", AVX2, "fp32", False),
    ("fp32", AMX, "fp32", False),
    ("fp32", H100, "fp32", False),
    ("bf16", AVX2, "bf16", True),
    ("bf16", AVX512, "bf16", True),
    ("bf16", AVX512_BF16, "bf16", False),
    ("bf16", AMX, "bf16", False),
    ("bf16", H100, "bf16", False),
    ("fp16", AVX2, "fp16", True),
    ("fp16", AMX, "fp16", True),
    ("fp16", AMX_FP16, "fp16", False),
    ("fp16", V100, "fp16", False),
]


@pytest.mark.parametrize(("requested", "hardware", "chosen", "warns"), CASES)
def test_the_precision_is_a_function_of_request_device_and_capability(requested, hardware, chosen, warns):
    choice = choose_precision(requested, hardware)
    assert choice.precision == chosen
    assert (choice.warning is not None) == warns


def test_auto_on_a_cpu_without_native_bf16_says_why_it_is_fp32():
    assert choose_precision("auto", AVX2).line == "precision fp32: this CPU (AVX2) has no native bf16"


def test_auto_on_an_amx_cpu_says_it_computes_bf16_natively():
    assert choose_precision("auto", AMX).line == "precision bf16: this CPU (AMX) computes bf16 natively"


def test_explicit_bf16_on_an_emulating_cpu_warns_with_the_expected_slowdown():
    avx2, avx512 = choose_precision("bf16", AVX2), choose_precision("bf16", AVX512)
    assert "~16× slower than fp32" in avx2.warning and "AVX2" in avx2.warning
    assert "~2.8× slower than fp32" in avx512.warning
    assert "--precision auto picks fp32 here" in avx2.warning
    assert "\n" not in avx2.warning


def test_an_explicit_precision_says_it_was_asked_for():
    assert choose_precision("fp32", AMX).line == "precision fp32: as asked"


def test_an_unknown_precision_is_bad_input():
    with pytest.raises(BadInputError, match="Unknown precision 'int4'"):
        choose_precision("int4", AVX2)


def test_pick_precision_gives_the_autocast_dtype_and_the_scaler():
    assert pick_precision("auto", "cpu", AVX2)[1:] == (None, False)
    assert pick_precision("auto", "cpu", AMX)[1:] == (torch.bfloat16, False)
    assert pick_precision("fp16", "cuda", V100)[1:] == (torch.float16, True)


def test_the_capability_probe_agrees_with_torch():
    capability = cpu_capability()
    if torch.cpu._is_amx_tile_supported():
        assert capability == "AMX"
    elif torch.cpu._is_avx512_bf16_supported():
        assert capability == "AVX512_BF16"
    else:
        assert capability == torch.backends.cpu.get_cpu_capability()


def test_physical_cores_are_at_least_one_and_at_most_the_logical_ones():
    import os

    assert 1 <= physical_cores() <= (os.cpu_count() or 1)


# -- what train and bench say ------------------------------------------------------------------------

TRAIN = ["train", "digits", "lenet", "--epochs", "1", "--batch-size", "256", "--no-tensorboard"]


def test_zoo_train_announces_the_precision_and_its_reason(tmp_path, catalog):
    result = CliRunner().invoke(cli, [*TRAIN, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "precision fp32: this CPU (AVX2) has no native bf16" in result.stderr.splitlines()


def test_zoo_train_with_bf16_on_an_emulating_cpu_warns_and_runs_as_asked(tmp_path, catalog):
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, [*TRAIN, "--precision", "bf16", "--out", str(run)])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert "precision bf16: as asked, though this CPU (AVX2) emulates it" in lines
    warning = [line for line in lines if line.startswith("zoo: warning: --precision bf16")]
    assert len(warning) == 1 and "~16× slower than fp32" in warning[0]
    assert json.loads((run / "config.json").read_text())["precision"] == "bf16"


def test_zoo_train_on_an_amx_cpu_trains_in_bf16(tmp_path, catalog, fake_hardware):
    fake_hardware(AMX)
    result = CliRunner().invoke(cli, [*TRAIN, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "precision bf16: this CPU (AMX) computes bf16 natively" in result.stderr.splitlines()
    assert "warning" not in result.stderr


def test_zoo_bench_announces_the_precision(catalog, fake_hardware):
    fake_hardware(AVX512)
    args = ["bench", "lenet", "--device", "cpu", "--mode", "infer", "--runs", "1", "--warmup", "0"]
    result = CliRunner().invoke(cli, [*args, "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "precision fp32: this CPU (AVX512) has no native bf16" in result.stderr.splitlines()
    assert "| fp32 |" in result.stdout or "fp32" in result.stdout


def test_the_fastnet_recipe_leaves_the_precision_to_the_machine(catalog):
    recipe = catalog.models.get("fastnet").meta["recipe"]["cifar10"]
    assert recipe["precision"] == "auto"


def test_a_cpu_run_without_a_layout_choice_trains_channels_last(tmp_path, catalog):
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, [*TRAIN, "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["channels_last"] is True


def test_no_channels_last_still_wins_over_the_device_default(tmp_path, catalog):
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, [*TRAIN, "--no-channels-last", "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["channels_last"] is False


def test_the_layout_default_is_channels_last_on_a_cpu_only():
    from zoo_core.device import default_channels_last

    assert default_channels_last("cpu") is True
    assert default_channels_last("cuda") is False
