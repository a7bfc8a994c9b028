"""The errors a user can cause, as values: the CLI turns them into one line and an exit code."""


class ZooError(Exception):
    """A failure with a message meant for the user (the CLI exits 1 and prints it on one line)."""

    exit_code = 1


class BadInputError(ZooError):
    """The user asked for something invalid: a bad name, option, path or value (exit 2)."""

    exit_code = 2


class UnknownNameError(BadInputError, LookupError):
    """A registry has no entry by that name; the message suggests close names."""


class DuplicateNameError(ZooError):
    """A plugin registered a name that another plugin already holds."""


class DataNotFoundError(ZooError):
    """A data set's files are not where zoo looked; the message says where it looked and how to get them."""

    exit_code = 2


class MissingExtraError(BadInputError):
    """A feature needs an optional package that is not installed: exit 2 naming the pip command."""


def require_extra(module: str, extra: str, feature: str) -> object:
    """Import ``module`` for ``feature``; when it is not installed, ``MissingExtraError`` naming the
    extra of zoo's distribution that brings it (``pip install 'zoo-models[EXTRA]'``)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{feature} needs the {module.split('.')[0]!r} package ({exc.msg}): "
            f"pip install 'zoo-models[{extra}]'"
        ) from None
