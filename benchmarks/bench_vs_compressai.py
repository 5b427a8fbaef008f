"""Kodak JPEG + WebP sweep: rdbench (RunBenchmark) against CompressAI's bench, same machine.

    python benchmarks/bench_vs_compressai.py [--workers 2]

Checks that the numbers agree (mean bpp within 0.1 % relative, PSNR within 0.02 dB, MS-SSIM
within 2e-4 per quality) and reports the end-to-end speed ratio and where rdbench's time goes.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, require_kodak, run_benchmark_cli  # noqa: E402

QUALITIES = [5, 25, 50, 75, 95]


def compressai_bench(codec: str, kodak: Path, jobs: int) -> tuple[dict, float]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "compressai.utils.bench", codec, str(kodak),
                          "-q", ",".join(map(str, QUALITIES)), "-j", str(jobs)],
                         check=True, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    return json.loads(out.stdout)["results"], elapsed


def import_seconds() -> float:
    """Wall seconds of a fresh interpreter importing what the luigi command imports first."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import luigi, pipelines"], check=True, cwd=REPO)
    return time.perf_counter() - start


def timeline(run: Path, t0: float, t_exit: float, info: dict) -> list[tuple[str, float]]:
    """Wall seconds of the run's phases, from the files' modification times (wall clock).

    ``run.json.started`` is stamped when planning ends; a shard's Parquet file when it is written.
    """
    started = datetime.fromisoformat(info["started"]).timestamp()
    shards = sorted(p.stat().st_mtime for p in (run / "results").glob("*.parquet"))
    run_json = (run / "run.json").stat().st_mtime
    report = (run / "report.html").stat().st_mtime
    return [
        ("interpreter, imports, Luigi, validation, planning", started - t0),
        ("Beam job start to the first shard written (worker start, first shard)", shards[0] - started),
        ("first to last shard written", shards[-1] - shards[0]),
        ("last shard to run.json (Beam job end, finish)", run_json - shards[-1]),
        ("report (summary, BD-rates, plots, HTML)", report - run_json),
        ("report to exit (Luigi, closing summary)", t_exit - report),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile-only", action="store_true", help="rdbench only: its phases, no CompressAI run")
    args = parser.parse_args()
    kodak = require_kodak()
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        elapsed_rd, _ = run_benchmark_cli(
            "--datasets", json.dumps([f"folder:{kodak}"]), "--codecs", '["jpeg", "webp"]',
            "--qualities", json.dumps({"jpeg": QUALITIES, "webp": QUALITIES}),
            "--output-root", tmp, "--run-name", "kodak", "--num-workers", str(args.workers))
        t_exit = time.time()
        run = Path(tmp) / "kodak"
        rows = pd.concat([pq.read_table(f).to_pandas() for f in sorted((run / "results").glob("*.parquet"))])
        info = json.loads((run / "run.json").read_text())
        phases = timeline(run, t0, t_exit, info)
    imports = import_seconds()
    print_profile(elapsed_rd, phases, imports, info, rows, args.workers, load_before)
    if args.profile_only:
        return

    elapsed_cai = 0.0
    worst = {"bpp_rel": 0.0, "psnr": 0.0, "ms_ssim": 0.0}
    print(f"{'codec':6} {'q':>3} {'bpp rd':>9} {'bpp cai':>9} {'PSNR rd':>8} {'PSNR cai':>8} {'MS-SSIM rd':>10} {'cai':>10}")
    for codec in ("jpeg", "webp"):
        cai, seconds = compressai_bench(codec, kodak, args.workers)
        elapsed_cai += seconds
        ours = rows[rows.codec == codec].groupby("quality").mean(numeric_only=True)
        for i, q in enumerate(QUALITIES):
            r = ours.loc[float(q)]
            worst["bpp_rel"] = max(worst["bpp_rel"], abs(r.bpp / cai["bpp"][i] - 1))
            worst["psnr"] = max(worst["psnr"], abs(r.psnr_rgb - cai["psnr-rgb"][i]))
            worst["ms_ssim"] = max(worst["ms_ssim"], abs(r.ms_ssim_rgb - cai["ms-ssim-rgb"][i]))
            print(f"{codec:6} {q:>3} {r.bpp:9.5f} {cai['bpp'][i]:9.5f} {r.psnr_rgb:8.3f} {cai['psnr-rgb'][i]:8.3f} "
                  f"{r.ms_ssim_rgb:10.6f} {cai['ms-ssim-rgb'][i]:10.6f}")

    print(f"\nlargest differences: bpp {worst['bpp_rel'] * 100:.4f} % (limit 0.1 %), "
          f"PSNR {worst['psnr']:.4f} dB (limit 0.02), MS-SSIM {worst['ms_ssim']:.2e} (limit 2e-4)")
    print(f"rdbench RunBenchmark, {args.workers} workers: {elapsed_rd:.1f} s end to end")
    print(f"compressai.utils.bench -j {args.workers} (jpeg + webp): {elapsed_cai:.1f} s")
    print(f"speed-up: {elapsed_cai / elapsed_rd:.1f}x (load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after)")
    ok = worst["bpp_rel"] <= 1e-3 and worst["psnr"] <= 0.02 and worst["ms_ssim"] <= 2e-4
    print("numbers agree" if ok else "NUMBERS DISAGREE")
    sys.exit(0 if ok else 1)


def print_profile(elapsed: float, phases: list[tuple[str, float]], imports: float, info: dict,
                  rows: pd.DataFrame, workers: int, load: float) -> None:
    """Where rdbench's wall time goes, and the limit set by the codecs' own work."""
    print(f"rdbench RunBenchmark, {workers} workers: {elapsed:.1f} s end to end (load average {load:.2f} before)")
    print(f"  of which a fresh interpreter importing luigi + pipelines alone takes {imports:.1f} s")
    for name, seconds in phases:
        print(f"  {seconds:6.2f} s  {name}")
    c = info["counters"]
    inside = {k.removeprefix("time_").removesuffix("_ms"): v / 1000 for k, v in c.items() if k.startswith("time_")}
    print("  inside the workers, seconds summed over workers: "
          + ", ".join(f"{k} {v:.2f}" for k, v in sorted(inside.items(), key=lambda kv: -kv[1])))
    codec_s = float(rows.encode_s.sum() + rows.decode_s.sum())
    cores = os.cpu_count() or 1
    print(f"  the limit: the codecs' own encode + decode time, {codec_s:.2f} s, over {cores} cores = "
          f"{codec_s / cores:.2f} s (with the verifying decode: {(codec_s + inside.get('verify', 0)) / cores:.2f} s)")


if __name__ == "__main__":
    main()
