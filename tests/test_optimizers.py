"""The run's optimizers: --optimizer NAME[:k=v], a parameter group's own optimizer, Muon's biases handed to
AdamW, the run's --momentum, the one-line errors, and the schedule and finished groups across an
OptimizerSet."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from zoo_core import create_model
from zoo_core.cli.train import parse_param_groups
from zoo_core.errors import BadInputError
from zoo_core.train.optim import freeze_finished_groups, hold_finished_groups, make_optimizer, make_schedule
from zoo_core.train.optimizer_set import OptimizerSet
from zoo_plugins.optimizers.muon import Muon


def run(optimizer: str = "sgd", groups: list | None = None, **settings: object) -> SimpleNamespace:
    """The fields of a run that make_optimizer reads."""
    defaults = {"lr": 0.02, "weight_decay": 5e-4, "momentum": None, "nesterov": None}
    return SimpleNamespace(optimizer=optimizer, param_groups=groups, **{**defaults, **settings})


@pytest.fixture
def lenet() -> torch.nn.Module:
    return create_model("lenet", num_classes=10, in_chans=1)  # conv filters, matrices and biases


def ids(params) -> set[int]:
    return {id(p) for p in params}


def held(optimizer: torch.optim.Optimizer) -> set[int]:
    return ids(p for group in optimizer.param_groups for p in group["params"])


def test_muon_alone_trains_the_weights_and_hands_the_biases_to_adamw_with_the_same_settings(lenet):
    optimizer = make_optimizer(lenet, run("muon"))
    assert isinstance(optimizer, OptimizerSet)
    muon, adamw = optimizer.optimizers
    assert type(muon) is Muon and type(adamw) is torch.optim.AdamW  # filters are 4-D: zoo's Muon
    assert held(muon) == ids(p for p in lenet.parameters() if p.ndim >= 2)
    assert held(adamw) == ids(p for p in lenet.parameters() if p.ndim == 1)
    assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [(0.02, 5e-4), (0.02, 0.0)]


def test_a_groups_optimizer_takes_that_group_and_the_runs_takes_the_rest_and_comes_last(lenet):
    groups = [{"params": "features.*weight", "optimizer": "muon:ns_steps=3", "lr_scale": 2}]
    optimizer = make_optimizer(lenet, run("sgd", groups, momentum=0.9))
    muon, sgd = optimizer.optimizers
    assert type(muon) is Muon and type(sgd) is torch.optim.SGD
    filters = [p for name, p in lenet.named_parameters() if name.startswith("features") and p.ndim == 4]
    assert held(muon) == ids(filters)
    assert muon.param_groups[0]["ns_steps"] == 3 and muon.param_groups[0]["lr"] == pytest.approx(0.04)
    assert held(sgd) == ids(lenet.parameters()) - ids(filters)
    # the logged learning rate is the last group's: the run's own optimizer, at the run's rate
    assert optimizer.param_groups[-1] is sgd.param_groups[-1] and optimizer.param_groups[-1]["lr"] == 0.02


def test_a_groups_muon_hands_its_biases_to_adamw_at_the_groups_settings(lenet):
    groups = [{"params": "features.*", "optimizer": "muon", "lr_scale": 0.5}]
    muon, adamw, sgd = make_optimizer(lenet, run("sgd", groups)).optimizers
    assert (type(muon), type(adamw), type(sgd)) == (Muon, torch.optim.AdamW, torch.optim.SGD)
    biases = [p for name, p in lenet.named_parameters() if name.startswith("features") and p.ndim == 1]
    assert held(adamw) == ids(biases) and adamw.param_groups[0]["lr"] == pytest.approx(0.01)


def test_matrices_alone_get_torchs_muon(lenet):
    groups = [{"params": "classifier.*weight", "optimizer": "muon"}]
    optimizer = make_optimizer(lenet, run("adamw", groups))
    assert type(optimizer.optimizers[0]) is torch.optim.Muon


@pytest.mark.parametrize(
    ("spec", "momentum"),
    [("sgd", 0.8), ("sgd:momentum=0.5", 0.5), ("rmsprop", 0.8), ("muon", 0.8), ("muon:momentum=0.6", 0.6)],
)
def test_the_runs_momentum_reaches_the_builders_that_take_it_unless_the_spec_sets_it(lenet, spec, momentum):
    optimizer = make_optimizer(lenet, run(spec, momentum=0.8, nesterov=False))
    first = optimizer.optimizers[0] if isinstance(optimizer, OptimizerSet) else optimizer
    assert first.param_groups[0]["momentum"] == momentum


def test_builders_without_momentum_ignore_the_runs(lenet):
    optimizer = make_optimizer(lenet, run("adamw", momentum=0.8, nesterov=True))
    assert type(optimizer) is torch.optim.AdamW and "momentum" not in optimizer.defaults


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("muonn", "Unknown optimizer 'muonn'. Did you mean 'muon'?"),
        ("muon:ns_step=3", "Optimizer 'muon' has no option 'ns_step'. Did you mean 'ns_steps'?"),
        ("muon:ns_steps=many", "Optimizer 'muon': option 'ns_steps' must be an integer, got 'many'"),
        ("muon:ns_dtype=float16", "ns_dtype must be one of bfloat16, float32, float64"),
        ("sgd:lr=0.1", "Optimizer 'sgd': option 'lr' is set by zoo"),
        ("adamw:beta1", "'beta1' is not option=value"),
    ],
)
def test_a_bad_spec_is_bad_input_in_one_line(lenet, spec, message):
    with pytest.raises(BadInputError) as caught:
        make_optimizer(lenet, run(spec))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_group_spec_names_the_group(lenet):
    groups = [{"params": "features.*", "optimizer": "muon:momentum=1.5"}]
    with pytest.raises(BadInputError, match=r"Optimizer 'muon' \(parameter group features\.\*\): momentum"):
        make_optimizer(lenet, run("sgd", groups))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--optimizer", "nosuch"), "Unknown optimizer 'nosuch'"),
        (("--optimizer", "muon:ns_step=3"), "has no option 'ns_step'"),
        (("--param-group", "features.*:optimizer=muon:ns_steps=x"), "'ns_steps' must be an integer"),
    ],
)
def test_zoo_train_refuses_a_bad_optimizer_with_exit_2_and_one_line(run_zoo, tmp_path, args, message):
    result = run_zoo(
        "train", "digits", "lenet", *args, "--epochs", "1", "--out", str(tmp_path / "run"), timeout=600
    )
    assert result.returncode == 2, result.stderr
    [error] = [line for line in result.stderr.splitlines() if not line.startswith("zoo: ")]  # not progress
    assert error.startswith("Error: ") and message in error and "Traceback" not in result.stderr


def test_param_group_takes_an_optimizer_spec_last_with_its_options_and_commas():
    [group] = parse_param_groups(("features.*:lr_scale=2,optimizer=muon:ns_steps=3,momentum=0.6",))
    assert group == {"params": "features.*", "lr_scale": 2, "optimizer": "muon:ns_steps=3,momentum=0.6"}


def test_onecycle_schedules_every_member_without_cycling_momentum(lenet):
    optimizer = make_optimizer(
        lenet, run("sgd", [{"params": "features.*", "optimizer": "muon"}], momentum=0.9)
    )
    schedule = make_schedule(optimizer, "onecycle", total_steps=10)
    alone = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.02)
    reference = make_schedule(alone, "onecycle", total_steps=10)  # one plain group: torch's curve
    for _ in range(9):
        optimizer.step()
        schedule.step()
        alone.step()
        reference.step()
        expected = alone.param_groups[0]["lr"]
        assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([expected] * 4)
    assert [g["momentum"] for g in optimizer.optimizers[0].param_groups] == [0.9]  # Muon's, not cycled


def test_finished_groups_are_held_and_frozen_in_every_member(lenet):
    groups = [{"params": "features.*", "optimizer": "muon", "epochs": 1}]
    optimizer = make_optimizer(lenet, run("sgd", groups))
    muon, adamw, sgd = optimizer.optimizers
    hold_finished_groups(optimizer, epoch=0)
    assert muon.param_groups[0]["lr"] == 0.02
    hold_finished_groups(optimizer, epoch=1)
    freeze_finished_groups(optimizer, epoch=1)
    assert muon.param_groups[0]["lr"] == 0.0 and adamw.param_groups[0]["lr"] == 0.0
    assert all(g["lr"] == 0.02 for g in sgd.param_groups)
    features = [p for name, p in lenet.named_parameters() if name.startswith("features")]
    assert not any(p.requires_grad for p in features)
    assert all(p.requires_grad for name, p in lenet.named_parameters() if name.startswith("classifier"))


def test_a_mistyped_option_is_refused_before_the_data_set_is_read(run_zoo, tmp_path):
    """The specs are checked at set-up as --aug's are: here the data are missing, and the typo is named."""
    result = run_zoo(
        "train", "cifar10", "fastnet", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "run"),
        "--param-group", "block*.conv*.weight:optimizer=muon:ns_step=3", timeout=600,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Optimizer 'muon' has no option 'ns_step'" in result.stderr and "CIFAR" not in result.stderr
