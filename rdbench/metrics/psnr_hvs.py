"""PSNR-HVS-M and PSNR-HVS (Egiazarian et al. 2006; Ponomarenko et al. 2007) of the BT.709 Y plane.

The definition followed is Ponomarenko's reference code (``psnrhvsm.m``), the one JPEG AI's
objective quality framework uses (through the ``psnr_hvsm`` package) on the 8-bit BT.709
full-range Y plane of :mod:`rdbench.metrics.yuv`:

1. the Y plane (0–255) is padded to a multiple of 8 by repeating its last row and column, as the
   framework does, then cut into non-overlapping 8×8 blocks;
2. each block of both images gets an orthonormal 2-D DCT-II;
3. PSNR-HVS: the DCT differences weighted by the CSF table (25.7351 / JPEG's luminance
   quantisation table), squared and averaged over all coefficients;
4. PSNR-HVS-M: the same, but each AC difference is first reduced by the block's masking
   threshold ``E / MaskCof[k, l]`` (to no less than 0), where E = max(E_a, E_b) and, per image,
   ``E = sqrt(Σ_AC dct² · MaskCof · δ) / 32`` with ``MaskCof = CSF² / max(CSF)²`` and δ the
   summed variance of the four 4×4 quadrants over that of the block (0 for a flat block;
   variances as MATLAB's ``var(x(:))·numel(x)``, i.e. with n − 1);
5. ``10·log10(255² / mean)``; ``math.inf`` when the mean is 0 (the reference writes 100000, the
   ``psnr_hvsm`` package 100).

The daala/libaom ``psnrhvs`` tool is another variant (blocks at a 7-px step, its own CSF
tables) and gives other values; this module does not follow it. No maintained Python library with
a licence rdbench can depend on implements the metric (the ``psnr_hvsm`` package is GPL-licensed
and bundles FFTW), so it is written here by hand from the published definition, vectorised over
all blocks with numpy/scipy; tests/test_jpeg_ai_metrics_b.py checks it against ``psnr_hvsm``.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.fft import dctn

from rdbench.metrics.psnr import check_pair
from rdbench.metrics.yuv import y709_plane

__all__ = ["psnr_hvs_m", "psnr_hvs_planes", "psnr_hvs_y709"]

# Ponomarenko's tables, row k = vertical frequency, column l = horizontal: CSF ≈ 25.7351 / Q and
# MaskCof = (10 / Q)², both to 6 decimals, Q being JPEG's luminance quantisation table.
_CSF = np.array([
    [1.608443, 2.339554, 2.573509, 1.608443, 1.072295, 0.643377, 0.504610, 0.421887],
    [2.144591, 2.144591, 1.838221, 1.354478, 0.989811, 0.443708, 0.428918, 0.467911],
    [1.838221, 1.979622, 1.608443, 1.072295, 0.643377, 0.451493, 0.372972, 0.459555],
    [1.838221, 1.513829, 1.169777, 0.887417, 0.504610, 0.295806, 0.321689, 0.415082],
    [1.429727, 1.169777, 0.695543, 0.459555, 0.378457, 0.236102, 0.249855, 0.334222],
    [1.072295, 0.735288, 0.467911, 0.402111, 0.317717, 0.247453, 0.227744, 0.279729],
    [0.525206, 0.402111, 0.329937, 0.295806, 0.249855, 0.212687, 0.214459, 0.254803],
    [0.357432, 0.279729, 0.270896, 0.262603, 0.229778, 0.257351, 0.249855, 0.259950],
])
_MASK = np.array([
    [0.390625, 0.826446, 1.000000, 0.390625, 0.173611, 0.062500, 0.038447, 0.026874],
    [0.694444, 0.694444, 0.510204, 0.277008, 0.147929, 0.029727, 0.027778, 0.033058],
    [0.510204, 0.591716, 0.390625, 0.173611, 0.062500, 0.030779, 0.021004, 0.031888],
    [0.510204, 0.346021, 0.206612, 0.118906, 0.038447, 0.013212, 0.015625, 0.026015],
    [0.308642, 0.206612, 0.073046, 0.031888, 0.021626, 0.008417, 0.009426, 0.016866],
    [0.173611, 0.081633, 0.033058, 0.024414, 0.015242, 0.009246, 0.007831, 0.011815],
    [0.041649, 0.024414, 0.016437, 0.013212, 0.009426, 0.006830, 0.006944, 0.009803],
    [0.019290, 0.011815, 0.011080, 0.010412, 0.007972, 0.010000, 0.009426, 0.010203],
])
_AC = np.ones((8, 8), dtype=bool)
_AC[0, 0] = False
_PEAK = 255.0


def _blocks(plane: np.ndarray) -> np.ndarray:
    """(H, W) → (n, 8, 8) float64 blocks in raster order, after edge padding to a multiple of 8."""
    height, width = plane.shape
    padded = np.pad(plane.astype(np.float64), ((0, -height % 8), (0, -width % 8)), mode="edge")
    rows, cols = padded.shape[0] // 8, padded.shape[1] // 8
    return padded.reshape(rows, 8, cols, 8).swapaxes(1, 2).reshape(-1, 8, 8)


def _scaled_variance(x: np.ndarray) -> np.ndarray:
    """MATLAB ``var(x(:)) * numel(x)`` over the last two axes (unbiased variance × count)."""
    n = x.shape[-1] * x.shape[-2]
    centred = x - x.mean(axis=(-2, -1), keepdims=True)
    return (centred * centred).sum(axis=(-2, -1)) * n / (n - 1)


def _masking(blocks: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """The masking energy E of each block (see the module docstring, step 4)."""
    energy = (coefficients * coefficients * _MASK)[:, _AC].sum(axis=1)
    whole = _scaled_variance(blocks)
    quadrants = (_scaled_variance(blocks[:, :4, :4]) + _scaled_variance(blocks[:, :4, 4:])
                 + _scaled_variance(blocks[:, 4:, 4:]) + _scaled_variance(blocks[:, 4:, :4]))
    ratio = np.divide(quadrants, whole, out=np.zeros_like(whole), where=whole != 0)
    return np.sqrt(energy * ratio) / 32.0


def _db(mean_square: float) -> float:
    return math.inf if mean_square == 0 else 10.0 * math.log10(_PEAK * _PEAK / mean_square)


def psnr_hvs_planes(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(PSNR-HVS-M, PSNR-HVS) in dB of two (H, W) planes on a 0–255 scale."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"planes must be two non-empty (H, W) arrays of one shape, got {x.shape} and {y.shape}")
    bx, by = _blocks(x), _blocks(y)
    dx, dy = dctn(bx, type=2, norm="ortho", axes=(1, 2)), dctn(by, type=2, norm="ortho", axes=(1, 2))
    mask = np.maximum(_masking(bx, dx), _masking(by, dy))  # per block
    diff = np.abs(dx - dy)
    hvs = float(np.mean((diff * _CSF) ** 2))
    thresholds = mask[:, None, None] / _MASK
    masked = np.where(_AC, np.maximum(diff - thresholds, 0.0), diff)
    hvs_m = float(np.mean((masked * _CSF) ** 2))
    return _db(hvs_m), _db(hvs)


def psnr_hvs_y709(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """``psnr_hvs_m`` and ``psnr_hvs`` (dB) of the 8-bit BT.709 Y planes of two uint8 (H, W, 3) images."""
    check_pair(a, b)
    hvs_m, hvs = psnr_hvs_planes(y709_plane(a), y709_plane(b))
    return {"psnr_hvs_m": hvs_m, "psnr_hvs": hvs}


def psnr_hvs_m(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR-HVS-M (dB) of the BT.709 Y planes of two uint8 (H, W, 3) images."""
    return psnr_hvs_y709(a, b)["psnr_hvs_m"]
