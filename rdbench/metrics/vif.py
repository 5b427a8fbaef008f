"""VIF in the pixel domain (VIF-P; Sheikh & Bovik 2006) of two uint8 RGB images, on BT.709 luma.

The definition is the authors' ``vifp_mscale.m``, as ``piq.vif_p`` implements it: four scales; at
scale s (0–3) an N×N Gaussian window, N = 2^(4−s) + 1, σ = N/5, valid filtering (no padding); from
the second scale on, the image is first filtered with that scale's window and every second row and
column kept. Per scale, from the local variances σr², σd² and covariance σrd of the reference r and
the distorted image d: gain g = σrd / σr², distortion variance σv² = σd² − g·σrd (with
``vifp_mscale.m``'s guards for flat windows and negative gains), visual noise σn² = 2; then

    VIF = Σ log10(1 + g²·σr² / (σv² + σn²)) / Σ log10(1 + σr² / σn²)

summed over every window of every scale. 1 for identical images (with texture), below 1 for
distortions, above 1 for contrast enhancement; not symmetric: the original comes first.

**Colour.** Computed on the 8-bit BT.709 full-range luma plane, Y' = 0.2126 R + 0.7152 G + 0.0722 B
rounded to integers (:func:`rdbench.metrics.yuv.y709_plane`): JPEG AI's common test conditions
compute VIF on the Y component of their BT.709 Y'CbCr conversion, and VIF is a single-channel
metric; it is the plane of the other JPEG AI columns (``psnr_y709``, ``ms_ssim_y709``). (``piq.vif_p``
given RGB would use BT.601 weights, 0.299/0.587/0.114; rdbench passes the BT.709 plane instead.)

**Why written out here rather than calling piq.** ``piq.vif_p`` computes exactly this (rdbench's
value equals it in float64 to ~1e-14, ``tests/test_jpeg_ai_metrics_a.py``), but its 2-D ``conv2d``
takes 2.7 s per 768×512 Kodak pair in float64 on one thread, and in float32 (0.17 s) its variances
E[x²] − E[x]² lose digits: up to 1.1e-4 from float64 on Kodak at JPEG q20. The window is separable,
so here it is two 1-D passes in float64 with scipy: ~85 ms per Kodak pair.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.ndimage import correlate1d

from rdbench.metrics.psnr import check_min_size, check_pair
from rdbench.metrics.yuv import y709_plane

__all__ = ["VIF_MIN_SIZE", "vif", "vif_planes"]

#: Shortest side VIF-P accepts: the fourth scale still holds one whole 3×3 window.
VIF_MIN_SIZE = 41
_SIGMA_N_SQ = 2.0  # variance of the visual noise (vifp_mscale.m)
_EPS = 1e-8  # vifp_mscale.m's (and piq's) guard


@lru_cache(maxsize=None)
def _window(size: int) -> np.ndarray:
    """The 1-D factor of vifp_mscale.m's size×size Gaussian (σ = size/5), normalised to sum 1."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x * x) / (2 * (size / 5) ** 2))
    return g / g.sum()


def _filter_valid(plane: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Valid 2-D filtering with the separable window g⊗g: filter, then drop the padded border."""
    half = len(g) // 2
    out = correlate1d(correlate1d(plane, g, axis=0, mode="constant"), g, axis=1, mode="constant")
    return out[half:-half, half:-half]


def vif_planes(reference: np.ndarray, distorted: np.ndarray) -> float:
    """VIF-P of two float64 planes (H, W) on a 0–255 scale; sides of at least :data:`VIF_MIN_SIZE`."""
    ref, dist = reference, distorted
    num = den = 0.0
    for scale in range(4):
        g = _window(2 ** (4 - scale) + 1)
        if scale:
            ref, dist = _filter_valid(ref, g)[::2, ::2], _filter_valid(dist, g)[::2, ::2]
        mu_r, mu_d = _filter_valid(ref, g), _filter_valid(dist, g)
        var_r = np.maximum(_filter_valid(ref * ref, g) - mu_r * mu_r, 0.0)
        var_d = np.maximum(_filter_valid(dist * dist, g) - mu_d * mu_d, 0.0)
        cov = _filter_valid(ref * dist, g) - mu_r * mu_d

        gain = cov / (var_r + _EPS)
        var_v = var_d - gain * cov
        # vifp_mscale.m's guards, in its order: flat reference, flat distorted, negative gain.
        flat_r = var_r < _EPS
        gain[flat_r] = 0.0
        var_v[flat_r] = var_d[flat_r]
        var_r[flat_r] = 0.0
        flat_d = var_d < _EPS
        gain[flat_d] = 0.0
        var_v[flat_d] = 0.0
        negative = gain < 0
        var_v[negative] = var_d[negative]
        gain[negative] = 0.0
        np.maximum(var_v, _EPS, out=var_v)

        num += float(np.log10(1.0 + gain * gain * var_r / (var_v + _SIGMA_N_SQ)).sum())
        den += float(np.log10(1.0 + var_r / _SIGMA_N_SQ).sum())
    return (num + _EPS) / (den + _EPS)


def vif(original: np.ndarray, decoded: np.ndarray) -> float:
    """VIF-P of the decoded image against the original (order matters), on 8-bit BT.709 luma; 1.0 for identical images.

    Raises :class:`~rdbench.metrics.ImageTooSmallError` when a side is below 41 px.
    """
    check_pair(original, decoded)
    check_min_size(original, VIF_MIN_SIZE, "VIF")
    return vif_planes(y709_plane(original).astype(np.float64), y709_plane(decoded).astype(np.float64))
