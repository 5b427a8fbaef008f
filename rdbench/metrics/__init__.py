"""Image-quality metrics: uint8 (H, W, 3) arrays in, Python floats out.

* :func:`psnr` — PSNR over all RGB samples, MAX = 255 (``math.inf`` for identical images);
  :func:`mse` and :func:`psnr_from_mse` for pooled PSNR over a set.
* :func:`psnr_y` — PSNR of BT.601 studio-range luma, unrounded float64 (see its docstring).
* :func:`ms_ssim` — standard 5-scale MS-SSIM, ``pytorch_msssim.ms_ssim(data_range=255)`` computed
  in float32 with numpy and OpenCV (within ~1e-7 of the float64 reference; no torch);
  :func:`ms_ssim_db` its dB form. Images with a side below :data:`MS_SSIM_MIN_SIZE`
  raise :class:`ImageTooSmallError` (a ``ValueError``).

Mismatched shapes, non-uint8 dtypes or non-RGB arrays raise ``ValueError``.
"""
import importlib

from rdbench.metrics.psnr import ImageTooSmallError, check_pair, luma, mse, psnr, psnr_from_mse, psnr_y

#: MS-SSIM names, imported on first use (PEP 562) so that importing the registry or PSNR does
#: not import OpenCV.
_LAZY = {"MS_SSIM_MIN_SIZE", "ms_ssim", "ms_ssim_db"}
__all__ = sorted(_LAZY | {"ImageTooSmallError", "check_pair", "luma", "mse", "psnr", "psnr_from_mse", "psnr_y"})


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'rdbench.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module("rdbench.metrics.msssim"), name)
