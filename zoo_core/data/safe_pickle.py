"""Loading pickles of numpy arrays and plain values without running anything else that a pickle may ask for.

``pickle.load`` calls whatever callable a file names, so a crafted file can run any code. This unpickler
resolves only the numpy functions that rebuild an array (from Python 2 and 3, numpy 1 and 2, any protocol)
and refuses every other global before it could be called.
"""

from __future__ import annotations

import pickle
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
            return np.ndarray.__reduce__(np.empty(0))[0]  # this numpy's own function, wherever it lives
        if name == "_frombuffer":
            return _frombuffer
        if module == "_codecs":
            import codecs

            return codecs.encode
        return getattr(np, name)

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickleError("a persistent id")


def _frombuffer(buffer: Any, dtype: Any, shape: tuple[int, ...], order: str) -> Any:
    import numpy as np

    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


def load_numpy_pickle(path: str | Path, *, what: str = "data file", encoding: str = "latin1") -> Any:
    """Unpickle ``path`` admitting only numpy arrays and builtin values.

    Anything else is refused, nothing in it having run: ZooError naming the file and what it asked for.
    ``encoding`` decodes Python 2 strings (latin1 keeps numpy's Python 2 array data intact).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return NumpyUnpickler(f, encoding=encoding).load()
    except RefusedPickleError as exc:
        raise ZooError(
            f"Refused to load {path}: it asks for {exc}, which a {what} never contains (nothing was run)"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ZooError(f"Cannot read {path}: not a valid {what} ({type(exc).__name__}: {exc})") from None
