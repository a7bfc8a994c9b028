"""zoo check and zoo_core.kit.testing on optimizer entries: the built-ins pass every check, and an entry that
breaks the optimizer contract fails the check that names how."""

from __future__ import annotations

import pytest
import torch

from zoo_core.kit import contracts
from zoo_core.kit.conformance import FAIL, PASS, entry_checks
from zoo_core.kit.testing import ConformanceError, check_optimizer, check_plugin

DOC = {"momentum": "momentum factor"}


def sgd(param_groups, *, lr, momentum=0.0):
    return torch.optim.SGD(param_groups, lr=lr, momentum=momentum)


class Ascent(torch.optim.Optimizer):
    """Climbs the loss: a sign error an author might make."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=group["lr"])


class Pickled(torch.optim.SGD):
    """Keeps a Python object in its state, which torch.load(weights_only=True) refuses."""

    def step(self, closure=None):
        super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["kind"] = Ascent  # a class: not a tensor nor a plain value


def leaky(param_groups, *, lr):
    return torch.optim.SGD(param_groups, lr=lr)  # takes biases though it declares matrices_only


BAD = {
    # name: (builder, metadata, the check that fails, words of its reason)
    "noopts": (sgd, {}, "metadata", "missing metadata: options"),
    "undeclared": (sgd, {"options": {}}, "signature and options", "momentum missing from its options"),
    "phantom": (sgd, {"options": {**DOC, "beta": "x"}}, "signature and options", "names beta, not keywords"),
    "nolr": (lambda groups, *, rate=0.1: None, {"options": {}}, "signature and options", "keyword lr"),
    "required": (
        lambda groups, *, lr, k: None,
        {"options": {"k": "k"}},
        "signature and options",
        "k has none",
    ),
    "notopt": (lambda groups, *, lr: [groups], {"options": {}}, "builds over zoo's parameter groups", "list"),
    "ascent": (
        lambda groups, *, lr: Ascent(groups, lr),
        {"options": {}},
        "fits a regression",
        "did not fall",
    ),
    "pickled": (
        lambda groups, *, lr: Pickled(groups, lr=lr),
        {"options": {}},
        "state dict round trip",
        "weights_only=True",
    ),
    "leaky": (leaky, {"options": {}, "matrices_only": True}, "refuses 1-D tensors", "without a ValueError"),
    "selfish": (
        lambda groups, *, lr: torch.optim.SGD(groups, lr=lr),
        {"options": {}, "matrices_only": True, "others": "muon"},
        "others",
        "itself matrices_only",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_an_entry_breaking_the_contract_fails_the_check_that_says_how(catalog, name):
    builder, meta, check, reason = BAD[name]
    catalog.optimizers.register(name, builder, summary="a broken optimizer", **meta)
    rows = {c.check: c for c in entry_checks(catalog, "optimizer", name)}
    assert rows[check].status == FAIL and reason in rows[check].detail, rows[check]
    assert all(c.status == PASS for c in rows.values() if c.check in ("builder imports",))


def test_every_built_in_optimizer_passes_every_check(catalog):
    rows = check_plugin("builtin.optimizers")
    assert {c.entry for c in rows} == {f"optimizer {n}" for n in ("sgd", "adamw", "adam", "rmsprop", "muon")}
    assert all(c.status == PASS for c in rows)
    muon = [c.check for c in rows if c.entry == "optimizer muon"]
    assert "refuses 1-D tensors" in muon and "others" in muon


def test_the_testing_kit_raises_with_the_failed_optimizer_check(catalog):
    catalog.optimizers.register("ascent", BAD["ascent"][0], summary="climbs", options={})
    with pytest.raises(ConformanceError, match="fits a regression"):
        check_optimizer("ascent")
    assert len(check_optimizer("sgd")) == 6


def test_the_contract_reads_the_builder_signature():
    assert contracts.optimizer_keywords(sgd) == ({"momentum"}, False)
    assert contracts.optimizer_keywords(lambda groups, **options: None) == (set(), True)
    with pytest.raises(contracts.ContractError, match="parameter groups first"):
        contracts.optimizer_keywords(lambda *, lr: None)


def test_matrices_and_the_rest_split_by_dimension():
    tensors = [torch.zeros(3, 3), torch.zeros(3), torch.zeros(2, 1, 3, 3), torch.zeros(())]
    matrices, rest = contracts.split_matrices(tensors)
    assert [t.ndim for t in matrices] == [2, 4] and [t.ndim for t in rest] == [1, 0]
    assert contracts.others_optimizer({"matrices_only": True}) == "adamw"
    assert contracts.others_optimizer({"others": "sgd:momentum=0.9"}) == "sgd:momentum=0.9"
