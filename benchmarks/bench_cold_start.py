"""Cold start of the codec CLI: wall time of fresh ``python -m rdbench.codecs`` processes.

Run from the repository root:

    python benchmarks/bench_cold_start.py [--runs 7] [--baseline REV] [--image PATH]

Commands, each in a new interpreter (``cold``: nothing imported; the OS file cache is warm, as
after any earlier run): ``python -c pass`` (the interpreter's own start, the floor),
``python -m rdbench.codecs --help`` and ``python -m rdbench.codecs jpeg IMAGE --quality 50``
(one encode, two decodes, PSNR and MS-SSIM of a 768×512 Kodak image). With ``--baseline REV``
the same commands also run from a ``git archive`` of REV (e.g. the commit before a change), so
the two trees are compared side by side in one run, interleaved, under the same load. Printed:
the median and minimum over ``--runs`` runs, and the load average before and after each command.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KODAK_IMAGE = REPO.parent / "shared" / "kodak" / "kodim01.png"


def load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def timed_run(args: list[str], cwd: Path) -> float:
    """Wall seconds of one fresh process (``python -m`` puts ``cwd`` first on sys.path)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} in {cwd} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return elapsed


def export_tree(rev: str, into: Path) -> Path:
    """The files of ``rev`` (``git archive``) under ``into``."""
    archive = into / "tree.tar"
    subprocess.run(["git", "archive", "-o", str(archive), rev], cwd=REPO, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per command and tree (default 7)")
    parser.add_argument("--baseline", help="a git revision to compare with, side by side")
    parser.add_argument("--image", type=Path, default=KODAK_IMAGE, help="image to encode (default kodim01)")
    args = parser.parse_args()
    if not args.image.is_file():
        sys.exit(f"image not found: {args.image}")

    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this tree": REPO}
        if args.baseline:
            trees[args.baseline] = export_tree(args.baseline, Path(tmp))
        commands = {
            "python -c pass": ["-c", "pass"],
            "rdbench.codecs --help": ["-m", "rdbench.codecs", "--help"],
            "rdbench.codecs jpeg -q 50": ["-m", "rdbench.codecs", "jpeg", str(args.image.resolve()), "--quality", "50"],
        }
        print(f"{os.cpu_count()} CPUs; {args.runs} fresh processes per command and tree, interleaved; "
              f"load average 1/5/15 min {load()} at start")
        print(f"{'command':<26} {'tree':<12} {'median s':>8} {'min s':>6}   load avg (before → after)")
        for label, command in commands.items():
            for name, tree in trees.items():  # warm the file cache: the first start reads every file
                timed_run(command, tree)
            times: dict[str, list[float]] = {name: [] for name in trees}
            before = load()
            for i in range(args.runs):
                order = list(trees)[i % len(trees):] + list(trees)[: i % len(trees)]
                for name in order:
                    times[name].append(timed_run(command, trees[name]))
            medians = {name: statistics.median(t) for name, t in times.items()}
            for name in trees:
                print(f"{label:<26} {name:<12} {medians[name]:>8.2f} {min(times[name]):>6.2f}   {before} → {load()}")
            if args.baseline and label != "python -c pass":
                print(f"{'':<26} {'ratio':<12} {medians[args.baseline] / medians['this tree']:>7.1f}x  "
                      f"(baseline / this tree, medians)")


if __name__ == "__main__":
    main()
