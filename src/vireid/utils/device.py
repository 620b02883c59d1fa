"""Devices: one reading of ``train.device`` (``auto``/``cpu``/``cuda``/``cuda:N``), one autocast policy, and the
process-level CPU numerics settings training uses (docs/performance.md has the measurements behind them)."""

from __future__ import annotations

import ctypes
import platform

import torch

from vireid.errors import ConfigError

AMP_DTYPES = ("auto", "bfloat16", "float16")


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


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX). Elsewhere torch emulates bf16 and
    autocast makes a ResNet-50 step many times slower (measured: about 20x on an AVX2 CPU)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def autocast_settings(device: torch.device, enabled: bool, dtype: str = "auto") -> tuple[bool, torch.dtype]:
    """Whether to autocast, and the dtype.

    ``dtype="auto"``: on CUDA bf16 where the GPU supports it, else fp16 (with a GradScaler); on a CPU bf16
    only where the CPU computes it natively (:func:`cpu_supports_bf16`), else no autocast. ``"bfloat16"`` /
    ``"float16"`` ask for that dtype whatever the hardware (fp16 on CUDA only).
    """
    if dtype not in AMP_DTYPES:
        raise ConfigError(f"train.amp_dtype: expected one of {', '.join(AMP_DTYPES)}, got {dtype!r}")
    if not enabled or device.type not in ("cuda", "cpu"):
        return False, torch.float32
    if device.type == "cuda":
        if dtype == "auto":
            return True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return True, getattr(torch, dtype)
    if dtype == "float16":
        raise ConfigError("train.amp_dtype: float16 autocast is for CUDA; on a CPU use bfloat16 or auto")
    if dtype == "auto" and not cpu_supports_bf16():
        return False, torch.float32
    return True, torch.bfloat16


def use_channels_last(device: torch.device, requested: bool) -> bool:
    """channels_last memory format for the model and its inputs: on CUDA and on CPUs (oneDNN convolutions
    skip their layout reorders; measured in docs/performance.md)."""
    return bool(requested) and device.type in ("cuda", "cpu")


# glibc mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """glibc only: keep freed memory in the process instead of returning it to the system.

    A training step allocates and frees the same large activation buffers every step; by default glibc
    serves each one with a fresh ``mmap`` that the kernel must fault in and zero again (about 9% of a
    ResNet-50 CPU step went to that). Returns whether the setting was applied (False off glibc). The
    process keeps its peak memory until it ends.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError):
        return False


def flush_denormals() -> bool:
    """Flush denormal floats to zero (FTZ/DAZ) on CPU; returns whether the CPU supports it.

    Denormals arise in attention softmaxes and their gradients and make x86 arithmetic on them very slow
    (the released code's step is 2.6x slower without this). The setting is per thread and inherited by
    threads created afterwards: call it before the first parallel operation of the process (the trainer
    does, at the start of ``setup``) so that torch's worker threads get it too.
    """
    return bool(torch.set_flush_denormal(True))
