"""FSIMc (Zhang, Zhang, Mou & Zhang 2011), the colour Feature Similarity index, of two uint8 RGB images.

Computed by ``piq.fsim(decoded, original, data_range=255, chromatic=True)`` in float64, with piq's
defaults, which are those of the authors' ``FeatureSIM.m``: both images average-pooled by
F = max(1, round(min(H, W) / 256)) (Kodak: 2); phase congruency PC from log-Gabor filters (4 scales,
smallest wavelength 6 px, ×2 per scale; 4 orientations; σf 0.55; noise threshold k = 2) and the
Scharr gradient magnitude G of the luma; per pixel S_PC·S_G·(S_I·S_Q)^0.03 with
S(a, b) = (2ab + T)/(a² + b² + T), T = 0.85 (PC), 160 (G), 200 (I, Q); pooled with PCmax = max(PC1, PC2)
as weights. 1 for identical images; symmetric in its two arguments.

**Colour.** FSIM defines its own colour space: the RGB images go to YIQ (piq's NTSC matrix,
Y = 0.299 R + 0.587 G + 0.114 B), PC and G come from Y, the chroma terms from I and Q. JPEG AI's
common test conditions report this colour form (FSIMc, computed from the RGB images), unlike VIF,
IW-SSIM and NLPD, which they compute on BT.709 luma; so rdbench passes RGB, not a luma plane.

Images without any phase congruency (a flat colour in both) give NaN (0/0 in the pooling).
"""
from __future__ import annotations

import numpy as np

from rdbench.metrics.psnr import check_min_size, check_pair

__all__ = ["FSIM_MIN_SIZE", "fsim"]

#: Shortest side FSIM accepts: one wavelength of its finest log-Gabor filter (piq returns NaN at 1 px).
FSIM_MIN_SIZE = 6


def fsim(original: np.ndarray, decoded: np.ndarray) -> float:
    """FSIMc of two uint8 (H, W, 3) images; 1.0 for identical images.

    Raises :class:`~rdbench.metrics.ImageTooSmallError` when a side is below 6 px.
    """
    check_pair(original, decoded)
    check_min_size(original, FSIM_MIN_SIZE, "FSIM")
    import piq
    import torch

    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.transpose(2, 0, 1).astype(np.float64))[None]

    with torch.no_grad():
        return float(piq.fsim(tensor(decoded), tensor(original), data_range=255.0, chromatic=True))
