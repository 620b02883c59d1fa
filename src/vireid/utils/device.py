"""Devices: one reading of ``train.device`` (``auto``/``cpu``/``cuda``/``cuda:N``) and one autocast policy."""

from __future__ import annotations

import torch

from vireid.errors import ConfigError


def resolve_device(name: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; a ``torch.device`` is returned as is; anything else is
    parsed by torch and refused (ConfigError) if it is not a device or asks for CUDA where there is none."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: {name!r} is not a torch device (try auto, cpu, cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} asked for CUDA but no CUDA device is available")
    return device


def autocast_settings(device: torch.device, enabled: bool) -> tuple[bool, torch.dtype]:
    """Whether to autocast, and the dtype: bf16 where the GPU supports it, else fp16 (with a scaler)."""
    if not enabled or device.type != "cuda":
        return False, torch.float32
    return True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
