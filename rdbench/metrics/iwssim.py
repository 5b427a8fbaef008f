"""IW-SSIM (Wang & Li 2011), information-content-weighted multi-scale SSIM, of two uint8 RGB images, on BT.709 luma.

Computed by ``piq.information_weighted_ssim(decoded, original, data_range=255)`` in float64 with
piq's defaults, which follow the authors' ``iwssim.m``: a 5-level Laplacian pyramid (binomial 5-tap
filter ×√2, reflected edges); at each level the SSIM contrast–structure map (11×11 Gaussian window,
σ 1.5, K1 0.01, K2 0.03, peak 255, valid filtering; the full SSIM map at the coarsest level) pooled
with information-content weights from a Gaussian scale mixture model of the original's band (3×3
neighbourhoods, plus the parent band where it is band-pass too, σn² 0.4; uniform weights at the coarsest level); the five
pooled values combined as MS-SSIM combines its scales (exponents 0.0448, 0.2856, 0.3001, 0.2363,
0.1333). 1 for identical images; the original comes first (the weights come from it).

**Colour.** Computed on the 8-bit BT.709 full-range luma plane, Y' = 0.2126 R + 0.7152 G + 0.0722 B
rounded to integers (:func:`rdbench.metrics.yuv.y709_plane`): JPEG AI's common test conditions
compute IW-SSIM on the Y component of their BT.709 Y'CbCr conversion, on a 0–255 scale; the plane
of the other JPEG AI columns. (piq given RGB would use the BT.601 luma of YIQ; rdbench passes the
BT.709 plane instead.)

**Precision and cost.** float64: piq's float32 drifts by up to 9.4e-4 from float64 on Kodak at JPEG
q20 (kodim20). The price is piq's float64 ``conv2d`` for the 11×11 window: ~1.6 s per 768×512
Kodak pair on one thread, the slowest of the per-image metrics after the learned ones.
"""
from __future__ import annotations

import numpy as np

from rdbench.metrics.psnr import check_min_size, check_pair
from rdbench.metrics.yuv import y709_plane

__all__ = ["IWSSIM_MIN_SIZE", "iw_ssim"]

#: Shortest side IW-SSIM accepts: the fifth pyramid level still holds one 11×11 window,
#: (11 − 1)·2⁴ + 1 px (piq's rule).
IWSSIM_MIN_SIZE = 161


def iw_ssim(original: np.ndarray, decoded: np.ndarray) -> float:
    """IW-SSIM of the decoded image against the original, on 8-bit BT.709 luma; 1.0 for identical images.

    Raises :class:`~rdbench.metrics.ImageTooSmallError` when a side is below 161 px.
    """
    check_pair(original, decoded)
    check_min_size(original, IWSSIM_MIN_SIZE, "IW-SSIM")
    import piq
    import torch

    x = torch.from_numpy(y709_plane(decoded).astype(np.float64))[None, None]
    y = torch.from_numpy(y709_plane(original).astype(np.float64))[None, None]
    with torch.no_grad():
        return float(piq.information_weighted_ssim(x, y, data_range=255.0))
