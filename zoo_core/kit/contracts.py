"""The contracts between zoo and the entries plugins register, defined once.

The code that uses an entry (the Trainer, the loaders, ``zoo eval``, ``zoo bench``) and the code that checks
one (``zoo check``, ``zoo_core.kit.testing``) both call these functions, so an entry that passes the checks is
an entry that trains. DESIGN.md states the same contracts in words:

- **Model**: ``builder(*, num_classes, in_chans=3, **kwargs) -> nn.Module``; float (N, C, H, W) in, logits
  (N, num_classes) out. Its registered ``input_size`` is what it is fed; a module may state its own
  ``input_size`` attribute, which must then agree.
- **Data set**: ``builder(*, root, split, **kwargs)`` returns an object with ``classes`` (list of str) and
  either *in memory* — ``images`` uint8 N×C×H×W and ``labels`` int64 (N,) tensors, nothing else promised
  (no ``__getitem__``) — or *streamed* — ``__len__`` and ``__getitem__(i) -> (uint8 C×H×W tensor, int)``,
  with the optional parts of ``StreamedDataset`` (decoding on the device).
  Its input size comes from the data set (an ``input_size`` attribute, else the in-memory images), else the
  registry metadata, else the first streamed sample: never by indexing what does not promise indexing.
- **Batch augmentation**: ``builder(*, num_classes, **options)`` returns ``aug(x, y, generator=None)``;
  ``x`` float (N, C, H, W) keeps its shape, ``y`` int64 labels (N,) or soft targets (N, num_classes) whose
  rows sum to 1 come back as either.
- **Optimizer**: ``builder(param_groups, *, lr, **options) -> torch.optim.Optimizer``; ``param_groups`` is
  what torch's optimizers take (zoo passes a list of dicts with ``params``, ``lr`` and ``weight_decay``),
  each option a keyword named in the ``options`` metadata. A ``matrices_only`` optimizer is given only
  tensors of two or more dimensions (matrices, convolution filters) and refuses others with a ValueError;
  zoo gives those to the optimizer its ``others`` metadata names (default ``adamw``).

Functions raise ``ContractError`` (exit 1: the plugin is at fault, not the user) with a message that names
what was expected and what came.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from zoo_core.errors import ZooError

if TYPE_CHECKING:
    import torch
    from torch import nn

# metadata every registration must carry (values may be None where DESIGN.md allows: a data set whose
# classes or size are discovered from files)
REQUIRED_META: dict[str, tuple[str, ...]] = {
    "model": ("input_size", "num_classes", "family"),
    "dataset": ("num_classes", "input_size", "splits"),
    "augmentation": ("level", "soft_targets"),
    "optimizer": ("options",),
}
DEFAULT_INPUT_SIZE = (3, 32, 32)  # a model registered without input_size is fed this
DEFAULT_NUM_CLASSES = 10
IN_MEMORY, STREAMED = "in-memory", "streamed"
SPLITS = ("train", "test")  # the splits zoo train uses
SOFT_TARGET_TOLERANCE = 1e-4


class ContractError(ZooError):
    """A registered entry broke its contract; the message names the entry, what was expected and what came."""


def missing_metadata(kind: str, meta: Mapping[str, Any]) -> list[str]:
    """The required metadata keys of ``kind`` that ``meta`` lacks."""
    return [key for key in REQUIRED_META[kind] if key not in meta]


# -- data sets --------------------------------------------------------------------------------------------


def is_in_memory(dataset: object) -> bool:
    """Whether ``dataset`` offers the in-memory contract (``images`` and ``labels`` tensors)."""
    import torch

    return all(isinstance(getattr(dataset, a, None), torch.Tensor) for a in ("images", "labels"))


def dataset_kind(dataset: object, where: str = "the data set") -> str:
    """``IN_MEMORY`` or ``STREAMED``, after checking what each promises without reading any sample:
    ``classes``; in memory, the tensors' dtypes and shapes; streamed, ``__len__`` and ``__getitem__``."""
    import torch

    classes = getattr(dataset, "classes", None)
    if (
        classes is None
        or isinstance(classes, str)
        or not len(classes)
        or not all(isinstance(c, str) for c in classes)
    ):
        raise ContractError(f"{where} must have 'classes', a non-empty list of str; got {classes!r:.80}")
    if is_in_memory(dataset):
        images, labels = dataset.images, dataset.labels  # type: ignore[attr-defined]
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ContractError(
                f"{where}: 'images' must be uint8 N×C×H×W, got {images.dtype} {tuple(images.shape)}"
            )
        if labels.dtype != torch.int64 or tuple(labels.shape) != tuple(images.shape[:1]):
            raise ContractError(
                f"{where}: 'labels' must be int64 of shape ({len(images)},), "
                f"got {labels.dtype} {tuple(labels.shape)}"
            )
        if len(images) == 0:
            raise ContractError(f"{where} is empty")
        return IN_MEMORY
    if hasattr(dataset, "images") or hasattr(dataset, "labels"):
        kinds = {a: type(getattr(dataset, a, None)).__name__ for a in ("images", "labels")}
        raise ContractError(f"{where}: in memory, 'images' and 'labels' must both be tensors, got {kinds}")
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise ContractError(
            f"{where} is neither in memory (tensors 'images' and 'labels') nor streamed "
            f"(a torch Dataset with __len__ and __getitem__): got {type(dataset).__name__}"
        )
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ContractError(f"{where} is empty")
    return STREAMED


@runtime_checkable
class StreamedDataset(Protocol):
    """A data set too large for memory, read sample by sample in DataLoader workers.

    Required: ``classes`` (list of str), ``__len__`` and ``__getitem__(i) -> (image, label)``, the image a
    uint8 C×H×W tensor at the stored size (one size for the whole split), the label an int. The loader
    cuts random resized crops and flips from that image itself, in its workers on a CPU or on the batch
    elsewhere, for any streamed set: nothing more is needed for them.

    Optional attributes: ``input_size`` (C, H, W) the model is fed, when it is a centre crop of the stored
    size; ``mean`` and ``std`` (per channel, in [0, 1]); ``recipe`` (training defaults).

    Optional, together — decoding on the training device: ``decode == "device"`` asks the loader for it;
    then ``encoded(i) -> ((item, j), label)``, run in a worker, gives either an encoded file as a 1-D uint8
    tensor or the decoded C×H×W uint8 image at the stored size, and the index ``j`` of the sample read
    (a stand-in's, when sample ``i`` was unreadable); ``decode_batch(items, device) -> (x, stand_ins)``,
    run in the main process on a batch of those ``(item, j)``, gives the uint8 N×C×H×W batch at the stored
    size on ``device`` and the (position, stand-in position) pairs where an item did not decode and another
    of the batch took its place (the loader copies the stand-in's label).

    Optional, together — read shard by shard (tar shards, object stores: data read in sequence, not by
    index): ``shard_sizes`` (the samples of each shard, in order, summing to ``len``); ``samples(shard,
    start, stop)``, run in a worker, yields the raw (undecoded) items of samples ``start .. stop`` of that
    shard, exactly ``stop - start`` of them, cheaply (the loader skips items it does not need);
    ``decode(item) -> (image, label) | None``, the image as ``__getitem__`` gives it, None for a damaged
    item (the data set has reported it; under its strict mode it raises instead; another sample stands in).
    The loader then plans each epoch by shards (``zoo_core.data.shard_plan``) and ``__getitem__`` is only
    for checks and single samples: it may read a shard up to the sample.
    """

    classes: Sequence[str]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]: ...


def decodes_on_device(dataset: object, where: str = "the data set") -> bool:
    """Whether a streamed data set asks to be decoded on the device (``decode == "device"``); one that asks
    without ``encoded`` and ``decode_batch`` breaks the ``StreamedDataset`` contract."""
    if getattr(dataset, "decode", None) != "device":
        return False
    missing = [name for name in ("encoded", "decode_batch") if not callable(getattr(dataset, name, None))]
    if missing:
        raise ContractError(f"{where} asks for decode='device' but has no {' or '.join(missing)}()")
    return True


def is_sharded(dataset: object) -> bool:
    """Whether a streamed data set is read shard by shard (``shard_sizes``, ``samples``, ``decode``)."""
    return getattr(dataset, "shard_sizes", None) is not None and all(
        callable(getattr(dataset, name, None)) for name in ("samples", "decode")
    )


def check_decoded_batch(
    decoded: Any, n: int, shape: Sequence[int], where: str = "decode_batch"
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """What ``decode_batch`` returns for ``n`` items of images of ``shape`` (C, H, W): (uint8 N×C×H×W, the
    stand-in pairs, each two positions in the batch); returns it."""
    import torch

    if not isinstance(decoded, tuple | list) or len(decoded) != 2:
        raise ContractError(f"{where} must return (batch, stand_ins), got {type(decoded).__name__}")
    x, stand_ins = decoded
    expected = (n, *(int(v) for v in shape))
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or tuple(x.shape) != expected:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ContractError(f"{where}: the batch must be uint8 {expected}, got {got}")
    pairs = [tuple(p) for p in stand_ins]
    if not all(len(p) == 2 and all(isinstance(v, int) and 0 <= v < n for v in p) for p in pairs):
        raise ContractError(f"{where}: stand_ins must be (position, position) pairs in 0..{n - 1}")
    return x, pairs  # type: ignore[return-value]


def check_sample(sample: Any, num_classes: int, where: str = "a sample") -> tuple[torch.Tensor, int]:
    """One streamed sample: (uint8 C×H×W tensor, int label in range); returns them."""
    import torch

    if not isinstance(sample, tuple | list) or len(sample) != 2:
        raise ContractError(f"{where} must be a pair (image, label), got {type(sample).__name__}")
    image, label = sample
    if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8 or image.dim() != 3:
        got = (
            f"{image.dtype} {tuple(image.shape)}" if isinstance(image, torch.Tensor) else type(image).__name__
        )
        raise ContractError(f"{where}: the image must be a uint8 C×H×W tensor, got {got}")
    if isinstance(label, torch.Tensor):
        if label.numel() != 1 or label.is_floating_point():
            raise ContractError(f"{where}: the label must be an int, got {label.dtype} {tuple(label.shape)}")
        label = int(label)
    if isinstance(label, bool) or not isinstance(label, int):
        raise ContractError(f"{where}: the label must be an int, got {type(label).__name__}")
    if not 0 <= label < num_classes:
        raise ContractError(f"{where}: label {label} is outside 0..{num_classes - 1}")
    return image, label


def check_labels(labels: torch.Tensor, num_classes: int, where: str = "the data set") -> None:
    """Every label in ``0 .. num_classes - 1``."""
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise ContractError(
            f"{where}: labels span {low}..{high} but there are {num_classes} classes (0..{num_classes - 1})"
        )


def dataset_input_size(dataset: object, meta: Mapping[str, Any] | None = None) -> tuple[int, int, int]:
    """(C, H, W) of a data set's images: its own ``input_size``, else its in-memory images, else the
    registry metadata, else its first streamed sample. Never indexes an in-memory data set.

    Checks the data set's contract first (``dataset_kind``), so a consumer that asks for the input size
    fails with the contract's message rather than deep inside training."""
    kind = dataset_kind(dataset)
    size = getattr(dataset, "input_size", None)
    if size is None and kind == IN_MEMORY:
        size = tuple(dataset.images.shape[1:])  # type: ignore[attr-defined]
    if size is None and meta:
        size = meta.get("input_size")
    if size is None:  # only a streamed data set gets here, and it promises indexing
        size = tuple(check_sample(dataset[0], len(dataset.classes), "sample 0")[0].shape)  # type: ignore[index,attr-defined]
    return _size(size, "the data set's input_size")


def _size(value: Any, what: str) -> tuple[int, int, int]:
    try:
        size = tuple(int(n) for n in value)
    except (TypeError, ValueError):
        raise ContractError(f"{what} must be (C, H, W), got {value!r}") from None
    if len(size) != 3 or min(size) < 1:
        raise ContractError(f"{what} must be three positive ints (C, H, W), got {value!r}")
    return size  # type: ignore[return-value]


# -- models -----------------------------------------------------------------------------------------------


def model_input_size(meta: Mapping[str, Any], where: str = "input_size") -> tuple[int, int, int]:
    """The (C, H, W) a registered model is fed: its ``input_size`` metadata, else ``DEFAULT_INPUT_SIZE``."""
    size = meta.get("input_size")
    return DEFAULT_INPUT_SIZE if size is None else _size(size, where)


def model_num_classes(meta: Mapping[str, Any]) -> int:
    """The class count a registered model is built with when no data set says: metadata, else 10."""
    return int(meta.get("num_classes") or DEFAULT_NUM_CLASSES)


def module_input_size(module: nn.Module) -> tuple[int, int, int] | None:
    """The input size a built module states itself (an ``input_size`` attribute), or None."""
    size = getattr(module, "input_size", None)
    return None if size is None else _size(size, "the module's input_size")


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def check_module(obj: Any, where: str = "the model builder") -> nn.Module:
    """What a model builder returned: a ``torch.nn.Module``."""
    from torch import nn

    if not isinstance(obj, nn.Module):
        raise ContractError(f"{where} must return a torch.nn.Module, got {type(obj).__name__}")
    return obj


def check_logits(out: Any, batch: int, num_classes: int, where: str = "the model") -> torch.Tensor:
    """A forward's result: a floating tensor of logits (batch, num_classes)."""
    import torch

    if not isinstance(out, torch.Tensor):
        raise ContractError(f"{where} must return a tensor of logits, got {type(out).__name__}")
    if tuple(out.shape) != (batch, num_classes) or not out.is_floating_point():
        raise ContractError(
            f"{where} gave {out.dtype} {tuple(out.shape)}, expected float logits ({batch}, {num_classes})"
        )
    return out


# -- batch augmentations ----------------------------------------------------------------------------------


def augmentation_level(meta: Mapping[str, Any]) -> str:
    """``"batch"`` (the default) or ``"sample"``."""
    return str(meta.get("level", "batch"))


def target_kind(y: Any, batch: int, num_classes: int, where: str = "the targets") -> str:
    """``"labels"`` for int64 (N,), ``"soft"`` for float (N, num_classes); anything else is refused.
    No host synchronisation: safe on every training step."""
    import torch

    if isinstance(y, torch.Tensor):
        if y.dim() == 1 and y.dtype == torch.int64 and y.shape[0] == batch:
            return "labels"
        if y.dim() == 2 and y.is_floating_point() and tuple(y.shape) == (batch, num_classes):
            return "soft"
        got = f"{y.dtype} of shape {tuple(y.shape)}"
    else:
        got = type(y).__name__
    raise ContractError(
        f"{where} must be int64 labels ({batch},) or soft targets ({batch}, {num_classes}), got {got}"
    )


def check_soft_targets(y: torch.Tensor, where: str = "the soft targets") -> None:
    """Rows that are probability distributions: non-negative, finite, summing to 1."""
    sums = y.double().sum(1)
    worst = float((sums - 1).abs().max())
    if not bool(y.isfinite().all()) or bool((y < -SOFT_TARGET_TOLERANCE).any()):
        raise ContractError(f"{where} must be finite and non-negative")
    if worst > SOFT_TARGET_TOLERANCE:
        raise ContractError(
            f"{where} must sum to 1 per row; a row sums to {float(sums[(sums - 1).abs().argmax()]):.4f}"
        )


def check_augmented(
    x: torch.Tensor,
    out: Any,
    num_classes: int,
    where: str = "the augmentation",
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """An augmentation's result for input batch ``x``: a pair (x, y) with x's shape, a floating x on x's
    device, and targets of either kind (soft ones summing to 1). Returns (x, y, target kind)."""
    import torch

    if not isinstance(out, tuple | list) or len(out) != 2:
        raise ContractError(f"{where} must return a pair (x, y), got {type(out).__name__}")
    out_x, out_y = out
    if not isinstance(out_x, torch.Tensor) or tuple(out_x.shape) != tuple(x.shape):
        got = tuple(out_x.shape) if isinstance(out_x, torch.Tensor) else type(out_x).__name__
        raise ContractError(f"{where} changed the batch shape {tuple(x.shape)} to {got}")
    if not out_x.is_floating_point() or out_x.device != x.device:
        raise ContractError(f"{where} returned {out_x.dtype} on {out_x.device}; expected float on {x.device}")
    kind = target_kind(out_y, x.shape[0], num_classes, f"{where}: targets")
    if kind == "soft":
        check_soft_targets(out_y, f"{where}: soft targets")
    return out_x, out_y, kind


# -- optimizers -------------------------------------------------------------------------------------------

OPTIMIZER_RESERVED = ("param_groups", "lr")  # set by zoo for every optimizer, never by a spec's options
OPTIMIZER_FROM_RUN = ("momentum", "nesterov")  # the run's --momentum/--nesterov, where the builder takes them
DEFAULT_OTHERS = "adamw"


def matrices_only(meta: Mapping[str, Any]) -> bool:
    """Whether the optimizer takes only tensors of two or more dimensions (``matrices_only`` metadata)."""
    return bool(meta.get("matrices_only", False))


def others_optimizer(meta: Mapping[str, Any]) -> str:
    """The spec of the optimizer that trains what a ``matrices_only`` one does not take."""
    return str(meta.get("others") or DEFAULT_OTHERS)


def split_matrices(params: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(the tensors of two or more dimensions, the rest): what a ``matrices_only`` optimizer takes and what
    goes to its ``others``."""
    return [p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2]


def optimizer_options(meta: Mapping[str, Any], where: str = "the optimizer's options") -> dict[str, str]:
    """The ``options`` metadata: option name → a description (shown by ``zoo info``)."""
    options = meta.get("options")
    if not isinstance(options, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in options.items()
    ):
        raise ContractError(f"{where} must be a dict of option name → description, got {options!r:.80}")
    return dict(options)


def optimizer_keywords(builder: Any, where: str = "the optimizer builder") -> tuple[set[str], bool]:
    """The options ``builder`` takes besides its parameter groups and ``lr``, and whether it takes
    ``**options``, after checking its signature: ``builder(param_groups, *, lr, **options)``."""
    try:
        parameters = list(inspect.signature(builder).parameters.values())
    except (TypeError, ValueError):
        raise ContractError(f"{where} has no signature to read") from None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not parameters or parameters[0].kind not in positional:
        raise ContractError(
            f"{where} must take the parameter groups first: builder(param_groups, *, lr, ...)"
        )
    rest = parameters[1:]
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    named = {p.name: p for p in rest if p.kind in keyword}
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in rest)
    if "lr" not in named and not open_ended:
        raise ContractError(f"{where} must take the keyword lr: builder(param_groups, *, lr, ...)")
    options = set(named) - set(OPTIMIZER_RESERVED)
    required = sorted(name for name in options if named[name].default is inspect.Parameter.empty)
    if required:
        raise ContractError(f"{where}: every option needs a default; {', '.join(required)} has none")
    return options, open_ended


def check_optimizer(obj: Any, params: Sequence[torch.Tensor], where: str = "the optimizer builder") -> Any:
    """What an optimizer builder returned: a ``torch.optim.Optimizer`` over exactly ``params``."""
    import torch

    if not isinstance(obj, torch.optim.Optimizer):
        raise ContractError(f"{where} must return a torch.optim.Optimizer, got {type(obj).__name__}")
    held = {id(p) for group in obj.param_groups for p in group["params"]}
    if held != {id(p) for p in params}:
        raise ContractError(f"{where}: the optimizer holds {len(held)} tensors, not the {len(params)} given")
    return obj


__all__ = [
    "DEFAULT_INPUT_SIZE",
    "DEFAULT_NUM_CLASSES",
    "DEFAULT_OTHERS",
    "IN_MEMORY",
    "OPTIMIZER_FROM_RUN",
    "OPTIMIZER_RESERVED",
    "REQUIRED_META",
    "SPLITS",
    "STREAMED",
    "ContractError",
    "StreamedDataset",
    "augmentation_level",
    "check_augmented",
    "check_decoded_batch",
    "check_labels",
    "check_logits",
    "check_optimizer",
    "check_sample",
    "check_soft_targets",
    "count_params",
    "dataset_input_size",
    "dataset_kind",
    "decodes_on_device",
    "is_in_memory",
    "is_sharded",
    "matrices_only",
    "missing_metadata",
    "model_input_size",
    "model_num_classes",
    "module_input_size",
    "optimizer_keywords",
    "optimizer_options",
    "others_optimizer",
    "split_matrices",
    "target_kind",
]


def takes_keyword(builder: Any, key: str) -> bool:
    """Whether ``builder`` accepts the keyword ``key`` (by name, or through ``**kwargs``)."""
    parameters = inspect.signature(builder).parameters
    return key in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
