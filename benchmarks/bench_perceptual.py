"""Cost of the perceptual metrics on Kodak: LPIPS per image, FID/KID features per image, FID/KID per set.

Run from the repository root:

    python benchmarks/bench_perceptual.py [--limit 24] [--repeat 1] [--threads N] [--device cpu]

For each Kodak image (768×512, from ../shared/kodak) and a JPEG copy of it (quality 30, standing in
for a reconstruction), this times what the evaluation adds per (image, codec, quality):

* ``lpips``: one :class:`rdbench.metrics.perceptual.LpipsMetric` call on the pair (whole image);
* ``fid features``: :class:`rdbench.metrics.setlevel.FeatureExtractor` on the reconstruction
  (8 patches of 256×256: the 3×2 grid and the 2×1 half-shifted grid) — the features of the
  original cost the same but are computed once per image, whatever the number of codecs and
  qualities;

and, once per (dataset, codec, quality) set, the combine: adding the images' features to a
:class:`~rdbench.metrics.setlevel.SetStats`, then FID (2048-d; 192 patches for all of Kodak) and
KID (default subsets; with fewer than 1000 patches the subset is the whole set).

Weights are random by default (speed does not depend on them): the real architectures with random
parameters are written to a temporary folder. ``--published`` uses the published weights instead
(they must be available; see rdbench.metrics.perceptual). Every timing is the fastest of
``--repeat`` runs per image; printed are the median and mean over images, wall-clock and CPU
(process time, all threads). ``--threads`` sets ``torch.set_num_threads`` (default: torch's own).
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rdbench.images import load_image  # noqa: E402
from rdbench.metrics.perceptual import LpipsMetric  # noqa: E402
from rdbench.metrics.setlevel import FeatureExtractor, SetStats, patch_origins  # noqa: E402

KODAK = REPO.parent / "shared" / "kodak"


def jpeg_copy(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def random_weights(folder: Path) -> dict[str, Path]:
    """Random-parameter AlexNet, LPIPS linear layers and Inception-v3 (torch-fidelity layout)."""
    import torchvision

    torch.manual_seed(0)
    alexnet = torchvision.models.alexnet(weights=None)
    torch.save({k: v for k, v in alexnet.state_dict().items() if k.startswith("features.")},
               folder / "alexnet.pth")
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) * 0.2
                for i, c in enumerate((64, 192, 384, 256, 256))}, folder / "alex_v0.1.pth")
    inception = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    for module in inception.modules():  # He-normal: well-scaled (not vanishing) 2048-d features
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    state = dict(inception.state_dict())
    state["fc.weight"] = torch.randn(1008, 2048) * 0.01
    state["fc.bias"] = torch.zeros(1008)
    torch.save(state, folder / "inception.pth")
    return {"backbone": folder / "alexnet.pth", "linear": folder / "alex_v0.1.pth",
            "inception": folder / "inception.pth"}


def timed(fn, *args, repeat: int = 1):
    """(result, fastest wall seconds, CPU seconds of that run)."""
    best = None
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        value = fn(*args)
        run = (time.perf_counter() - wall, time.process_time() - cpu)
        if best is None or run[0] < best[0]:
            best = run
    return value, best[0], best[1]


def row(name: str, walls: list[float], cpus: list[float], unit: str = "image") -> str:
    return (f"{name:<28} {statistics.median(walls):8.3f} {statistics.fmean(walls):8.3f} "
            f"{statistics.median(cpus):8.3f}   s/{unit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quality", type=int, default=30, help="JPEG quality of the 'reconstruction'")
    parser.add_argument("--published", action="store_true", help="use the published weights")
    args = parser.parse_args()
    if not (KODAK / "kodim01.png").is_file():
        raise SystemExit(f"Kodak images not found at {KODAK}")
    if args.threads:
        torch.set_num_threads(args.threads)
    paths = sorted(KODAK.glob("kodim*.png"))[: args.limit]

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        if args.published:
            lpips, extractor = LpipsMetric(args.device), FeatureExtractor(args.device)
            weights = "published"
        else:
            files = random_weights(Path(tmp))
            start = time.perf_counter()
            lpips = LpipsMetric(args.device, backbone=files["backbone"], linear=files["linear"])
            extractor = FeatureExtractor(args.device, weights=files["inception"])
            weights = "random"
        load_s = time.perf_counter() - start

        lp_wall, lp_cpu, fe_wall, fe_cpu, features = [], [], [], [], []
        for path in paths:
            original = load_image(str(path))  # 768×512 or 512×768: 8 patches either way
            decoded = jpeg_copy(original, args.quality)
            _, wall, cpu = timed(lpips, original, decoded, repeat=args.repeat)
            lp_wall.append(wall)
            lp_cpu.append(cpu)
            fake, wall, cpu = timed(extractor, decoded, repeat=args.repeat)
            fe_wall.append(wall)
            fe_cpu.append(cpu)
            features.append((path.stem, extractor(original), fake))

        stats, add_wall, add_cpu = timed(lambda: _accumulate(features))
        _, fid_wall, fid_cpu = timed(stats.fid)
        _, kid_wall, kid_cpu = timed(stats.kid)

    print(f"rdbench perceptual metrics on {len(paths)} Kodak images (768x512, JPEG q{args.quality} copies), "
          f"device {args.device}, torch threads {torch.get_num_threads()}, {weights} weights, "
          f"{len(patch_origins(512, 768))} FID patches per image; models loaded in {load_s:.2f} s")
    print(f"{'':<28} {'median':>8} {'mean':>8} {'cpu':>8}")
    print(row("lpips (pair, whole image)", lp_wall, lp_cpu))
    print(row("fid features (8 patches)", fe_wall, fe_cpu))
    print(row(f"set: add {len(paths)} images", [add_wall], [add_cpu], "set"))
    print(row(f"set: fid ({stats.n_patches} patches)", [fid_wall], [fid_cpu], "set"))
    print(row(f"set: kid ({stats.n_patches} patches)", [kid_wall], [kid_cpu], "set"))


def _accumulate(features) -> SetStats:
    stats = SetStats()
    for key, real, fake in features:
        stats.add(key, real, fake)
    return stats


if __name__ == "__main__":
    main()
