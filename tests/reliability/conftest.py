"""The reliability suite's ledger: every test records the cases it tried and whether each held.

With ``ZOO_RELIABILITY_LEDGER=FILE`` set, the cases and each test's outcome and duration are written to FILE
as JSON when the session ends; ``benchmarks/reliability_report.py`` turns that into
benchmarks/results/reliability.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

LEDGER_ENV = "ZOO_RELIABILITY_LEDGER"


@dataclass
class Case:
    area: str
    kind: str
    case: str
    held: bool
    detail: str = ""


@dataclass
class Ledger:
    cases: list[Case] = field(default_factory=list)
    tests: list[dict] = field(default_factory=list)

    def record(self, area: str, kind: str, case: str, held: bool, detail: str = "") -> bool:
        self.cases.append(Case(area, kind, case, bool(held), " ".join(str(detail).split())[:300]))
        return bool(held)


LEDGER = Ledger()


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return LEDGER


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.nodeid.replace("\\", "/").startswith("tests/reliability/"):
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        LEDGER.tests.append(
            {"test": report.nodeid, "outcome": report.outcome, "seconds": round(report.duration, 2)}
        )
        _write()  # after every test: a run stopped early still says what it tried


def pytest_sessionfinish(session: pytest.Session) -> None:
    _write()


def _write() -> None:
    target = os.environ.get(LEDGER_ENV)
    if target:
        data = {"cases": [asdict(c) for c in LEDGER.cases], "tests": LEDGER.tests}
        Path(target).write_text(json.dumps(data, indent=1))


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained LeNet on digits as a zoo weights file (enough for predict and eval)."""
    from zoo_core import create_model
    from zoo_core.train.checkpoint import save_weights

    path = tmp_path_factory.mktemp("weights") / "model.safetensors"
    save_weights(
        path,
        create_model("lenet", num_classes=10, in_chans=1),
        model_name="lenet",
        model_kwargs={},
        dataset="digits",
        classes=[str(i) for i in range(10)],
        mean=[0.5],
        std=[0.25],
        input_size=[1, 32, 32],
    )
    return path
