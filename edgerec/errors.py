"""The one exception hierarchy of edgerec.

Every error a user can cause (bad files, bad bundles, bad arguments) is an
`EdgerecError` whose message says what was wrong and what to do about it.
"""


class EdgerecError(Exception):
    """Base class of every error edgerec raises on purpose."""


class DataError(EdgerecError):
    """An input data file is missing, empty or malformed."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
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


class UnknownIdError(EdgerecError, KeyError):
    """A user or item id is not known to the bundle or the catalog."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PrivacyBudgetError(EdgerecError):
    """A differentially private report would spend more privacy budget than the device allows."""


class SpaceMismatchError(BundleError):
    """Two bundles were to be mixed (vectors of one scored against the other) but do not share a space."""
