"""OptimizerSet: several optimizers stepped, scheduled, scaled and checkpointed as one."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from zoo_core.train.optimizer_set import OptimizerSet
from zoo_plugins.optimizers.muon import Muon


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def muon_and_adamw(net: nn.Module) -> OptimizerSet:
    matrices = [p for p in net.parameters() if p.ndim >= 2]
    vectors = [p for p in net.parameters() if p.ndim < 2]
    return OptimizerSet(
        [
            Muon([{"params": matrices, "lr": 0.05, "weight_decay": 0.0}], momentum=0.9),
            torch.optim.AdamW([{"params": vectors, "lr": 0.01, "weight_decay": 0.0}]),
        ]
    )


BATCH = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
TARGET = torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(2))


def step(
    net: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None = None
) -> None:
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(net(BATCH), TARGET)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()


def test_param_groups_are_the_members_own_dicts():
    optimizer = muon_and_adamw(model())
    members = [g for opt in optimizer.optimizers for g in opt.param_groups]
    assert len(optimizer.param_groups) == 2
    assert all(a is b for a, b in zip(optimizer.param_groups, members, strict=True))
    assert repr(optimizer) == "OptimizerSet(Muon, AdamW)"


def test_the_state_round_trips_through_torch_save_and_the_next_step_is_the_same():
    net = model()
    optimizer = muon_and_adamw(net)
    for _ in range(3):
        step(net, optimizer)
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # as last.pt is read
    twin = copy.deepcopy(net)
    resumed = muon_and_adamw(twin)
    resumed.load_state_dict(state)
    members = [g for opt in resumed.optimizers for g in opt.param_groups]
    assert all(a is b for a, b in zip(resumed.param_groups, members, strict=True))  # shared after the load
    step(net, optimizer)
    step(twin, resumed)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), twin.parameters(), strict=True))


@pytest.mark.parametrize(
    "state",
    [
        {"optimizers": [{}]},  # one member's state for two
        {"state": {}, "param_groups": []},  # a single optimizer's state dict
    ],
)
def test_a_state_of_other_optimizers_is_refused_naming_these(state):
    with pytest.raises(ValueError, match=r"not that of these 2 optimizers \(Muon, AdamW\)"):
        muon_and_adamw(model()).load_state_dict(state)


def test_a_member_refuses_a_state_of_another_shape():
    other = muon_and_adamw(nn.Sequential(nn.Linear(3, 3)))  # one matrix, one bias: not this model's groups
    with pytest.raises(ValueError):
        muon_and_adamw(model()).load_state_dict(other.state_dict())


def test_a_schedule_scales_every_members_groups_from_their_own_base():
    optimizer = muon_and_adamw(model())
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 ** (s + 1))
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.025, 0.005])
    optimizer.step()
    schedule.step()
    assert [o.param_groups[0]["lr"] for o in optimizer.optimizers] == pytest.approx([0.0125, 0.0025])


def test_onecycle_without_momentum_cycling_steps_every_group():
    optimizer = muon_and_adamw(model())
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[0.05, 0.01], total_steps=8, cycle_momentum=False
    )
    for _ in range(7):
        optimizer.step()
        schedule.step()
    muon, adamw = (o.param_groups[0]["lr"] for o in optimizer.optimizers)
    assert muon == pytest.approx(5 * adamw) and muon < 0.05 / 100


def test_a_disabled_grad_scaler_steps_the_set_as_a_plain_step_does():
    plain, scaled = model(), model()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    plain_opt, scaled_opt = muon_and_adamw(plain), muon_and_adamw(scaled)
    for _ in range(2):
        step(plain, plain_opt)
        step(scaled, scaled_opt, scaler)
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), scaled.parameters(), strict=True))
    assert not torch.equal(next(plain.parameters()), next(model().parameters()))


def test_zero_grad_clears_every_members_gradients():
    net = model()
    optimizer = muon_and_adamw(net)
    nn.functional.cross_entropy(net(BATCH), TARGET).backward()
    optimizer.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_a_set_needs_two_members_and_groups_are_added_to_a_member():
    net = model()
    with pytest.raises(ValueError, match="two or more"):
        OptimizerSet([torch.optim.SGD(net.parameters(), lr=0.1)])
    with pytest.raises(NotImplementedError, match=r"one of OptimizerSet\.optimizers"):
        muon_and_adamw(net).add_param_group({"params": [torch.zeros(2, requires_grad=True)]})
