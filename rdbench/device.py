"""Choosing the torch device: ``auto`` means CUDA when present, else the CPU."""
from __future__ import annotations


class DeviceError(ValueError):
    """A device that is not a device name, or not present here."""


def check_device_name(device: str) -> str:
    """``device`` unchanged if it is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; else :class:`DeviceError`.

    Only the form is checked: no torch import, no look at the hardware.
    """
    if device in ("auto", "cpu", "cuda") or device.startswith("cuda:") and device[5:].isdigit():
        return device
    raise DeviceError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")


def resolve_device(device: str = "auto", *, uses_torch: bool = True) -> str:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` → a concrete device string.

    Asking for CUDA where none is usable is an error, not a silent fallback: a benchmark that
    claims GPU timings must have run on the GPU. ``uses_torch=False`` (only classical codecs and
    torch-free metrics will run): ``auto`` is ``cpu`` without importing torch, which costs ~1 s of
    start-up and ~0.4 GB of memory; an explicit ``cuda`` is still checked.
    """
    check_device_name(device)
    if device == "cpu" or device == "auto" and not uses_torch:
        return "cpu"
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        if device == "auto":
            return "cpu"
        raise
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} requested but CUDA is not available here")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise DeviceError(f"device {device!r} requested but only {torch.cuda.device_count()} GPU(s) here")
    return device


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
