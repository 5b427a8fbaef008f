"""Multi-scale SSIM, fast on CPU and without torch.

The standard 5-scale MS-SSIM of ``pytorch_msssim.ms_ssim(data_range=255)``. :func:`ms_ssim`
(RGB, the ``ms_ssim_rgb`` column) works in float32 and agrees with pytorch_msssim in float64 to
~1e-7 on Kodak; :func:`ms_ssim_plane` (one plane, ``ms_ssim_y709``) works in float64 and agrees to
~1e-14. How: the maps x + y, x − y and their squares (an exact reformulation that needs four
filtered maps, not five, and never subtracts x·y terms), OpenCV's separable filter, row strips on
a private thread pool. Definition, accuracy and speed: docs/metrics.md, section MS-SSIM;
``benchmarks/bench_msssim.py`` measures both.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

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
_EDGE = WIN_SIZE // 2
# Input samples per map of one strip task: 128 rows of a Kodak image (a whole plane at the smaller
# scales). Strips keep a task's maps near the core's cache and give the thread pool its tasks;
# measured on Kodak at 1 thread: 64 to 256 rows within 10 % of each other, 16 rows 30 % slower
# (per-task Python overhead, ~15 calls).
_STRIP_SAMPLES = 128 * 768


@functools.lru_cache(maxsize=1)
def gaussian_window() -> tuple[float, ...]:
    """The normalised 11-tap Gaussian, as Python floats.

    pytorch_msssim's float32 window, bit for bit: torch's float32 ``exp`` and ``sum`` of these taps
    are correctly rounded, which the float64 computation rounded to float32 reproduces
    (``tests/test_metrics.py`` compares the bits). The float32 rounding of the taps alone moves
    MS-SSIM by up to ~4e-7 (measured on Kodak), so the window must be the reference's exactly.
    """
    coords = np.arange(WIN_SIZE, dtype=np.float32) - np.float32(WIN_SIZE // 2)
    exponent = -(coords * coords) / np.float32(2 * WIN_SIGMA**2)  # exact in float32, as torch's
    g = np.exp(exponent.astype(np.float64)).astype(np.float32)
    total = np.float32(math.fsum(g.astype(np.float64)))
    return tuple((g / total).astype(np.float64).tolist())


@functools.lru_cache(maxsize=2)
def _window(dtype: type) -> np.ndarray:
    return np.array(gaussian_window(), dtype=dtype)


# --- threads -------------------------------------------------------------------------------------

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()
os.register_at_fork(after_in_child=_pools.clear)  # a forked child has none of the parent's threads


def _pool(threads: int) -> ThreadPoolExecutor:
    with _pools_lock:
        pool = _pools.get(threads)
        if pool is None:
            pool = _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="rdbench-msssim")
        return pool


def default_threads() -> int:
    """Threads :func:`ms_ssim` uses by default: torch's intra-op setting where torch is imported
    (so a worker that limits torch to one thread gets a single-threaded metric), else the
    ``OMP_NUM_THREADS`` environment variable, else the CPUs this process may run on. Never
    imports torch."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return max(1, torch.get_num_threads())
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_cv2_lock = threading.Lock()
_cv2_users = 0
_cv2_saved = 1


@contextlib.contextmanager
def _opencv_single_threaded() -> Iterator[None]:
    """OpenCV's own thread pool off while any MS-SSIM call runs, then the caller's setting back.

    The parallelism here is the strip tasks (``threads``); OpenCV splitting each filter call over
    its pool on top would oversubscribe the cores and make ``threads=1`` use all of them.
    """
    global _cv2_users, _cv2_saved
    with _cv2_lock:
        if _cv2_users == 0:
            _cv2_saved = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _cv2_users += 1
    try:
        yield
    finally:
        with _cv2_lock:
            _cv2_users -= 1
            if _cv2_users == 0 and _cv2_saved != 1:
                cv2.setNumThreads(_cv2_saved)


# --- the computation -----------------------------------------------------------------------------

_local = threading.local()


def _buffers(count: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Two flat scratch arrays of at least ``count`` elements, per thread and reused across calls."""
    held = getattr(_local, "buffers", None)
    if held is None or held[0].dtype != dtype or held[0].size < count:
        held = _local.buffers = (np.empty(count, dtype), np.empty(count, dtype))
    return held[0][:count], held[1][:count]


def _strip_sums(x: np.ndarray, y: np.ndarray, last: bool) -> tuple[float, float]:
    """One strip of one plane: (Σ over its valid outputs of 1 − cs, of the SSIM map if ``last``).

    ``x``, ``y``: (r + 10, W) rows of one plane at one scale, float32 or float64.

    With s = x + y and d = x − y (σ and E below are the Gaussian-weighted ones):
    σx² + σy² = (σs² + σd²)/2 and 2σxy = (σs² − σd²)/2, so
    1 − cs = 1 − (2σxy + C2)/(σx² + σy² + C2) = 2σd² / (σs² + σd² + 2·C2), with
    σs² = E[s²] − E[s]² and σd² = E[d²] − E[d]². This is the reference's algebra exactly (no
    assumption that the window sums to 1, which its float32 taps do not), needs four filtered maps
    instead of five, and gets σd², the small quantity, from d directly rather than as a difference
    of large terms: float32 suffices for 1e-7.
    """
    rows, width = x.shape
    count = rows * width
    flat_in, flat_out = _buffers(4 * count, x.dtype)
    maps, out = flat_in.reshape(4, rows, width), flat_out.reshape(4, rows, width)
    s, d, ss, dd = maps
    # OpenCV for the elementwise passes too: each is one SIMD loop writing into a given buffer.
    cv2.add(x, y, dst=s)
    cv2.subtract(x, y, dst=d)
    cv2.multiply(s, s, dst=ss)
    cv2.multiply(d, d, dst=dd)
    # The four maps stacked as one tall image: one call filters them all, and rows that mix two
    # maps lie in the 5-row borders that valid filtering drops anyway.
    g = _window(x.dtype.type)
    cv2.sepFilter2D(flat_in.reshape(4 * rows, width), -1, g, g, dst=flat_out.reshape(4 * rows, width),
                    borderType=cv2.BORDER_CONSTANT)
    mu_s, mu_d, e_ss, e_dd = out[:, _EDGE:rows - _EDGE, _EDGE:width - _EDGE]
    mu_d2 = cv2.multiply(mu_d, mu_d)
    var_d = cv2.subtract(e_dd, mu_d2, dst=e_dd)
    neg_den = cv2.addWeighted(e_ss, -1.0, var_d, -1.0, -2.0 * _C2, dst=e_ss)
    cv2.accumulateSquare(mu_s, neg_den)  # −(σs² + σd² + 2·C2)
    half_cs_gap = cv2.divide(var_d, neg_den, dst=var_d)  # = −(1 − cs)/2
    gap_sum = -2.0 * cv2.sumElems(half_cs_gap)[0]  # OpenCV sums float32 in float64
    if not last:
        return gap_sum, 0.0
    # Luminance l = (2μxμy + C1)/(μx² + μy² + C1) = 1 − 2μd² / (μs² + μd² + 2·C1), SSIM = l·cs;
    # the smallest scale (48×32 for Kodak) is cheap, so float64.
    mu_s64, mu_d64 = mu_s.astype(np.float64), mu_d2.astype(np.float64)
    luminance = 1.0 - 2.0 * mu_d64 / (mu_s64 * mu_s64 + mu_d64 + 2.0 * _C1)
    return gap_sum, float((luminance * (1.0 + 2.0 * half_cs_gap.astype(np.float64))).sum())


def _halve(planes: np.ndarray) -> np.ndarray:
    """2×2 average pooling of (C, H, W) planes, as ``avg_pool2d(kernel_size=2, padding=side % 2)``.

    An odd side gets one zero row/column in front and every output is still the sum of four
    samples divided by 4. Exact, so bitwise ``avg_pool2d``'s: every value at scale k is an integer
    multiple of 4⁻ᵏ below 256, which float32 holds exactly, and so are all these sums.
    """
    height, width = planes.shape[1:]
    if height % 2 or width % 2:
        planes = np.pad(planes, ((0, 0), (height % 2, 0), (width % 2, 0)))
    rows = planes[:, 0::2] + planes[:, 1::2]
    out = rows[..., 0::2] + rows[..., 1::2]
    out *= planes.dtype.type(0.25)
    return out


def _pyramid(planes: np.ndarray, dtype: type) -> list[np.ndarray]:
    """(C, H, W) planes as ``dtype`` planes at the 5 scales."""
    levels = [np.ascontiguousarray(planes, dtype=dtype)]
    for _ in range(LEVELS - 1):
        levels.append(_halve(levels[-1]))
    return levels


def ms_ssim(a: np.ndarray, b: np.ndarray, *, threads: int | None = None) -> float:
    """5-scale MS-SSIM of two uint8 (H, W, 3) images, averaged over R, G, B; 1.0 for identical images.

    Computed in float32 (within ~1e-7 of the float64 reference; see the module docstring).
    ``threads``: worker threads for this call (default :func:`default_threads`); the value does
    not change the result. Raises :class:`ImageTooSmallError` when the shorter side is below
    :data:`MS_SSIM_MIN_SIZE` (161 px) and ``ValueError`` for mismatched or non-uint8 inputs.
    """
    check_pair(a, b)
    return _ms_ssim_planes(a.transpose(2, 0, 1), b.transpose(2, 0, 1), threads, np.float32)


def ms_ssim_plane(x: np.ndarray, y: np.ndarray, *, threads: int | None = None) -> float:
    """5-scale MS-SSIM of two (H, W) planes of one channel (0–255 scale, e.g. a luma plane), as
    ``pytorch_msssim.ms_ssim`` on (1, 1, H, W) with ``data_range=255``; 1.0 for identical planes.

    The computation of :func:`ms_ssim` on one plane, in float64: equal to the float64 reference
    to ~1e-14. ``x``, ``y``: real-valued arrays of one shape (uint8 or float). Raises
    :class:`ImageTooSmallError` below :data:`MS_SSIM_MIN_SIZE` px.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"planes must be two non-empty (H, W) arrays of one shape, got {x.shape} and {y.shape}")
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        raise ValueError(f"planes must be numeric, got {x.dtype} and {y.dtype}")
    return _ms_ssim_planes(x[None], y[None], threads, np.float64)


def _ms_ssim_planes(a: np.ndarray, b: np.ndarray, threads: int | None, dtype: type) -> float:
    """MS-SSIM of (C, H, W) planes in ``dtype``: per plane, then averaged over the C planes."""
    channels, height, width = a.shape
    if min(height, width) < MS_SSIM_MIN_SIZE:
        raise ImageTooSmallError(
            f"image is {width}x{height} px (WxH), but 5-scale MS-SSIM needs both sides >= "
            f"{MS_SSIM_MIN_SIZE} px (four 2x downsamplings must leave room for the 11-px window)")
    threads = max(1, int(threads if threads is not None else default_threads()))

    with _opencv_single_threaded():
        if threads > 1:
            pool = _pool(threads)
            pyramids = list(pool.map(_pyramid, (a, b), (dtype, dtype)))
        else:
            pyramids = [_pyramid(a, dtype), _pyramid(b, dtype)]
        scales = list(zip(*pyramids))  # [(x, y) per scale]

        tasks = []  # (scale, plane, input rows): every strip of every plane at every scale
        for level, (x, _) in enumerate(scales):
            valid_rows = x.shape[1] - _HALO
            strip_rows = max(16, _STRIP_SAMPLES // x.shape[2])
            for plane in range(channels):
                for top in range(0, valid_rows, strip_rows):
                    tasks.append((level, plane, slice(top, min(top + strip_rows, valid_rows) + _HALO)))

        def run(task: tuple[int, int, slice]) -> tuple[float, float]:
            level, plane, rows = task
            x, y = scales[level]
            return _strip_sums(x[plane, rows], y[plane, rows], last=level == LEVELS - 1)

        results = pool.map(run, tasks) if threads > 1 else map(run, tasks)
        gap_sums = np.zeros((LEVELS, channels))
        ssim_sums = np.zeros(channels)
        for (level, plane, _), (gap_sum, ssim_sum) in zip(tasks, results):  # in task order: no
            gap_sums[level, plane] += gap_sum  # dependence on the thread count
            ssim_sums[plane] += ssim_sum

    counts = np.array([(x.shape[1] - _HALO) * (x.shape[2] - _HALO) for x, _ in scales], dtype=np.float64)
    per_scale = 1.0 - gap_sums / counts[:, None]  # mean cs per scale and plane
    per_scale[-1] = ssim_sums / counts[-1]  # the last scale uses the full SSIM
    weights = np.array(WEIGHTS)[:, None]
    per_plane = np.prod(np.maximum(per_scale, 0.0) ** weights, axis=0)
    return float(per_plane.mean())


def ms_ssim_db(value: float) -> float:
    """MS-SSIM on a dB scale: ``−10·log10(1 − value)``; ``math.inf`` when ``value`` is 1."""
    if value >= 1.0:
        return math.inf
    return -10.0 * math.log10(1.0 - value)


def ms_ssim_and_db(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """The ``ms_ssim_rgb`` and ``ms_ssim_db`` columns of one pair (the metric registry's entry)."""
    value = ms_ssim(a, b)
    return {"ms_ssim_rgb": value, "ms_ssim_db": ms_ssim_db(value)}
