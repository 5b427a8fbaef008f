"""Image-quality metrics: uint8 (H, W, 3) arrays in, Python floats out.

* :func:`psnr` — PSNR over all RGB samples, MAX = 255 (``math.inf`` for identical images);
  :func:`mse` and :func:`psnr_from_mse` for pooled PSNR over a set.
* :func:`psnr_y` — PSNR of BT.601 studio-range luma, unrounded float64 (see its docstring).
* :func:`ms_ssim` — standard 5-scale MS-SSIM, equal to ``pytorch_msssim.ms_ssim(data_range=255)``
  in float64; :func:`ms_ssim_db` its dB form. Images with a side below :data:`MS_SSIM_MIN_SIZE`
  raise :class:`ImageTooSmallError` (a ``ValueError``).

Mismatched shapes, non-uint8 dtypes or non-RGB arrays raise ``ValueError``.
"""
from rdbench.metrics.msssim import MS_SSIM_MIN_SIZE, ImageTooSmallError, ms_ssim, ms_ssim_db
from rdbench.metrics.psnr import check_pair, luma, mse, psnr, psnr_from_mse, psnr_y

__all__ = [
    "MS_SSIM_MIN_SIZE",
    "ImageTooSmallError",
    "check_pair",
    "luma",
    "ms_ssim",
    "ms_ssim_db",
    "mse",
    "psnr",
    "psnr_from_mse",
    "psnr_y",
]
