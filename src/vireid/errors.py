"""Errors the user can fix. The CLI prints them as one line and exits with status 2."""

from __future__ import annotations


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


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line. An error raised in a DataLoader worker reaches the main process
    as ``Caught X in DataLoader worker process N.`` followed by the worker's traceback: keep the worker's
    own message (the traceback's last line, without its ``module.X:`` prefix)."""
    text = str(exc).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) <= 1:
        return text
    if lines[0].startswith("Caught ") and "Traceback" in text:
        last = lines[-1].strip()
        for prefix in (f"{type(exc).__module__}.{type(exc).__qualname__}: ", f"{type(exc).__qualname__}: "):
            if last.startswith(prefix):
                return last[len(prefix):]
        return last
    return " ".join(ln.strip() for ln in lines)
