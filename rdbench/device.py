"""Choosing the torch device: ``auto`` means CUDA when present, else the CPU."""
from __future__ import annotations


class DeviceError(ValueError):
    """A device that is not a device name, or not present here."""


def resolve_device(device: str = "auto") -> str:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` → a concrete device string.

    Asking for CUDA where none is usable is an error, not a silent fallback: a benchmark that
    claims GPU timings must have run on the GPU.
    """
    if device == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        if device == "auto":
            return "cpu"
        raise
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" or device.startswith("cuda:") and device[5:].isdigit():
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r} requested but CUDA is not available here")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r} requested but only {torch.cuda.device_count()} GPU(s) here")
        return device
    raise DeviceError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")


def synchronize(device: str) -> None:
    """Wait for queued GPU work so that wall-clock timings are honest (no-op on the CPU)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def prepare_device(device: str) -> str:
    """Canonical torch device string; on CUDA, switch cuDNN to deterministic kernels.

    Learned codecs decode every stream twice (the round-trip check) and must get the same
    pixels both times; cuDNN's autotuned transposed convolutions do not guarantee that.
    """
    import torch

    device = str(torch.device(device))
    if device.startswith("cuda"):
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return device
