"""Multi-scale SSIM, computed exactly (float64) and fast on CPU.

The standard 5-scale MS-SSIM, equal to ``pytorch_msssim.ms_ssim(data_range=255)`` in float64 to
~1e-14. Hand-written because pytorch_msssim's float32 drifts (up to 3.3e-6 on Kodak) and its
per-op threading is slow on a shared CPU; here: four filtered maps, separable shifted
multiply-adds, row strips on a private thread pool (``benchmarks/bench_msssim.py``). Definition
and details: docs/metrics.md, section MS-SSIM.
"""
from __future__ import annotations

import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from rdbench.metrics.psnr import ImageTooSmallError, check_pair

WIN_SIZE = 11
WIN_SIGMA = 1.5
K1, K2 = 0.01, 0.03
DATA_RANGE = 255.0
WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
LEVELS = len(WEIGHTS)
#: Shortest side MS-SSIM accepts: after 4 halvings it must still hold one 11-px window
#: (the same bound as pytorch_msssim: side > (11 − 1)·2⁴ = 160).
MS_SSIM_MIN_SIZE = (WIN_SIZE - 1) * 2 ** (LEVELS - 1) + 1

_C1 = (K1 * DATA_RANGE) ** 2
_C2 = (K2 * DATA_RANGE) ** 2
_HALO = WIN_SIZE - 1  # valid filtering shortens each side by 10
# Output samples (per channel) per strip task: 32 rows of a Kodak image. Big enough that torch's
# per-op overhead stays small, small enough that a strip's maps stay in cache (~3 MB).
_STRIP_SAMPLES = 32 * 768



@functools.lru_cache(maxsize=1)
def gaussian_window() -> tuple[float, ...]:
    """The normalised 11-tap Gaussian, as Python floats.

    Built in float32 and then widened, exactly as pytorch_msssim builds its window: the float32
    rounding of the taps alone moves MS-SSIM by up to ~4e-7 (measured on Kodak), which would
    otherwise be the disagreement with the reference instead of ~1e-15.
    """
    coords = torch.arange(WIN_SIZE, dtype=torch.float32) - WIN_SIZE // 2
    g = torch.exp(-(coords**2) / (2 * WIN_SIGMA**2))
    return tuple((g / g.sum()).double().tolist())


def _filter(maps: torch.Tensor, dim: int) -> torch.Tensor:
    """Valid 11-tap Gaussian filtering of ``maps`` along ``dim``: 11 shifted multiply-adds."""
    taps = gaussian_window()
    n = maps.shape[dim] - _HALO
    out = maps.narrow(dim, 0, n) * taps[0]
    for k in range(1, WIN_SIZE):
        out.add_(maps.narrow(dim, k, n), alpha=taps[k])
    return out


def _strip_sums(x: torch.Tensor, y: torch.Tensor, last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel sums of the cs map (and, if ``last``, of the SSIM map) over one strip.

    ``x``, ``y``: (C, r + 10, W) float64 input rows, giving r valid output rows.
    """
    channels, rows_in, width = x.shape
    # The four maps to filter: x, y, x² + y², xy.
    maps = x.new_empty((channels, 4, rows_in, width))
    maps[:, 0] = x
    maps[:, 1] = y
    torch.mul(x, x, out=maps[:, 2]).addcmul_(y, y)
    torch.mul(x, y, out=maps[:, 3])
    filtered = _filter(_filter(maps, 2), 3)  # vertical, then horizontal

    mu_x, mu_y, e_sq, e_xy = filtered.unbind(1)
    mu_xy = mu_x * mu_y
    mu_sq = torch.addcmul(mu_x * mu_x, mu_y, mu_y)
    # cs = (2σxy + C2) / (σx² + σy² + C2), where σxy = E[xy] − μx·μy
    # and σx² + σy² = E[x² + y²] − μx² − μy².
    cs = (e_xy - mu_xy).mul_(2).add_(_C2).div_((e_sq - mu_sq).add_(_C2))
    cs_sum = cs.sum((1, 2))
    if not last:
        return cs_sum, cs_sum.new_zeros(channels)
    luminance = mu_xy.mul_(2).add_(_C1).div_(mu_sq.add_(_C1))
    return cs_sum, (luminance * cs).sum((1, 2))


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()
os.register_at_fork(after_in_child=_pools.clear)  # a forked child has none of the parent's threads


# With torch's OpenMP backend (the standard builds) torch.set_num_threads applies to the calling
# thread only, so pool threads can be made single-threaded without touching anyone else's setting.
_PER_THREAD_SETTING = "parallel backend: OpenMP" in torch.__config__.parallel_info()


def _single_threaded_torch() -> None:
    if _PER_THREAD_SETTING:
        torch.set_num_threads(1)


def _pool(threads: int) -> ThreadPoolExecutor:
    with _pools_lock:
        pool = _pools.get(threads)
        if pool is None:
            pool = ThreadPoolExecutor(threads, thread_name_prefix="rdbench-msssim",
                                      initializer=_single_threaded_torch)
            _pools[threads] = pool
        return pool


def _halve(planes: torch.Tensor) -> torch.Tensor:
    """2×2 average pooling of (C, H, W) planes, as ``avg_pool2d(kernel_size=2, padding=side % 2)``.

    An odd side gets one zero row/column in front and every output is still the sum of four
    samples divided by 4. The result is bitwise that of ``avg_pool2d``: every value at level k is
    an integer multiple of 4⁻ᵏ, so all these float64 sums are exact in any order (and this is 5x
    faster than ``avg_pool2d`` on CPU).
    """
    height, width = planes.shape[1:]
    if height % 2 or width % 2:
        planes = F.pad(planes, (width % 2, 0, height % 2, 0))
    rows = planes[:, 0::2] + planes[:, 1::2]
    return (rows[..., 0::2] + rows[..., 1::2]).mul_(0.25)


def _pyramid(planes: np.ndarray) -> list[torch.Tensor]:
    """(C, H, W) planes (uint8 or float) as float64 planes at the 5 scales."""
    levels = [torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float64))]
    for _ in range(LEVELS - 1):
        levels.append(_halve(levels[-1]))
    return levels


def ms_ssim(a: np.ndarray, b: np.ndarray, *, threads: int | None = None) -> float:
    """5-scale MS-SSIM of two uint8 (H, W, 3) images, averaged over R, G, B; 1.0 for identical images.

    ``threads``: worker threads for this call (default: ``torch.get_num_threads()`` of the calling
    thread, so a process that limits torch to one thread gets a single-threaded metric). The value
    does not change the result. Raises :class:`ImageTooSmallError` when the shorter side is below
    :data:`MS_SSIM_MIN_SIZE` (161 px) and ``ValueError`` for mismatched or non-uint8 inputs.
    """
    check_pair(a, b)
    return _ms_ssim_planes(a.transpose(2, 0, 1), b.transpose(2, 0, 1), threads)


def ms_ssim_plane(x: np.ndarray, y: np.ndarray, *, threads: int | None = None) -> float:
    """5-scale MS-SSIM of two (H, W) planes of one channel (0–255 scale, e.g. a luma plane), as
    ``pytorch_msssim.ms_ssim`` on (1, 1, H, W) with ``data_range=255``; 1.0 for identical planes.

    The same computation as :func:`ms_ssim` (which is this, per R, G, B plane, averaged).
    ``x``, ``y``: real-valued arrays of one shape (uint8 or float). Raises
    :class:`ImageTooSmallError` below :data:`MS_SSIM_MIN_SIZE` px.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"planes must be two non-empty (H, W) arrays of one shape, got {x.shape} and {y.shape}")
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        raise ValueError(f"planes must be numeric, got {x.dtype} and {y.dtype}")
    return _ms_ssim_planes(x[None], y[None], threads)


def _ms_ssim_planes(a: np.ndarray, b: np.ndarray, threads: int | None) -> float:
    """MS-SSIM of (C, H, W) planes: per plane, then averaged over the C planes."""
    channels, height, width = a.shape
    if min(height, width) < MS_SSIM_MIN_SIZE:
        raise ImageTooSmallError(
            f"image is {width}x{height} px (WxH), but 5-scale MS-SSIM needs both sides >= "
            f"{MS_SSIM_MIN_SIZE} px (four 2x downsamplings must leave room for the 11-px window)")
    threads = max(1, int(threads if threads is not None else torch.get_num_threads()))

    pool = _pool(threads)  # everything heavy runs there, single-threaded per task
    pyramid = list(zip(*pool.map(_pyramid, (a, b))))  # [(x, y) per level]

    tasks = []  # (level, input rows) for every strip of every scale
    for level, (x, y) in enumerate(pyramid):
        valid_rows = x.shape[1] - _HALO
        strip_rows = max(16, _STRIP_SAMPLES // x.shape[2])
        for top in range(0, valid_rows, strip_rows):
            stop = min(top + strip_rows, valid_rows) + _HALO
            tasks.append((level, slice(top, stop)))

    def run(task):
        level, rows = task
        x, y = pyramid[level]
        return _strip_sums(x[:, rows], y[:, rows], last=level == LEVELS - 1)

    cs_sums = torch.zeros(LEVELS, channels, dtype=torch.float64)
    ssim_sum = torch.zeros(channels, dtype=torch.float64)
    for (level, _), (cs_sum, ss_sum) in zip(tasks, pool.map(run, tasks)):
        cs_sums[level] += cs_sum
        ssim_sum += ss_sum

    counts = torch.tensor([(x.shape[1] - _HALO) * (x.shape[2] - _HALO) for x, _ in pyramid],
                          dtype=torch.float64)
    per_scale = cs_sums / counts[:, None]  # mean cs per scale and channel
    per_scale[-1] = ssim_sum / counts[-1]  # the last scale uses the full SSIM
    weights = torch.tensor(WEIGHTS, dtype=torch.float64)[:, None]
    per_channel = torch.prod(torch.relu(per_scale) ** weights, dim=0)
    return float(per_channel.mean())


def ms_ssim_db(value: float) -> float:
    """MS-SSIM on a dB scale: ``−10·log10(1 − value)``; ``math.inf`` when ``value`` is 1."""
    if value >= 1.0:
        return math.inf
    return -10.0 * math.log10(1.0 - value)


def ms_ssim_and_db(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """The ``ms_ssim_rgb`` and ``ms_ssim_db`` columns of one pair (the metric registry's entry)."""
    value = ms_ssim(a, b)
    return {"ms_ssim_rgb": value, "ms_ssim_db": ms_ssim_db(value)}
