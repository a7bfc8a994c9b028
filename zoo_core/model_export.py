"""A trained model out of zoo: ONNX (for onnxruntime and everything that reads ONNX) or TorchScript.

Export goes through torch's own exporters (torch.onnx's dynamo-based exporter: the legacy TorchScript-based
one cannot express LeNet's adaptive pooling with a dynamic batch), and every file is checked before it is
moved into place: the exported model and the PyTorch model run on the same batch, of another size than the
one traced, and their logits may differ by at most ``TOLERANCE``. The model card travels with the file: in
ONNX ``metadata_props``, in TorchScript an extra file ``zoo_card.json``, with the keys and JSON-string values
of the safetensors metadata.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from zoo_core.errors import BadInputError, ZooError

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
TOLERANCE = 1e-3  # max abs difference of the logits, exported against PyTorch, in fp32
TRACE_BATCH = 2
CHECK_BATCH = 16  # not the traced size: the check exercises the dynamic batch axis
INPUT_NAME, OUTPUT_NAME = "input", "logits"
CARD_FILE = "zoo_card.json"  # the TorchScript extra file holding the card


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    max_abs_diff: float
    check_batch: int
    seconds: float


def export_model(weights: str | os.PathLike, output: str | os.PathLike, fmt: str) -> ExportResult:
    """Export the model of a zoo weights file to ``output`` as ``fmt`` and check it against PyTorch.

    Raises ZooError (and leaves no file) when the export fails or its logits differ by more than
    ``TOLERANCE``."""
    from zoo_core.train.checkpoint import load_model

    if fmt not in FORMATS:
        raise BadInputError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    started = time.perf_counter()
    model, card = load_model(weights, device="cpu")
    model.float().eval()
    metadata = _card_metadata(Path(weights))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.parent / f".{output.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(TRACE_BATCH, *card.input_size, generator=generator)
    check = torch.randn(CHECK_BATCH, *card.input_size, generator=generator)
    try:
        if fmt == "onnx":
            _to_onnx(model, example, tmp, metadata)
            got = _run_onnx(tmp, check)
        else:
            _to_torchscript(model, example, tmp, metadata)
            got = _run_torchscript(tmp, check)
        with torch.no_grad():
            want = model(check).float()
        if got.shape != want.shape:
            raise ZooError(
                f"The exported model returns shape {tuple(got.shape)}, PyTorch {tuple(want.shape)}"
            )
        diff = float((got - want).abs().max())
        if not diff <= TOLERANCE:  # also catches NaN
            raise ZooError(
                f"The {fmt} export of {card.model} differs from PyTorch by {diff:.3g} (max abs, logits of a "
                f"batch of {CHECK_BATCH}); more than {TOLERANCE:g}: the export is not faithful, not written"
            )
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(output, fmt, diff, CHECK_BATCH, time.perf_counter() - started)


def _card_metadata(weights: Path) -> dict[str, str]:
    """The safetensors metadata of a weights file: the model card as str → str (JSON strings)."""
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as handle:
        return dict(handle.metadata() or {})


def _to_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, str]) -> None:
    try:
        import onnx
    except ImportError as err:
        raise ZooError(
            "ONNX export needs onnx, onnxruntime and onnxscript: pip install 'zoo-models[export]'"
        ) from err
    batch = torch.export.Dim("batch", min=1)
    try:
        with _quiet():
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
            program.save(str(path))
    except ZooError:
        raise
    except Exception as err:  # torch.export and the translation raise many types for unsupported code
        raise ZooError(f"ONNX export failed: {_one_line(err)}") from err
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {**metadata, "zoo_format": "onnx"})
    onnx.save(proto, str(path))


def _run_onnx(path: Path, batch: torch.Tensor) -> torch.Tensor:
    try:
        import onnxruntime
    except ImportError as err:
        raise ZooError("Checking an ONNX export needs onnxruntime: pip install 'zoo-models[export]'") from err
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})
    return torch.from_numpy(logits).float()


def _to_torchscript(
    model: torch.nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, str]
) -> None:
    try:
        with _quiet(), torch.no_grad():
            traced = torch.jit.trace(model, example, check_inputs=[(example[:1],)])
            torch.jit.save(traced, str(path), _extra_files={CARD_FILE: json.dumps(metadata)})
    except Exception as err:
        raise ZooError(f"TorchScript export failed: {_one_line(err)}") from err


def _run_torchscript(path: Path, batch: torch.Tensor) -> torch.Tensor:
    with _quiet(), torch.no_grad():
        return torch.jit.load(str(path), map_location="cpu")(batch).float()


def read_onnx_card(path: str | os.PathLike) -> dict[str, str]:
    """The metadata_props of an ONNX file (the model card an export wrote)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {prop.key: prop.value for prop in proto.metadata_props}


def read_torchscript_card(path: str | os.PathLike) -> dict[str, str]:
    """The model card stored beside a TorchScript export."""
    extra = {CARD_FILE: ""}
    torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra[CARD_FILE])


@contextlib.contextmanager
def _quiet():
    """The exporters narrate each stage on stdout and warn about details a user cannot act on."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _one_line(err: BaseException, limit: int = 300) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
