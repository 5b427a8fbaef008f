"""MS-SSIM speed and exactness: rdbench.metrics.ms_ssim vs pytorch_msssim (float32 and float64).

Run from the repository root:

    python benchmarks/bench_msssim.py [--limit 24] [--repeat 3] [--threads N] [--quality 50]

For every Kodak image (768×512, from ../shared/kodak) and a JPEG copy of it made with Pillow, the
three implementations run interleaved (so machine load hits them alike), each ``--repeat`` times;
an image's time is the fastest repeat. Printed: per-image wall-clock and CPU milliseconds (median
over images), the speed ratio pytorch_msssim / rdbench, and the largest absolute difference of
each result from pytorch_msssim in float64, the reference. ``--threads`` sets
``torch.set_num_threads`` for the process (default: torch's own default, the number of cores);
rdbench's ``ms_ssim`` follows that value too.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rdbench.metrics import ms_ssim  # noqa: E402

KODAK = REPO.parent / "shared" / "kodak"


def jpeg_copy(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def pytorch_msssim_fn(dtype: torch.dtype):
    from pytorch_msssim import ms_ssim as reference

    def run(a: np.ndarray, b: np.ndarray) -> float:
        # Conversion included: the caller has uint8 (H, W, 3) arrays, as rdbench's metric gets.
        x = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].to(dtype)
        y = torch.from_numpy(np.ascontiguousarray(b.transpose(2, 0, 1)))[None].to(dtype)
        return float(reference(x, y, data_range=255, size_average=True))

    return run


def timed(fn, a, b) -> tuple[float, float, float]:
    """(value, wall seconds, CPU seconds of the whole process, all threads)."""
    cpu, wall = time.process_time(), time.perf_counter()
    value = fn(a, b)
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=24, help="number of Kodak images (default 24)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per image and implementation; the fastest counts (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the process")
    parser.add_argument("--quality", type=int, default=50, help="JPEG quality of the distorted copy")
    args = parser.parse_args()

    paths = sorted(KODAK.glob("kodim*.png"))[: args.limit]
    if not paths:
        sys.exit(f"no Kodak images at {KODAK}")
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # pytorch_msssim's non-writable-array warning

    impls = {
        "rdbench": ms_ssim,
        "pytorch_msssim f32": pytorch_msssim_fn(torch.float32),
        "pytorch_msssim f64": pytorch_msssim_fn(torch.float64),
    }
    print(f"{len(paths)} Kodak images, JPEG q{args.quality}; torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
          f"fastest of {args.repeat} runs per image")
    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    ms_ssim(images[0], images[0])  # warm-up: thread pool, window and band caches

    wall = {k: [] for k in impls}
    cpu = {k: [] for k in impls}
    values = {k: [] for k in impls}
    for index, image in enumerate(images):
        distorted = jpeg_copy(image, args.quality)
        best = {k: (None, float("inf"), float("inf")) for k in impls}
        names = list(impls)
        for rep in range(args.repeat):
            order = names[rep % len(names):] + names[: rep % len(names)]  # rotate who goes first
            for name in order:
                value, w, c = timed(impls[name], image, distorted)
                _, bw, bc = best[name]
                best[name] = (value, min(bw, w), min(bc, c))
        for name, (value, w, c) in best.items():
            values[name].append(value)
            wall[name].append(w)
            cpu[name].append(c)
        print(f"  {paths[index].stem} {image.shape[1]}x{image.shape[0]}: "
              + ", ".join(f"{name} {best[name][1] * 1e3:.0f} ms" for name in names), flush=True)

    reference = np.array(values["pytorch_msssim f64"])
    print(f"\nload average {os.getloadavg()[0]:.2f} at end\n")
    print(f"{'implementation':<20} {'wall ms/img':>11} {'CPU ms/img':>10} {'max |Δ| vs f64':>15}")
    for name in impls:
        diff = np.abs(np.array(values[name]) - reference).max()
        print(f"{name:<20} {statistics.median(wall[name]) * 1e3:>11.1f} "
              f"{statistics.median(cpu[name]) * 1e3:>10.1f} {diff:>15.2e}")
    ours_wall, ours_cpu = statistics.median(wall["rdbench"]), statistics.median(cpu["rdbench"])
    for name in ("pytorch_msssim f32", "pytorch_msssim f64"):
        print(f"speed-up over {name}: {statistics.median(wall[name]) / ours_wall:.1f}x wall, "
              f"{statistics.median(cpu[name]) / ours_cpu:.1f}x CPU (medians per image); "
              f"total wall {sum(wall[name]) / sum(wall['rdbench']):.1f}x")


if __name__ == "__main__":
    main()
