"""Capacity model: per-item costs on this machine, projected to an ImageNet-val × 10 qualities run.

    python benchmarks/capacity_model.py [--images 6] [--learned bmshj2018-hyperprior:weights=random]

Measures, per work item (image × codec × quality), the seconds spent loading the image,
encoding, decoding (twice: the round-trip check), computing metrics and writing rows, for a
classical codec (JPEG) and a learned one (CPU here; the GPU column scales the network time by
--gpu-speedup, an assumption stated in the output, not a measurement). Then projects wall time
for 50,000 images × 10 qualities on N CPU workers and G GPUs, and the cost at the given hourly
prices. Images are Kodak's (768×512), the size of a typical ImageNet validation image after
decoding is smaller (~500×375), so the projection is scaled by pixel count.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import require_kodak  # noqa: E402

from rdbench.run import folder as runfolder  # noqa: E402
from rdbench.codecs import get_codec  # noqa: E402
from rdbench.run.shard import unit_rows  # noqa: E402
from rdbench.images import load_image  # noqa: E402
from rdbench.run.plan import WorkUnit  # noqa: E402

IMAGENET_VAL_IMAGES = 50_000
IMAGENET_MEAN_PIXELS = 500 * 375  # typical ILSVRC2012 val size
QUALITIES = 10


def per_item_costs(spec: str, paths: list[Path], qualities: list[float]) -> dict[str, float]:
    """Mean seconds per item of each phase, measured through the pipeline's own functions."""
    codec = get_codec(spec)
    timings: dict[str, float] = {"load": 0.0}
    rows, pixels = [], 0
    for path in paths:
        start = time.perf_counter()
        image = load_image(path)
        timings["load"] += time.perf_counter() - start
        pixels += image.shape[0] * image.shape[1]
        unit = WorkUnit("kodak", path.name, str(path), spec, tuple(qualities))
        ok, errors = unit_rows(unit, codec, image, "capacity", timings)
        assert not errors, errors
        rows += ok
    with tempfile.TemporaryDirectory() as tmp:
        runfolder.write_shard(tmp, "warm-up", rows[:1], [])  # first use loads the Parquet writer
        start = time.perf_counter()
        runfolder.write_shard(tmp, "shard-00000", rows, [])
        timings["write"] = time.perf_counter() - start
    costs = {phase: seconds / len(rows) for phase, seconds in timings.items()}
    costs["pixels"] = pixels / len(paths)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--learned", default="bmshj2018-hyperprior:weights=random")
    parser.add_argument("--workers", default="2,16,64,256")
    parser.add_argument("--gpus", default="1,4,8")
    parser.add_argument("--gpu-speedup", type=float, default=20.0, help="assumed GPU/CPU speed ratio of the networks")
    parser.add_argument("--cpu-hour", type=float, default=0.04, help="price of one CPU core-hour (USD)")
    parser.add_argument("--gpu-hour", type=float, default=2.50, help="price of one GPU-hour (USD)")
    args = parser.parse_args()
    paths = sorted(require_kodak().glob("kodim*.png"))[: args.images]

    measured = {
        "jpeg": per_item_costs("jpeg", paths, [10, 50, 90]),
        args.learned: per_item_costs(args.learned, paths, [1, 4, 8] if "cheng" not in args.learned else [1, 3, 6]),
    }
    print(f"per-item seconds on this machine (1 core, {args.images} Kodak images):")
    print(f"{'codec':40} {'load':>7} {'encode':>7} {'decode':>7} {'verify':>7} {'metrics':>7} {'write':>7} {'total':>7}")
    totals = {}
    for spec, c in measured.items():
        total = sum(c[k] for k in ("load", "encode", "decode", "verify", "metrics", "write"))
        totals[spec] = total * IMAGENET_MEAN_PIXELS / c["pixels"]
        print(f"{spec:40} {c['load']:7.4f} {c['encode']:7.4f} {c['decode']:7.4f} {c['verify']:7.4f} "
              f"{c['metrics']:7.4f} {c['write']:7.5f} {total:7.4f}")

    items = IMAGENET_VAL_IMAGES * QUALITIES
    print(f"\nprojection: ImageNet val ({IMAGENET_VAL_IMAGES} images, ~{IMAGENET_MEAN_PIXELS} px) × {QUALITIES} "
          f"qualities = {items:,} items per codec; per-item cost scaled by pixel count")
    print(f"{'codec':40} {'resources':>16} {'wall hours':>11} {'cost USD':>9}")
    for spec, per_item in totals.items():
        for n in map(int, args.workers.split(",")):
            hours = items * per_item / n / 3600
            print(f"{spec:40} {f'{n} CPU workers':>16} {hours:11.2f} {hours * n * args.cpu_hour:9.2f}")
        if spec != "jpeg":
            c = measured[spec]
            network = (c["encode"] + c["decode"] + c["verify"]) * IMAGENET_MEAN_PIXELS / c["pixels"]
            rest = per_item - network
            for g in map(int, args.gpus.split(",")):
                # each GPU fed by 8 CPU workers for load/metrics/write
                hours = items * max(network / args.gpu_speedup / g, rest / (8 * g)) / 3600
                cost = hours * g * (args.gpu_hour + 8 * args.cpu_hour)
                print(f"{spec:40} {f'{g} GPU + {8 * g} CPU':>16} {hours:11.2f} {cost:9.2f}")
    print(f"\nassumptions: GPU speed-up of the networks ×{args.gpu_speedup:g} (not measured here: no GPU), "
          f"${args.cpu_hour}/core-hour, ${args.gpu_hour}/GPU-hour; perfect scaling (shards are independent).")


if __name__ == "__main__":
    main()
