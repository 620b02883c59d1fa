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
