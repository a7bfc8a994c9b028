"""The installed version of zoo (distribution ``zoo-models``)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zoo-models")
except PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0.0.0+unknown"
