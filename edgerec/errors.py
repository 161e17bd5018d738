"""The one exception hierarchy of edgerec.

Every error a user can cause (bad files, bad bundles, bad arguments) is an
`EdgerecError` whose message says what was wrong and what to do about it.
"""


import os


class EdgerecError(Exception):
    """Base class of every error edgerec raises on purpose."""


class DataError(EdgerecError):
    """An input data file is missing, empty or malformed.

    The message names the file by its base name only: the folders above it can name a
    person (/home/alice/...) and messages end up in logs and bug reports. The path as
    given stays in `path` for a program that wants it.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None):
        where = ""
        if path is not None:
            name = os.path.basename(os.path.normpath(os.fspath(path))) or os.fspath(path)
            where = f"{name}:{line}: " if line is not None else f"{name}: "
        super().__init__(where + message)
        self.path = None if path is None else os.fspath(path)
        self.line = line


class ConfigError(EdgerecError):
    """An argument or configuration value is invalid."""


class ModelError(EdgerecError):
    """A model checkpoint or model file is missing, corrupt or incompatible."""


class ExportError(EdgerecError):
    """An export or quantization failed or missed its parity tolerance."""


class BundleError(EdgerecError):
    """A bundle is missing, corrupt, foreign or does not match its manifest."""


class HistoryError(EdgerecError):
    """The on-device history database cannot be used."""


class StageError(EdgerecError):
    """A required stage of the on-device request path failed in a way it did not foresee."""


class BusyError(EdgerecError):
    """A non-blocking call was refused because too many earlier ones are still waiting (runtime/background.py)."""


class UnknownIdError(EdgerecError, KeyError):
    """A user or item id is not known to the bundle or the catalog."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PrivacyBudgetError(EdgerecError):
    """A differentially private report would spend more privacy budget than the device allows."""


class SpaceMismatchError(BundleError):
    """Two bundles were to be mixed (vectors of one scored against the other) but do not share a space."""
