"""Helpers shared by the benchmark scripts (run from the repository root)."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
KODAK = SHARED / "kodak"


def run_benchmark_cli(*args: str, cwd: Path = REPO) -> tuple[float, int]:
    """Run ``luigi --module pipelines RunBenchmark`` in a subprocess.

    Returns (wall seconds, peak resident memory in bytes of the whole process tree,
    sampled every 50 ms).
    """
    cmd = [sys.executable, "-m", "luigi", "--module", "pipelines", "RunBenchmark", "--local-scheduler", *args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    stop = threading.Event()

    def sample():
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        sys.stderr.write(output[-5000:])
        raise SystemExit(f"RunBenchmark failed with exit code {proc.returncode}")
    return elapsed, peak


def require_kodak() -> Path:
    if not (KODAK / "kodim01.png").is_file():
        raise SystemExit(f"Kodak images not found at {KODAK}")
    return KODAK
