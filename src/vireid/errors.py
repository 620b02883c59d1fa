"""Errors the user can fix. The CLI prints them as one line and exits with status 2."""


class VireidError(Exception):
    """Base class of every error caused by bad input (a file, an option, a config)."""


class DatasetError(VireidError):
    """A dataset root, layout, split file or image is missing or malformed."""


class FeaturesError(VireidError):
    """A features file is missing, malformed or lacks images a protocol needs."""


class ConfigError(VireidError):
    """A config file, key or value is invalid."""


class CheckpointError(VireidError):
    """A checkpoint is missing, corrupt or belongs to another configuration."""


class OutputError(VireidError):
    """An output file could not be written (full disk, quota, read-only or unwritable folder); whatever
    was at its path before is intact. ``reason`` is the system's reason alone (``No space left on device``)."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message
