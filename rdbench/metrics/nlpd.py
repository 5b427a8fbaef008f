"""NLPD (Laparra, Ballé, Berardino & Simoncelli 2016), the normalised Laplacian pyramid distance, on BT.709 luma.

The definition is the one of pyiqa's ``NLPD`` (from IQA_pytorch, after the authors' ``NLP_dist.m``),
the implementation JPEG AI's metric tool calls, on luma scaled to [0, 1]:

1. Laplacian pyramid of 6 levels. Low-pass: the separable 5-tap filter
   w = (0.05, 0.25, 0.4, 0.25, 0.05) with symmetric edges (MATLAB ``'symmetric'``, the edge sample
   repeated), then every second row and column. Band-pass: the level minus the low-pass upsampled
   back, by inserting zeros (after repeating the low-pass's edge samples once), filtering with 4·w⊗w
   (zero edges) and cropping to the level's size. The sixth level is the last low-pass.
2. Divisive normalisation of each level k: z = b / (σk + Pk ∗ |b|), with ``∗`` a 2-D convolution
   (zero edges) by the 3×3 filter Pk and the constants σk of the paper's fitted model (below).
3. NLPD = mean over the 6 levels of the root mean square of z(original) − z(decoded).

Symmetric; 0 for identical images; lower is better.

**Colour.** Computed on the 8-bit BT.709 full-range luma plane, Y' = 0.2126 R + 0.7152 G + 0.0722 B
rounded to integers (:func:`rdbench.metrics.yuv.y709_plane`), divided by 255: JPEG AI's common test
conditions compute NLPD on the Y component of their BT.709 Y'CbCr conversion, in [0, 1] (NLPD is not
scale invariant: the σk are fitted for that range); the plane of the other JPEG AI columns. pyiqa's
default would take the BT.601 Y of YIQ.

**Why written here.** No well-kept library has NLPD without heavy dependencies: piq has none, pyiqa's
(the reference, float32) comes with transformers, timm, OpenCV and more as hard requirements, and
IQA_pytorch is unmaintained since 2020. It is short: numpy/scipy in float64, ~45 ms per Kodak pair.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import convolve, correlate1d

from rdbench.metrics.psnr import check_min_size, check_pair
from rdbench.metrics.yuv import y709_plane

__all__ = ["NLPD_MIN_SIZE", "nlpd", "nlpd_planes"]

#: Shortest side NLPD accepts: 2⁵ px, so that the sixth (coarsest) level samples the image at its
#: own 32-px spacing at least once.
NLPD_MIN_SIZE = 32
_LEVELS = 6
_LOWPASS = np.array([0.05, 0.25, 0.4, 0.25, 0.05])
# Laparra et al.'s divisive-normalisation filters P_k and constants σ_k, levels 1–6 (fine to coarse).
_DN_FILTERS = tuple(np.array(f, dtype=np.float64) for f in (
    [[0, 0.1011, 0], [0.1493, 0, 0.1460], [0, 0.1015, 0]],
    [[0, 0.0757, 0], [0.1986, 0, 0.1846], [0, 0.0837, 0]],
    [[0, 0.0477, 0], [0.2138, 0, 0.2243], [0, 0.0467, 0]],
    [[0, 0, 0], [0.2503, 0, 0.2616], [0, 0, 0]],
    [[0, 0, 0], [0.2598, 0, 0.2552], [0, 0, 0]],
    [[0, 0, 0], [0.2215, 0, 0.0717], [0, 0, 0]],
))
_DN_SIGMAS = (0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782)


def _lowpass(level: np.ndarray) -> np.ndarray:
    # scipy's 'reflect' is MATLAB's 'symmetric' (d c b a | a b c d).
    out = correlate1d(correlate1d(level, _LOWPASS, axis=0, mode="reflect"), _LOWPASS, axis=1, mode="reflect")
    return out[::2, ::2]


def _expand(low: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Upsample ``low`` to ``shape``: repeat its edges once, insert zeros, filter with 4·w⊗w (zero edges), crop."""
    padded = np.pad(low, 1, mode="edge")
    up = np.zeros((2 * padded.shape[0], 2 * padded.shape[1]))
    up[::2, ::2] = padded
    w = 2.0 * _LOWPASS  # 4·w⊗w, as a factor 2 per axis
    up = correlate1d(correlate1d(up, w, axis=0, mode="constant"), w, axis=1, mode="constant")
    return up[2:2 + shape[0], 2:2 + shape[1]]


def _normalised_pyramid(plane: np.ndarray) -> list[np.ndarray]:
    levels = []
    current = plane
    for k in range(_LEVELS):
        if k < _LEVELS - 1:
            low = _lowpass(current)
            band = current - _expand(low, current.shape)
        else:
            low, band = current, current
        # convolve (not correlate): MATLAB's conv2(abs(b), P, 'same'), as pyiqa rotates P by 180°.
        levels.append(band / (_DN_SIGMAS[k] + convolve(np.abs(band), _DN_FILTERS[k], mode="constant")))
        current = low
    return levels


def nlpd_planes(a: np.ndarray, b: np.ndarray) -> float:
    """NLPD of two float64 planes (H, W) on a 0–1 scale, sides of at least :data:`NLPD_MIN_SIZE`."""
    total = 0.0
    for za, zb in zip(_normalised_pyramid(a), _normalised_pyramid(b)):
        diff = za - zb
        total += float(np.sqrt(np.mean(diff * diff)))
    return total / _LEVELS


def nlpd(original: np.ndarray, decoded: np.ndarray) -> float:
    """NLPD of two uint8 (H, W, 3) images on 8-bit BT.709 luma in [0, 1]; 0.0 for identical images, lower is better.

    Raises :class:`~rdbench.metrics.ImageTooSmallError` when a side is below 32 px.
    """
    check_pair(original, decoded)
    check_min_size(original, NLPD_MIN_SIZE, "NLPD")
    return nlpd_planes(y709_plane(original) / 255.0, y709_plane(decoded) / 255.0)
