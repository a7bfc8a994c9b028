"""Which run ``zoo train`` continues: ``--resume DIR``, ``--resume auto``, the same command run again, and a
restart under torchrun. A job script (SLURM ``--requeue``, a Kubernetes Job, ``torchrun --max-restarts``)
repeats one unchanged command until the run is done:

- ``--resume auto``: the newest unfinished run (``--out DIR``, else the runs of DATASET MODEL under
  ./runs), else a new run; on a finished one, exit 0 saying so.
- ``zoo train DATASET MODEL --out DIR`` again on a run of the same settings continues it (a finished one:
  exit 0); other settings are refused (exit 2) naming the options that differ.
- a restarted torchrun worker (``TORCHELASTIC_RESTART_COUNT`` > 0) without ``--out``: as ``--resume auto``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from zoo_core.errors import BadInputError
from zoo_core.train.config import TrainConfig

# what a resumed run may change: where it runs and where its data are
RESUME_OPTIONS = {"resume", "device", "data_dir", "stop_signals", "save_every"}
STATE_FILES = ("last.pt", "previous.pt")


@dataclass(frozen=True)
class Choice:
    """What to do: train ``cfg`` in ``run_dir`` (``resume``: from its state), or nothing (``finished``)."""

    run_dir: Path
    cfg: TrainConfig
    resume: bool
    finished: bool = False
    line: str = ""  # one line for stderr saying which


def restarted_by_torchrun() -> bool:
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0


def read_run_config(run_dir: Path) -> TrainConfig:
    """The settings a run saved in its config.json, checked: BadInputError naming the file if damaged."""
    path = run_dir / "config.json"
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("dataset", "model")):
            raise ValueError("not the settings of a zoo run")
        cfg = TrainConfig.from_dict(data)
        cfg.validate()
    except (OSError, ValueError, TypeError, BadInputError) as err:
        reason = " ".join(str(err).split())[:160] or type(err).__name__
        raise BadInputError(f"--resume: {path} is damaged ({reason})") from err
    return cfg


def progress(run_dir: Path) -> tuple[int, int, str] | None:
    """(completed epochs, epochs, where) of a run's newest readable state; None when it has none yet."""
    import torch  # only here: reading a state needs it

    from zoo_core.train.checkpoint import describe_state

    for name in STATE_FILES:
        path = run_dir / name
        if not path.is_file():
            continue
        try:  # mmap: only the few plain values are read, not the tensors
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            epochs = json.loads(state["config"])["epochs"]
            return int(state["epoch"]), int(epochs), describe_state(state)
        except Exception:  # damaged: the Trainer says so when it loads it; try the previous state
            continue
    return None


def finished(run_dir: Path) -> bool:
    done = progress(run_dir)
    return done is not None and done[0] >= done[1]


def continuing(run_dir: Path, cfg: TrainConfig, how: str) -> Choice:
    done = progress(run_dir)
    if done is not None and done[0] >= done[1]:
        line = f"zoo: {run_dir} has finished ({done[0]}/{done[1]} epochs); nothing to do"
        return Choice(run_dir, cfg, resume=True, finished=True, line=line)
    where = f"from {done[2]}" if done else "from the start (no state saved yet)"
    return Choice(run_dir, cfg, resume=True, line=f"zoo: {how} {run_dir} {where}")


def runs_of(dataset: str | None, model: str | None, root: Path = Path("runs")) -> list[Path]:
    """The run directories under ``root`` training MODEL on DATASET (either None: any), newest first."""
    found = []
    for config_file in root.glob("*/config.json"):
        try:
            saved = json.loads(config_file.read_text())
        except (OSError, ValueError):
            continue  # a damaged run is not a candidate; naming it with --resume DIR says what is wrong
        if not isinstance(saved, dict):
            continue
        if dataset in (None, saved.get("dataset")) and model in (None, saved.get("model")):
            found.append(config_file.parent)
    return sorted(found, key=lambda p: p.name, reverse=True)


def choose_auto(out: str | None, dataset: str | None, model: str | None, new: TrainConfig | None) -> Choice:
    """``--resume auto``: ``new`` (the command's own settings, None without DATASET MODEL) starts a run
    when there is none to continue."""
    if out is not None:
        run_dir = Path(out)
        if (run_dir / "config.json").is_file():
            cfg = checked_against(read_run_config(run_dir), run_dir, dataset, model)
            return continuing(run_dir, cfg, "--resume auto: continuing")
        candidates = []
    else:
        candidates = runs_of(dataset, model)
        unfinished = [run for run in candidates if not finished(run)]
        if unfinished:
            return continuing(unfinished[0], read_run_config(unfinished[0]), "--resume auto: continuing")
        if candidates:
            return continuing(candidates[0], read_run_config(candidates[0]), "--resume auto:")
    if new is None:
        where = out or "./runs"
        raise BadInputError(f"--resume auto: no run to continue in {where}; give DATASET MODEL to start one")
    run_dir = Path(out) if out else default_run_dir(new)
    return Choice(
        run_dir, new, resume=False, line=f"zoo: --resume auto: no run to continue; starting {run_dir}"
    )


def choose_again(run_dir: Path, requested: TrainConfig) -> Choice:
    """``zoo train DATASET MODEL --out DIR`` on a DIR that holds a run: continued when its settings are the
    command's, refused (exit 2) naming the first options that differ when not."""
    saved = read_run_config(run_dir)
    differ = differences(requested, saved)
    if differ:
        said = "; ".join(differ[:3]) + (" …" if len(differ) > 3 else "")
        raise BadInputError(
            f"{run_dir} already holds a run with other settings ({said}): continue it with --resume "
            f"{run_dir}, or pick another --out"
        )
    return continuing(run_dir, saved, "the same command again: continuing")


def differences(requested: TrainConfig, saved: TrainConfig) -> list[str]:
    """The options set in ``requested`` (not None) whose value ``saved`` does not hold."""
    found = []
    for field in dataclasses.fields(TrainConfig):
        mine, theirs = getattr(requested, field.name), getattr(saved, field.name)
        if field.name in RESUME_OPTIONS or mine is None or mine == theirs:
            continue
        found.append(f"--{field.name.replace('_', '-')} {mine} here, {theirs} there")
    return found


def checked_against(cfg: TrainConfig, run_dir: Path, dataset: str | None, model: str | None) -> TrainConfig:
    if (dataset and dataset != cfg.dataset) or (model and model != cfg.model):
        raise BadInputError(f"{run_dir} trains {cfg.model} on {cfg.dataset}, not {model} on {dataset}")
    return cfg


def default_run_dir(cfg: TrainConfig) -> Path:
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(f"runs/{stamp}-{cfg.dataset}-{cfg.model.replace('/', '_')}")
