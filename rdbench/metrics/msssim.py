"""Multi-scale SSIM, computed exactly (float64) and fast on CPU.

The definition is the standard 5-scale MS-SSIM of Wang, Simoncelli & Bovik (2003), exactly as
``pytorch_msssim.ms_ssim(x, y, data_range=255)`` and ``tf.image.ssim_multiscale`` compute it:

* an 11-tap Gaussian window, σ = 1.5, applied separably with *valid* filtering (no padding);
* K1 = 0.01, K2 = 0.03, data range 255, so C1 = (0.01·255)², C2 = (0.03·255)²;
* per scale the mean of the contrast-structure map cs = (2σxy + C2) / (σx² + σy² + C2) at the first
  four scales, and the mean of the full SSIM map (luminance · cs) at the fifth;
* between scales a 2×2 average pool, which for an odd side pads one zero row/column at the start
  and still divides by 4 (``avg_pool2d(kernel_size=2, padding=side % 2)``);
* negative per-scale means clipped to 0 (relu), the five values combined with the exponents
  0.0448, 0.2856, 0.3001, 0.2363, 0.1333, per channel, and the three channels averaged.

Why hand-written instead of calling pytorch_msssim: on CPU it is slow (a depthwise ``conv2d`` per
filtered map and direction, with every op a separate multi-threaded pass over the full image), and
in its default float32 the moments σ² = E[x²] − E[x]² lose ~6 digits to cancellation (values up
to 255² = 65025), so its result drifts by ~1e-5 from the float64 value; in float64 it is slower
still. Here everything is float64 and agrees with pytorch_msssim run in float64 to ~1e-15, yet
runs ~15-20x faster than pytorch_msssim's float32 on a 768×512 image (see
``benchmarks/bench_msssim.py``). The speed comes from three choices:

1. *Only four filtered maps*: the SSIM terms need only μx, μy, E[x² + y²] and E[xy]
   (σx² + σy² = E[x² + y²] − μx² − μy²), not five.
2. *Separable filtering as matrix products* (BLAS, float64 at near-peak speed): for a strip of R
   output rows the vertical pass is one banded (R, R+10) matrix times the strip; the horizontal
   pass cuts each row into blocks of B samples and multiplies them by a fixed (B, B) band plus the
   first 10 samples of the next block by a (10, B) band, i.e. two large, thin matrix products.
   That spends (R+10)/11 and (B+10)/11 times the multiply-adds of a direct 11-tap loop, but BLAS
   runs them so much faster than any elementwise loop that it wins.
3. *Strips, on a private thread pool*: every (scale, strip of rows) is an independent task that
   works in cache-sized buffers and returns its per-channel sums; the tasks of all five scales go
   at once to a small pool whose threads each run single-threaded torch. Coarse tasks keep both
   cores busy without the per-op barriers of intra-op parallelism, which degrade badly when the
   machine is shared (as on a Beam worker). Sums are combined in task order, so the result does
   not depend on the number of threads.
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

from rdbench.metrics.psnr import check_pair

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
_ROWS = 32  # output rows per strip task (R)
_BLOCK = 32  # samples per block of the horizontal pass (B)


class ImageTooSmallError(ValueError):
    """The image is too small for 5-scale MS-SSIM (shortest side < :data:`MS_SSIM_MIN_SIZE`)."""


@functools.lru_cache(maxsize=1)
def _window() -> torch.Tensor:
    """The normalised 11-tap Gaussian in float64.

    Built in float32 and then widened, as pytorch_msssim builds its window, so that float64 results
    agree to rounding error rather than to the window's float32 rounding (~1e-9 in MS-SSIM).
    """
    coords = torch.arange(WIN_SIZE, dtype=torch.float32) - WIN_SIZE // 2
    g = torch.exp(-(coords**2) / (2 * WIN_SIGMA**2))
    return (g / g.sum()).double()


@functools.lru_cache(maxsize=None)
def _band(n_out: int) -> torch.Tensor:
    """(n_out, n_out + 10) matrix T with T[i, i:i+11] = window: ``T @ x`` valid-filters columns of x."""
    band = torch.zeros(n_out, n_out + _HALO, dtype=torch.float64)
    for i in range(n_out):
        band[i, i : i + WIN_SIZE] = _window()
    return band


@functools.lru_cache(maxsize=1)
def _row_bands() -> tuple[torch.Tensor, torch.Tensor]:
    """The horizontal pass's two right-hand factors: (B, B) for a block, (10, B) for the next one's head."""
    full = _band(_BLOCK).T.contiguous()  # (B + 10, B)
    return full[:_BLOCK].contiguous(), full[_BLOCK:].contiguous()


def _strip_sums(x: torch.Tensor, y: torch.Tensor, last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel sums of the cs map (and, if ``last``, of the SSIM map) over one strip.

    ``x``, ``y``: (C, r + 10, W) float64 input rows, giving r valid output rows.
    """
    channels, rows_in, width = x.shape
    rows = rows_in - _HALO
    block = _BLOCK
    n_blocks = -(-(width - _HALO) // block)  # blocks of valid output per row
    padded = (n_blocks + 1) * block  # + one block so every block has a "next block"

    # The four maps to filter, zero-padded on the right: x, y, x² + y², xy.
    maps = x.new_empty((channels, 4, rows_in, padded))
    maps[..., width:] = 0
    maps[:, 0, :, :width] = x
    maps[:, 1, :, :width] = y
    torch.mul(x, x, out=maps[:, 2, :, :width]).addcmul_(y, y)
    torch.mul(x, y, out=maps[:, 3, :, :width])

    # Vertical pass: one banded matrix product per map.
    vert = torch.matmul(_band(rows), maps).view(-1, block)  # rows of B samples
    # Horizontal pass: out[block k] = in[block k] @ A + in[block k+1][:10] @ Bh.
    band_a, band_b = _row_bands()
    own = torch.mm(vert, band_a).view(channels, 4, rows, n_blocks + 1, block)
    nxt = torch.mm(vert[:, :_HALO], band_b).view(channels, 4, rows, n_blocks + 1, block)
    filtered = (own[..., :-1, :] + nxt[..., 1:, :]).view(channels, 4, rows, -1)[..., : width - _HALO]

    mu_x, mu_y, e_sq, e_xy = filtered.unbind(1)
    mu_xy = mu_x * mu_y
    mu_sq = torch.addcmul(mu_x * mu_x, mu_y, mu_y)
    # cs = (2σxy + C2) / (σx² + σy² + C2) with σxy = E[xy] − μxμy, σx² + σy² = E[x² + y²] − μx² − μy².
    cs = (e_xy - mu_xy).mul_(2).add_(_C2).div_((e_sq - mu_sq).add_(_C2))
    cs_sum = cs.sum((1, 2))
    if not last:
        return cs_sum, cs_sum.new_zeros(channels)
    luminance = mu_xy.mul_(2).add_(_C1).div_(mu_sq.add_(_C1))
    return cs_sum, (luminance * cs).sum((1, 2))


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()
os.register_at_fork(after_in_child=_pools.clear)  # a forked child has none of the parent's threads


def _single_threaded_torch() -> None:
    torch.set_num_threads(1)  # per thread with the OpenMP backend: the caller's setting is untouched


def _pool(threads: int) -> ThreadPoolExecutor:
    with _pools_lock:
        pool = _pools.get(threads)
        if pool is None:
            pool = ThreadPoolExecutor(threads, thread_name_prefix="rdbench-msssim",
                                      initializer=_single_threaded_torch)
            _pools[threads] = pool
        return pool


def _to_planes(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).double()


def ms_ssim(a: np.ndarray, b: np.ndarray, *, threads: int | None = None) -> float:
    """5-scale MS-SSIM of two uint8 (H, W, 3) images, averaged over R, G, B; 1.0 for identical images.

    ``threads``: worker threads for this call (default: ``torch.get_num_threads()`` of the calling
    thread, so a process that limits torch to one thread gets a single-threaded metric). The value
    does not change the result. Raises :class:`ImageTooSmallError` when the shorter side is below
    :data:`MS_SSIM_MIN_SIZE` (161 px) and ``ValueError`` for mismatched or non-uint8 inputs.
    """
    check_pair(a, b)
    height, width = a.shape[:2]
    if min(height, width) < MS_SSIM_MIN_SIZE:
        raise ImageTooSmallError(
            f"image is {width}x{height} px (WxH), but 5-scale MS-SSIM needs both sides >= "
            f"{MS_SSIM_MIN_SIZE} px (four 2x downsamplings must leave room for the 11-px window)")
    threads = max(1, int(threads if threads is not None else torch.get_num_threads()))

    # The pyramid, built with the very pooling op pytorch_msssim uses (odd sides: pad 1, divide by 4).
    pyramid = [(_to_planes(a), _to_planes(b))]
    for _ in range(LEVELS - 1):
        x, y = pyramid[-1]
        padding = [side % 2 for side in x.shape[1:]]
        pyramid.append((F.avg_pool2d(x, 2, padding=padding), F.avg_pool2d(y, 2, padding=padding)))

    tasks = []  # (level, input rows) for every strip of every scale
    for level, (x, y) in enumerate(pyramid):
        valid_rows = x.shape[1] - _HALO
        for top in range(0, valid_rows, _ROWS):
            stop = min(top + _ROWS, valid_rows) + _HALO
            tasks.append((level, slice(top, stop)))

    def run(task):
        level, rows = task
        x, y = pyramid[level]
        return _strip_sums(x[:, rows], y[:, rows], last=level == LEVELS - 1)

    cs_sums = torch.zeros(LEVELS, 3, dtype=torch.float64)
    ssim_sum = torch.zeros(3, dtype=torch.float64)
    for (level, _), (cs_sum, ss_sum) in zip(tasks, _pool(threads).map(run, tasks)):
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
