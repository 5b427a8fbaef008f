"""Cost of every per-image metric in the registry, per Kodak pair, on one thread; and a cross-check.

Run from the repository root:

    python benchmarks/bench_metric_costs.py [--limit 24] [--repeat 1] [--metrics vif,nlpd]
    python benchmarks/bench_metric_costs.py --cross-check [--limit 24]

Pairs: each Kodak image (768×512 or 512×768, from ../shared/kodak) and its JPEG made with Pillow at
quality 20. torch, and the BLAS/OpenMP pools, run on one thread (``torch.set_num_threads(1)``,
``OMP_NUM_THREADS=1`` …), so the figures are per core. Each metric is warmed up on the first pair
(imports, caches), then timed on every pair (the fastest of ``--repeat`` runs); printed per metric:
median and mean wall-clock ms per pair, median CPU ms, and the 1-minute load average when its
timing started and ended (other jobs on the machine inflate wall-clock time; CPU time less so).
Metrics that cannot run here (missing weights, binaries or packages) are listed with the reason;
weights are not downloaded unless ``RDBENCH_WEIGHTS_DOWNLOAD`` says so.

``--cross-check`` instead compares VIF, FSIM, IW-SSIM and NLPD with independent implementations
over the pairs (the references of tests/test_jpeg_ai_metrics_a.py; each skipped when its package is
not installed) and prints the largest absolute difference per (metric, reference). Likewise PSNR on
BT.709 Y/U/V, MS-SSIM of Y, PSNR-HVS(-M), VMAF and DISTS, against the references of
tests/test_jpeg_ai_metrics_b.py (a numpy BT.709 transcription, pytorch_msssim in float64,
psnr_hvsm, ffmpeg's libvmaf on the command line, piq.DISTS with the same weights: the located
ones, else random ones made for the run, since the check is of the implementation).

CPU time includes that of child processes (VMAF's ffmpeg).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("RDBENCH_WEIGHTS_DOWNLOAD", "0")  # a metric whose weights are not here is skipped

import argparse  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rdbench.metrics.registry import METRICS  # noqa: E402

KODAK = REPO.parent / "shared" / "kodak"


def kodak_pairs(limit: int, quality: int = 20) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, original, JPEG reconstruction) for the first ``limit`` Kodak images."""
    pairs = []
    for path in sorted(KODAK.glob("kodim*.png"))[:limit]:
        image = np.asarray(Image.open(path).convert("RGB"))
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=quality)
        pairs.append((path.stem, image, np.asarray(Image.open(buffer).convert("RGB"))))
    return pairs


def load_average() -> float:
    return os.getloadavg()[0]


def cpu_time() -> float:
    """This process's CPU seconds plus those of its finished children (VMAF runs ffmpeg)."""
    times = os.times()
    return time.process_time() + times.children_user + times.children_system


def costs(pairs, names: list[str], repeat: int) -> None:
    print(f"{len(pairs)} Kodak pairs (JPEG q20), torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs; "
          f"fastest of {repeat} run(s) per pair\n")
    header = f"{'metric':<14} {'median ms':>10} {'mean ms':>9} {'CPU ms':>8} {'load avg (start → end)':>24}"
    print(header)
    print("-" * len(header))
    skipped = []
    for name in names:
        metric = METRICS[name]
        try:
            measure = metric.load("cpu")
            measure(pairs[0][1], pairs[0][2])  # warm-up
        except Exception as error:  # noqa: BLE001 - report why and go on with the others
            skipped.append((name, f"{type(error).__name__}: {str(error).splitlines()[0][:110]}"))
            continue
        load_start = load_average()
        wall, cpu = [], []
        for _, original, decoded in pairs:
            best_wall = best_cpu = float("inf")
            for _ in range(repeat):
                c, w = cpu_time(), time.perf_counter()
                measure(original, decoded)
                best_wall = min(best_wall, time.perf_counter() - w)
                best_cpu = min(best_cpu, cpu_time() - c)
            wall.append(best_wall)
            cpu.append(best_cpu)
        print(f"{name:<14} {statistics.median(wall) * 1e3:>10.1f} {statistics.fmean(wall) * 1e3:>9.1f} "
              f"{statistics.median(cpu) * 1e3:>8.1f} {load_start:>13.2f} → {load_average():<8.2f}", flush=True)
    for name, reason in skipped:
        print(f"{name:<14} skipped: {reason}")


def _references():
    """(metric, reference name, function(original, decoded) -> float) for each installed reference."""
    import piq

    from tests.test_jpeg_ai_metrics_a import gray_tensor, plane, reference_iw_ssim, rgb_tensor

    refs = [("vif", "piq.vif_p float64",
             lambda a, b: float(piq.vif_p(gray_tensor(b), gray_tensor(a), data_range=255.0)))]
    try:
        from sewar.full_ref import vifp
        refs.append(("vif", "sewar.vifp", lambda a, b: float(vifp(plane(a), plane(b)))))
    except ImportError:
        print("sewar not installed: no VIF cross-check with sewar")
    try:
        from pyiqa.archs.fsim_arch import fsim as pyiqa_fsim
        from pyiqa.archs.nlpd_arch import NLPD
        nlpd_model = NLPD(channels=1, test_y_channel=True).double()
        refs.append(("fsim", "pyiqa fsim (float64)",
                     lambda a, b: float(pyiqa_fsim(rgb_tensor(b, 1 / 255), rgb_tensor(a, 1 / 255), chromatic=True))))
        refs.append(("nlpd", "pyiqa NLPD (float64)",
                     lambda a, b: float(nlpd_model(gray_tensor(b, 1 / 255).repeat(1, 3, 1, 1),
                                                   gray_tensor(a, 1 / 255).repeat(1, 3, 1, 1)))))
    except ImportError:
        print("pyiqa not installed: no FSIM or NLPD cross-check with pyiqa")
    try:
        import piqa
        piqa_fsim = piqa.FSIM(chromatic=True).double()
        refs.append(("fsim", "piqa.FSIM (float64)",
                     lambda a, b: float(piqa_fsim(rgb_tensor(b, 1 / 255), rgb_tensor(a, 1 / 255)))))
    except ImportError:
        print("piqa not installed: no FSIM cross-check with piqa")
    refs.append(("iw_ssim", "numpy iwssim.m (tests)", lambda a, b: reference_iw_ssim(plane(a), plane(b))))
    return refs


METRICS_B = ("psnr_yuv709", "ms_ssim_y709", "psnr_hvs_m", "vmaf", "dists")


def _dists_files() -> tuple[Path, Path]:
    """DISTS weights for the cross-check: the located files, else random ones (set as the overrides)."""
    import tempfile

    from rdbench.metrics.dists import DISTS_BACKBONE_WEIGHTS, DISTS_PARAMETERS
    from rdbench.metrics.perceptual import MetricWeightsUnavailableError

    try:
        return DISTS_BACKBONE_WEIGHTS.locate(download=False), DISTS_PARAMETERS.locate(download=False)
    except MetricWeightsUnavailableError:
        import torchvision

        print("DISTS weights not found: cross-checking DISTS with random weights")
        folder = Path(tempfile.mkdtemp(prefix="bench-dists-"))
        torch.manual_seed(3)
        torch.save(torchvision.models.vgg16(weights=None).state_dict(), folder / "vgg16.pth")
        alpha, beta = torch.rand(1, 1475, 1, 1), torch.rand(1, 1475, 1, 1)
        torch.save({"alpha": alpha / (alpha.sum() + beta.sum()), "beta": beta / (alpha.sum() + beta.sum())},
                   folder / "dists.pt")
        os.environ[DISTS_BACKBONE_WEIGHTS.override_env] = str(folder / "vgg16.pth")
        os.environ[DISTS_PARAMETERS.override_env] = str(folder / "dists.pt")
        return folder / "vgg16.pth", folder / "dists.pt"


def _references_b():
    """(column, reference name, function(original, decoded) -> float) for METRICS_B's columns."""
    import tempfile

    import piq
    from pytorch_msssim import ms_ssim

    from tests.test_jpeg_ai_metrics_b import ffmpeg_cli_vmaf, reference_psnr, reference_yuv709

    def plane_psnr(i):
        return lambda a, b: reference_psnr(reference_yuv709(a)[i], reference_yuv709(b)[i])

    def y64(image):
        return torch.from_numpy(reference_yuv709(image)[0].astype(np.float64))[None, None]

    refs = [(f"psnr_{c}709", "numpy BT.709 (tests)", plane_psnr(i)) for i, c in enumerate("yuv")]
    refs.append(("ms_ssim_y709", "pytorch_msssim float64",
                 lambda a, b: float(ms_ssim(y64(a), y64(b), data_range=255))))
    try:
        from psnr_hvsm import psnr_hvs_hvsm

        def hvs(a, b, k):  # JPEG AI's framework: Y in [0, 1], edge-padded to a multiple of 8
            ya, yb = (reference_yuv709(x)[0].astype(np.float64) / 255 for x in (a, b))
            pad = ((0, -ya.shape[0] % 8), (0, -ya.shape[1] % 8))
            return float(psnr_hvs_hvsm(np.pad(ya, pad, mode="edge"), np.pad(yb, pad, mode="edge"))[k])

        refs.append(("psnr_hvs_m", "psnr_hvsm", lambda a, b: hvs(a, b, 1)))
        refs.append(("psnr_hvs", "psnr_hvsm", lambda a, b: hvs(a, b, 0)))
    except ImportError:
        print("psnr_hvsm not installed: no PSNR-HVS(-M) cross-check")
    scratch = Path(tempfile.mkdtemp(prefix="bench-vmaf-"))
    refs.append(("vmaf", "ffmpeg libvmaf CLI", lambda a, b: ffmpeg_cli_vmaf(a, b, scratch)))
    backbone, parameters = _dists_files()
    hub = Path(tempfile.mkdtemp(prefix="bench-torch-home-"))
    (hub / "hub" / "checkpoints").mkdir(parents=True)
    (hub / "hub" / "checkpoints" / "vgg16-397923af.pth").symlink_to(backbone.resolve())
    (hub / "hub" / "checkpoints" / "dists_weights.pt").symlink_to(parameters.resolve())
    torch_home = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(hub)  # piq.DISTS() loads both from torch hub's cache
    reference_dists = piq.DISTS(reduction="none")
    if torch_home is None:
        del os.environ["TORCH_HOME"]
    else:
        os.environ["TORCH_HOME"] = torch_home

    def tensor(image):
        return torch.from_numpy(image.transpose(2, 0, 1).copy())[None].float() / 255

    refs.append(("dists", "piq.DISTS (same weights)", lambda a, b: float(reference_dists(tensor(b), tensor(a))[0])))
    return refs


def cross_check(pairs) -> None:
    refs = _references() + _references_b()
    ours = {name: METRICS[name].load("cpu") for name in ("vif", "fsim", "iw_ssim", "nlpd", *METRICS_B)}
    worst = {(metric, ref): (0.0, "") for metric, ref, _ in refs}
    values = {c.name: [] for name in ours for c in METRICS[name].columns}
    print(f"{len(pairs)} Kodak pairs (JPEG q20), load average {load_average():.2f} at start")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for stem, original, decoded in pairs:
            mine = {column: value for measure in ours.values()
                    for column, value in measure(original, decoded).items()}
            for name, value in mine.items():
                values[name].append(value)
            for metric, ref, function in refs:
                diff = abs(mine[metric] - function(original, decoded))
                if diff >= worst[(metric, ref)][0]:
                    worst[(metric, ref)] = (diff, stem)
            print(f"  {stem}: " + ", ".join(f"{k} {v:.6f}" for k, v in mine.items()), flush=True)
    print(f"\nload average {load_average():.2f} at end\n")
    header = f"{'metric':<15} {'reference':<25} {'max |Δ|':>9}  {'at':<8} {'range of rdbench values':>24}"
    print(header)
    print("-" * len(header))
    for (metric, ref), (diff, stem) in worst.items():
        low, high = min(values[metric]), max(values[metric])
        print(f"{metric:<15} {ref:<25} {diff:>9.1e}  {stem:<8} {low:>11.4f} – {high:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=24, help="number of Kodak images (default 24)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per pair; the fastest counts (default 1)")
    parser.add_argument("--metrics", default="", help="comma-separated per-image metrics (default: all)")
    parser.add_argument("--cross-check", action="store_true", help="max |Δ| of the JPEG AI metrics and DISTS vs references")
    args = parser.parse_args()

    if not (KODAK / "kodim01.png").is_file():
        print(f"skipped: Kodak images not found at {KODAK}")
        return
    torch.set_num_threads(1)
    pairs = kodak_pairs(args.limit)
    if args.cross_check:
        cross_check(pairs)
        return
    names = [n for n in args.metrics.split(",") if n] or [n for n, m in METRICS.items() if m.level == "image"]
    costs(pairs, names, args.repeat)


if __name__ == "__main__":
    main()
