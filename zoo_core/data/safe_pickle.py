"""Loading pickles of numpy arrays and plain values without running anything else that a pickle may ask for.

``pickle.load`` calls whatever callable a file names, so a crafted file can run any code. This unpickler
resolves only the numpy functions that rebuild an array (from Python 2 and 3, numpy 1 and 2, any protocol)
and refuses every other global before it could be called.

Even those functions are too strong for a crafted file, so each is narrowed to what numpy's own pickles do:
``numpy.ndarray`` is only ever the array type handed to ``_reconstruct`` (calling it directly would let a
small file allocate and fill gigabytes), ``_reconstruct`` only makes the empty array that the pickled state
then fills, that state must hold plain (non-object) data of exactly the size its shape says (numpy itself
crashes on an object array whose list is shorter than its shape), and ``_codecs.encode`` only turns text
into latin1 bytes (other codecs, chained, multiply the data).
"""

from __future__ import annotations

import math
import pickle
from functools import cache
from pathlib import Path
from typing import Any

from zoo_core.errors import ZooError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes at protocol 2 (an array's raw data)
}


class RefusedPickleError(pickle.UnpicklingError):
    """The file names a global outside the admitted set."""


class NumpyUnpickler(pickle.Unpickler):
    """An unpickler that admits numpy array reconstruction and builtin values only."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise RefusedPickleError(f"{module}.{name}")
        import numpy as np

        if name == "_reconstruct":
            return _reconstruct
        if name == "_frombuffer":
            return _frombuffer
        if module == "_codecs":
            return _latin1_encode
        if name == "ndarray":
            return _ARRAY_TYPE
        return np.dtype

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickleError("a persistent id")


class _ArrayType:
    """Stands for ``numpy.ndarray`` in a pickle: the type argument of ``_reconstruct``, never called."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RefusedPickleError("numpy.ndarray called directly (numpy's own pickles never do)")


_ARRAY_TYPE = _ArrayType()


@cache
def _checked_array_type() -> type:
    import numpy as np

    class CheckedArray(np.ndarray):
        """An array whose pickled state is checked before numpy reads it."""

        def __setstate__(self, state: Any) -> None:
            if not isinstance(state, tuple) or len(state) not in (4, 5):
                raise RefusedPickleError("a malformed array state")
            shape, dtype, _, data = state[-4:]
            if not isinstance(dtype, np.dtype) or dtype.hasobject:
                raise RefusedPickleError("an array of Python objects")
            if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
                raise RefusedPickleError(f"an array of shape {shape!r:.40}")
            if not isinstance(data, bytes | str) or len(data) != math.prod(shape) * dtype.itemsize:
                raise RefusedPickleError("an array whose data do not match its shape")
            super().__setstate__(state)

    return CheckedArray


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
    import numpy as np

    if subtype is not _ARRAY_TYPE or not isinstance(shape, tuple) or shape != (0,):
        raise RefusedPickleError("numpy's _reconstruct with other arguments than numpy's own pickles use")
    rebuild = np.ndarray.__reduce__(np.empty(0))[0]  # this numpy's own function, wherever it lives
    return rebuild(_checked_array_type(), shape, dtype)


def _latin1_encode(text: Any, encoding: str = "latin1", errors: str = "strict") -> bytes:
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise RefusedPickleError(f"_codecs.encode to {encoding!r:.20}")
    return text.encode("latin1", errors)


def _frombuffer(buffer: Any, dtype: Any, shape: tuple[int, ...], order: str) -> Any:
    import numpy as np

    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


def _plain(obj: Any) -> Any:
    """Arrays of the top-level dict or list as plain numpy arrays (their checking subclass removed)."""
    import numpy as np

    checked = _checked_array_type()
    if isinstance(obj, dict):
        return {k: v.view(np.ndarray) if isinstance(v, checked) else v for k, v in obj.items()}
    if isinstance(obj, list):
        return [v.view(np.ndarray) if isinstance(v, checked) else v for v in obj]
    return obj.view(np.ndarray) if isinstance(obj, checked) else obj


def load_numpy_pickle(path: str | Path, *, what: str = "data file", encoding: str = "latin1") -> Any:
    """Unpickle ``path`` admitting only numpy arrays and builtin values.

    Anything else is refused, nothing in it having run: ZooError naming the file and what it asked for.
    ``encoding`` decodes Python 2 strings (latin1 keeps numpy's Python 2 array data intact).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _plain(NumpyUnpickler(f, encoding=encoding).load())
    except RefusedPickleError as exc:
        raise ZooError(
            f"Refused to load {path}: it asks for {exc}, which a {what} never contains (nothing was run)"
        ) from None
    except MemoryError:
        raise ZooError(f"Cannot read {path}: it declares more data than fits in memory") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        OverflowError,
        RecursionError,
    ) as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise ZooError(f"Cannot read {path}: not a valid {what} ({reason})") from None
