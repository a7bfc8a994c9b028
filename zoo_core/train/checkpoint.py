"""Checkpoint files: weights with their model card (safetensors) and the training state (``last.pt``).

A weights file is enough to rebuild and run its model: the safetensors metadata names the model, its
keyword arguments, the classes and the normalization. Both kinds of file are written to a temporary file
in the same folder and moved into place, so a crash mid-write leaves the previous file whole.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from zoo_core.errors import BadInputError, UnknownNameError, ZooError
from zoo_core.version import __version__

WEIGHTS_SUFFIX = ".safetensors"
BEST_WEIGHTS = "best.safetensors"
FINAL_WEIGHTS = "model.safetensors"
TRAINING_STATE = "last.pt"
PREVIOUS_STATE = "previous.pt"  # the state before last.pt, kept in case last.pt is found damaged
CARD_KEYS = ("zoo_version", "model", "model_kwargs", "dataset", "classes", "mean", "std", "input_size")


class CheckpointWriteError(ZooError, OSError):
    """A checkpoint file could not be written (a full disk, no permission); what was saved before stays."""

    def __init__(self, message: str, path: Path, reason: str) -> None:
        super().__init__(message)
        self.path, self.reason = path, reason


@dataclass(frozen=True)
class ModelCard:
    """What a weights file says about its model: how to rebuild it and how to feed it."""

    model: str
    model_kwargs: dict[str, Any]
    dataset: str
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int, int]
    zoo_version: str = field(default=__version__)
    # the evaluation transform: an image is resized to input_size / crop_pct (its shorter side, the rest
    # centre-cropped), then its centre input_size is the model's input; 1.0 (and files without the key):
    # the whole picture resized to input_size
    crop_pct: float = 1.0

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel (``.module``) and torch.compile (``._orig_mod``)."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def save_weights(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    model_name: str,
    model_kwargs: dict[str, Any],
    dataset: str,
    classes: Sequence[str],
    mean: Sequence[float],
    std: Sequence[float],
    input_size: Sequence[int],
    crop_pct: float = 1.0,
) -> None:
    """Write the model's weights and its card to a safetensors file, atomically.

    ``model_kwargs`` are the keywords given to ``create_model`` besides the name; ``num_classes`` and
    ``in_chans`` default to ``len(classes)`` and ``input_size[0]`` when the model is rebuilt.
    """
    state = unwrap_model(model).state_dict()
    # A submodule compiled on its own keeps "_orig_mod." in its keys; the rebuilt model has none. The copy
    # to fresh CPU memory also separates tied tensors, which safetensors refuses to store twice.
    tensors = {
        key.replace("_orig_mod.", ""): value.detach().to("cpu", copy=True).contiguous()
        for key, value in state.items()
    }
    metadata = {
        "zoo_version": __version__,
        "model": model_name,
        "model_kwargs": json.dumps(model_kwargs, sort_keys=True),
        "dataset": dataset,
        "classes": json.dumps(list(classes)),
        "mean": json.dumps([float(m) for m in mean]),
        "std": json.dumps([float(s) for s in std]),
        "input_size": json.dumps([int(n) for n in input_size]),
        "crop_pct": json.dumps(float(crop_pct)),
    }
    _write_atomically(Path(path), lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_card(path: str | os.PathLike) -> ModelCard:
    """The model card of a weights file, read from its metadata alone (no tensor is loaded)."""
    path = Path(path)
    metadata = _read_metadata(path)
    missing = [key for key in CARD_KEYS if key not in metadata]
    if missing:
        raise BadInputError(
            f"{path} is a safetensors file but not zoo weights (missing metadata: {', '.join(missing)})"
        )
    try:
        model_kwargs = json.loads(metadata["model_kwargs"])
        classes = json.loads(metadata["classes"])
        mean = tuple(float(m) for m in json.loads(metadata["mean"]))
        std = tuple(float(s) for s in json.loads(metadata["std"]))
        input_size = tuple(int(n) for n in json.loads(metadata["input_size"]))
        crop_pct = float(json.loads(metadata.get("crop_pct", "1.0")))
    except (ValueError, TypeError) as err:
        raise BadInputError(f"{path} has malformed zoo metadata: {_one_line(err)}") from err
    if (
        not isinstance(model_kwargs, dict)
        or not isinstance(classes, list)
        or not all(isinstance(c, str) for c in classes)
        or len(input_size) != 3
        or not 0 < crop_pct <= 1
    ):
        raise BadInputError(
            f"{path} has malformed zoo metadata (model_kwargs, classes, input_size or crop_pct)"
        )
    return ModelCard(
        model=metadata["model"],
        model_kwargs=model_kwargs,
        dataset=metadata["dataset"],
        classes=classes,
        mean=mean,
        std=std,
        input_size=input_size,  # type: ignore[arg-type]  # checked to hold three ints above
        zoo_version=metadata["zoo_version"],
        crop_pct=crop_pct,
    )


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelCard]:
    """Rebuild the model a weights file describes, load its weights strictly, in eval mode on ``device``."""
    from zoo_core import create_model  # the catalog loads plugins: only when a model is actually built

    path = Path(path)
    card = read_card(path)
    kwargs = {"num_classes": card.num_classes, "in_chans": card.input_size[0], **card.model_kwargs}
    try:
        model = create_model(card.model, **kwargs)
    except UnknownNameError as err:
        raise BadInputError(f"{path} needs model '{card.model}', which no installed plugin provides") from err
    state = load_file(path, device=str(device))
    model.to(device)
    expected = model.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    reshaped = sorted(k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape)
    if missing or unexpected or reshaped:
        problems = [
            f"{label} {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", reshaped))
            if keys
        ]
        raise ZooError(f"{path} does not fit model '{card.model}': {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)
    return model.eval(), card


def save_state(path: str | os.PathLike, state: dict[str, Any], *, keep_previous: bool = True) -> None:
    """Write the training state (tensors and plain values only), atomically; the state it replaces is kept
    as ``previous.pt`` beside it (``keep_previous``), so the last two complete states are on disk."""
    path = Path(path)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:  # a file object, so a write error reaches us as an OSError
            torch.save(state, handle)

    _write_atomically(path, write, keep=path.with_name(PREVIOUS_STATE) if keep_previous else None)


def load_state(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training state written by :func:`save_state`; nothing but tensors and plain values loads."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"No training state at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError... for a damaged file
        raise ZooError(
            f"Training state {path} is damaged or not a zoo training state ({type(err).__name__}: "
            f"{_one_line(err)}); start a new run or restore the file"
        ) from err
    if not isinstance(state, dict):
        raise ZooError(f"Training state {path} holds a {type(state).__name__}, not a dict")
    return state


def load_latest_state(run_dir: Path) -> tuple[dict[str, Any], Path]:
    """The newest complete training state of a run: last.pt, or previous.pt (said in one line) when last.pt
    is damaged; the error about last.pt when neither loads."""
    last, previous = run_dir / TRAINING_STATE, run_dir / PREVIOUS_STATE
    try:
        return load_state(last), last
    except ZooError as err:
        if not previous.is_file():
            raise
        try:
            state = load_state(previous)
        except ZooError:
            raise err from None
        print(f"zoo: warning: {err}; resuming from {previous} instead", file=sys.stderr, flush=True)
        return state, previous


def describe_state(state: dict[str, Any]) -> str:
    """Where a training state stands: ``"epoch 2, step 44"`` at an epoch's end, else the batch within it."""
    epoch, step, batch = int(state["epoch"]), int(state["step"]), int(state.get("batch_in_epoch", 0))
    return f"epoch {epoch}, step {step}" if batch == 0 else f"epoch {epoch + 1} batch {batch}, step {step}"


def resolve_checkpoint(run_or_file: str | os.PathLike) -> Path:
    """The weights file meant by a run directory (best, else final weights) or by a weights file path."""
    path = Path(run_or_file)
    if path.is_dir():
        for name in (BEST_WEIGHTS, FINAL_WEIGHTS):
            if (path / name).is_file():
                return path / name
        raise BadInputError(f"{path} holds no {BEST_WEIGHTS} or {FINAL_WEIGHTS}; is it a finished zoo run?")
    if not path.exists():
        raise BadInputError(f"No such checkpoint or run directory: {path}")
    if path.suffix == ".pt":
        raise BadInputError(
            f"{path} is a training state (for zoo train --resume); pass its run directory or a "
            f"{WEIGHTS_SUFFIX} weights file"
        )
    return path


def _read_metadata(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise BadInputError(f"No such weights file: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata()
    except (SafetensorError, OSError) as err:
        raise BadInputError(f"{path} is not a safetensors weights file ({_one_line(err)})") from err
    if not metadata:
        raise BadInputError(f"{path} is a safetensors file but not zoo weights (it has no metadata)")
    return metadata


def remove_stale_temp_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files that a killed writer left in ``run_dir`` (``_write_atomically``'s
    ``.NAME.PID.HEX.tmp`` whose process is gone); returns them. A live writer's file is left alone."""
    removed = []
    for tmp in Path(run_dir).glob(".*.tmp"):
        parts = tmp.name.split(".")
        if len(parts) < 5 or not parts[-3].isdigit() or _process_alive(int(parts[-3])):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: delivers nothing, only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, or a platform without signal 0: assume it lives
        return True
    return True


def _write_atomically(path: Path, write: Callable[[str], object], keep: Path | None = None) -> None:
    """Run ``write(temp_path)`` next to ``path``, flush it to disk, then move it over ``path`` in one step;
    with ``keep``, the file it replaces becomes ``keep`` (a hard link renamed into place: at every moment
    both names hold a complete file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fresh unique name rather than mkstemp: the writer creates the file, so it gets the umask's mode.
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        if keep is not None and path.is_file():
            _keep_copy(path, keep)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        reason = write_failure(err)
        if reason is not None:  # a full disk, a lost mount, no permission: the user can act on it
            raise CheckpointWriteError(f"Could not write {path}: {reason}", path, reason) from err
        raise
    _fsync_dir(path.parent)


def write_failure(err: BaseException) -> str | None:
    """What the system said when a write failed, or None for an error that is not the system's.

    torch.save wraps the OSError of its file object in a RuntimeError of its own ("enforce fail at
    inline_container.cc") and safetensors reports one only as text ("os error 28"): both are found here."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and not isinstance(seen, CheckpointWriteError):
            return seen.strerror or _one_line(seen)
        seen = seen.__cause__ or seen.__context__
    found = re.search(r"os error (\d+)", str(err))
    return os.strerror(int(found.group(1))) if found else None


def _keep_copy(path: Path, keep: Path) -> None:
    link = keep.parent / f".{keep.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        os.link(path, link)
    except OSError:  # a file system without hard links: only the newest state is kept there
        return
    os.replace(link, keep)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform can open a folder (Windows cannot).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _one_line(err: BaseException, limit: int = 160) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
