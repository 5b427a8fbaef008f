"""PSNR of the BT.709 Y, U and V planes, and MS-SSIM of the Y plane, as JPEG AI reports them.

JPEG AI's objective quality framework (the CTC's metric scripts) turns an 8-bit RGB image into
8-bit BT.709 **full-range** Y'CbCr 4:4:4 before measuring, and rdbench does the same:

    Y = 0.2126 R + 0.7152 G + 0.0722 B
    U = (B − Y) / 1.8556 + 127.5          (1.8556 = 2·(1 − 0.0722))
    V = (R − Y) / 1.5748 + 127.5          (1.5748 = 2·(1 − 0.2126))

on 0–255 RGB, each plane **rounded to 8-bit integers** (and clamped to 0–255). The arithmetic is
exact (integer ratios, see :func:`_round`), rounded half to even, so a tie, such as U = V = 127.5 of
every grey pixel, always rounds the same way (to 128); the framework does it in float32, where
such a tie can fall either way. PSNR per plane is then ``10·log10(255² / MSE)`` in float64,
``math.inf`` for identical planes (the framework writes 100). ``psnr_y709`` is not ``psnr_y``:
that one is BT.601 studio-range luma, unrounded (the original contract's column).

The same Y plane feeds ``ms_ssim_y709`` (rdbench's exact MS-SSIM on one plane), VMAF and
PSNR-HVS(-M). Details: docs/metrics.md, section "PSNR on BT.709 Y, U, V and MS-SSIM of Y".
"""
from __future__ import annotations

import numpy as np

from rdbench.metrics.msssim import ms_ssim_db, ms_ssim_plane
from rdbench.metrics.psnr import check_pair, psnr_from_mse

__all__ = ["ms_ssim_y709", "psnr_yuv709", "y709_plane", "yuv709_planes"]

# BT.709 luma weights ×10000 (0.2126, 0.7152, 0.0722) and the chroma divisors ×10000
# (1.8556, 1.5748): every value below is an exact integer ratio.
_KR, _KG, _KB = 2126, 7152, 722
_DU, _DV = 18556, 15748
_SCALE = 10000


def _round(numerator: np.ndarray, denominator: int) -> np.ndarray:
    """``round(numerator / denominator)`` to uint8 (clamped), ties to even, exactly.

    ``numerator`` holds integers (as float64, exact below 2⁵³). The float quotient is correctly
    rounded, so an exact tie k + ½ stays k + ½ (``rint`` takes it to even), and any other quotient
    is at least 1/18556 away from a tie, far more than its rounding error (~1e-14).
    """
    return np.clip(np.rint(numerator / denominator), 0, 255).astype(np.uint8)


def yuv709_planes(image: np.ndarray) -> np.ndarray:
    """BT.709 full-range Y'CbCr of a uint8 (H, W, 3) RGB image: uint8 planes (3, H, W) = Y, U, V."""
    r, g, b = (image[..., c].astype(np.float64) for c in range(3))
    y_num = _KR * r + _KG * g + _KB * b  # 10000·Y, an exact integer in float64
    # U = (B − Y)/1.8556 + 127.5 = (10000·B − 10000·Y + 127.5·18556) / 18556, all integers;
    # likewise V with R and 15748.
    u_num = _SCALE * b - y_num + (255 * _DU) // 2
    v_num = _SCALE * r - y_num + (255 * _DV) // 2
    return np.stack([_round(y_num, _SCALE), _round(u_num, _DU), _round(v_num, _DV)])


def y709_plane(image: np.ndarray) -> np.ndarray:
    """The uint8 (H, W) BT.709 full-range Y plane of a uint8 (H, W, 3) RGB image (as :func:`yuv709_planes`)."""
    r, g, b = (image[..., c].astype(np.float64) for c in range(3))
    return _round(_KR * r + _KG * g + _KB * b, _SCALE)


def _plane_psnr(x: np.ndarray, y: np.ndarray) -> float:
    diff = x.astype(np.int32) - y.astype(np.int32)
    return psnr_from_mse(float(np.einsum("ij,ij->", diff, diff, dtype=np.int64)) / diff.size)


def psnr_yuv709(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """``psnr_y709``, ``psnr_u709``, ``psnr_v709``: PSNR (dB, peak 255) of each 8-bit BT.709
    full-range plane of two uint8 (H, W, 3) images; ``math.inf`` for an identical plane."""
    check_pair(a, b)
    pa, pb = yuv709_planes(a), yuv709_planes(b)
    return {name: _plane_psnr(pa[i], pb[i]) for i, name in enumerate(("psnr_y709", "psnr_u709", "psnr_v709"))}


def ms_ssim_y709(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """``ms_ssim_y709`` and its dB form ``ms_ssim_y709_db``: 5-scale MS-SSIM of the 8-bit BT.709 Y
    planes of two uint8 (H, W, 3) images (data range 255). Raises
    :class:`~rdbench.metrics.ImageTooSmallError` below 161 px."""
    check_pair(a, b)
    value = ms_ssim_plane(y709_plane(a), y709_plane(b))
    return {"ms_ssim_y709": value, "ms_ssim_y709_db": ms_ssim_db(value)}
