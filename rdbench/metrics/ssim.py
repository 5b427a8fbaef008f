"""Single-scale SSIM (Wang et al. 2004) of two uint8 RGB images: the mean SSIM map, per channel, averaged.

11×11 Gaussian window (σ 1.5), K1 0.01, K2 0.03, peak 255, valid filtering (no padding): what
``pytorch_msssim.ssim(data_range=255)`` computes, here in float64 with scipy's separable filters
(the window is MS-SSIM's, built as pytorch_msssim builds it).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d

from rdbench.metrics.msssim import WIN_SIZE, gaussian_window
from rdbench.metrics.psnr import check_min_size, check_pair

__all__ = ["SSIM_MIN_SIZE", "ssim"]

_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
#: Shortest side SSIM accepts: one whole window.
SSIM_MIN_SIZE = WIN_SIZE


def _blur(planes: np.ndarray) -> np.ndarray:
    """Valid Gaussian filtering of (C, H, W) planes: filter, then drop the padded border."""
    g, half = np.array(gaussian_window()), WIN_SIZE // 2
    out = correlate1d(correlate1d(planes, g, axis=1, mode="constant"), g, axis=2, mode="constant")
    return out[:, half:-half, half:-half]


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 (H, W, 3) images; 1.0 for identical images.

    Raises :class:`~rdbench.metrics.ImageTooSmallError` when a side is below 11 px.
    """
    check_pair(a, b)
    check_min_size(a, SSIM_MIN_SIZE, "SSIM")
    x = a.transpose(2, 0, 1).astype(np.float64)
    y = b.transpose(2, 0, 1).astype(np.float64)
    mu_x, mu_y = _blur(x), _blur(y)
    var_x = _blur(x * x) - mu_x**2
    var_y = _blur(y * y) - mu_y**2
    cov = _blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + _C1) * (2 * cov + _C2)) / ((mu_x**2 + mu_y**2 + _C1) * (var_x + var_y + _C2))
    return float(ssim_map.mean(axis=(1, 2)).mean())
