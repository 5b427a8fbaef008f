"""HiFiC encode/decode seconds per Kodak image, per stage, and the seed codecs' parameter counts.

    python benchmarks/bench_hific.py [--images 2] [--quality 1] [--device auto]
                                     [--checkpoint codecs/hific/hific_{quality}.pt | --weights random]
    python benchmarks/bench_hific.py --params-only

Stages (seconds per image, CUDA synchronised around each while timing):

- encode: ``analysis`` (encoder on the device), ``hyperprior`` (hyper-analysis on the device,
  hyper-synthesis of μ/σ and the scale-table lookup on the CPU, rate estimate), ``entropy_coding``
  (rANS coding of hyper-latents and latents, CPU);
- decode: ``entropy_coding`` (rANS decoding), ``hyperprior`` (μ/σ from the decoded hyper-latents,
  CPU), ``synthesis`` (generator on the device).

Timing does not depend on the weights' values, so without the published files (Zenodo 4026003)
the benchmark runs an untrained network of the same architecture (``--weights random``, the
default when ``<weights root>/hific/hific_low.pt`` is absent). The first image is preceded by an
untimed warm-up on a 256×256 crop (weights paged in, CUDA kernels loaded).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rdbench.codecs import get_codec  # noqa: E402
from rdbench.device import resolve_device, synchronize  # noqa: E402
from rdbench.images import load_image  # noqa: E402

KODAK = Path(__file__).resolve().parents[2] / "shared" / "kodak"
#: published figure for the PyTorch HiFiC (seed README / notes): "about 181 M parameters"
PUBLISHED_PARAMS = 181e6
#: the discriminator of the published checkpoints (context conv + 4 spectral-norm 4×4 convs + 1×1)
DISCRIMINATOR_PARAMS = 2_801_485
ENCODE_STAGES = ("analysis", "hyperprior", "entropy_coding")
DECODE_STAGES = ("entropy_coding", "hyperprior", "synthesis")


def parameter_report() -> list[str]:
    from rdbench.codecs.seeds import balle2018, hific, xiao2019

    lines = ["parameters (learned weights; entropy-coder tables excluded):"]
    for q, regime in hific.REGIMES.items():
        cfg = hific.config_from_args(hific.PUBLISHED_ARGS[q])
        c = hific.parameter_counts(cfg)
        lines.append(
            f"  hific {regime:4} (C={cfg.latent_channels}, {cfg.n_residual_blocks} res. blocks, {cfg.likelihood_type}, "
            f"norm. input {cfg.normalize_input_image}): encoder {c['Encoder'] / 1e6:.3f} M, generator "
            f"{c['Generator'] / 1e6:.3f} M, hyperprior {c['Hyperprior'] / 1e6:.3f} M → {c['total'] / 1e6:.3f} M without "
            f"the discriminator, {(c['total'] + DISCRIMINATOR_PARAMS) / 1e6:.3f} M with it "
            f"(published: ≈ {PUBLISHED_PARAMS / 1e6:.0f} M)"
        )
    for name, module in (("balle2018", balle2018), ("xiao2019", xiao2019)):
        net = module.network()
        parts = {k: sum(p.numel() for p in getattr(net, k).parameters()) for k in ("g_a", "g_s", "h_a", "h_s")}
        parts["entropy_bottleneck"] = sum(p.numel() for p in net.entropy_bottleneck.parameters())
        total = sum(p.numel() for p in net.parameters())
        detail = ", ".join(f"{k} {v / 1e6:.3f} M" for k, v in parts.items())
        lines.append(f"  {name} (N=M=192): {detail} → {total / 1e6:.3f} M")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2, help="number of Kodak images (kodim01…)")
    parser.add_argument("--quality", type=int, default=1, choices=(1, 2, 3), help="1/2/3 = low/med/high")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--checkpoint", default="", help="hific checkpoint template ({quality} → low/med/hi)")
    parser.add_argument("--weights", choices=("auto", "published", "random"), default="auto")
    parser.add_argument("--kodak", default=str(KODAK))
    parser.add_argument("--json", default="", help="also write the results here")
    parser.add_argument("--params-only", action="store_true")
    args = parser.parse_args()

    import torch

    for line in parameter_report():
        print(line)
    if args.params_only:
        return

    kodak = Path(args.kodak)
    files = sorted(kodak.glob("kodim*.png"))[: args.images]
    if not files:
        raise SystemExit(f"Kodak images not found at {kodak}")
    device = resolve_device(args.device)
    spec = "hific"
    if args.checkpoint:
        spec += f":checkpoint={args.checkpoint}"
    elif args.weights == "random" or (args.weights == "auto" and not get_codec("hific").weights_available([args.quality])):
        spec += ":weights=random"
    codec = get_codec(spec).to(device)

    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else ""
    print(f"\nspec {spec!r}, quality {args.quality}, device {device} {gpu}".rstrip())
    print(f"host {platform.node()}: {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} "
          f"threads, load average {os.getloadavg()[0]:.1f}")

    t0 = time.perf_counter()
    codec._load(args.quality)
    load_s = time.perf_counter() - t0
    print(f"model load + entropy tables: {load_s:.1f} s; {codec.version_for(args.quality)}")
    warm = load_image(files[0])[:256, :256].copy()
    codec.decode(codec.compress(warm, args.quality).data)  # untimed warm-up

    rows = []
    header = (f"{'image':10} {'bpp':>6} {'est.':>6} | {'encode':>7} " + " ".join(f"{s:>14}" for s in ENCODE_STAGES)
              + f" | {'decode':>7} " + " ".join(f"{s:>14}" for s in DECODE_STAGES))
    print(header)
    for path in files:
        image = load_image(path)
        h, w = image.shape[:2]
        codec.stage_times = defaultdict(float)
        synchronize(device)
        t = time.perf_counter()
        enc = codec.compress(image, args.quality)
        synchronize(device)
        encode_s = time.perf_counter() - t
        enc_stages = dict(codec.stage_times)
        codec.stage_times = defaultdict(float)
        t = time.perf_counter()
        out = codec.decode(enc.data)
        synchronize(device)
        decode_s = time.perf_counter() - t
        dec_stages = dict(codec.stage_times)
        codec.stage_times = None
        assert out.shape == image.shape
        row = {
            "image": path.stem, "height": h, "width": w, "bpp": len(enc.data) * 8 / (h * w),
            "bpp_estimated": enc.estimated_bits / (h * w), "encode_s": encode_s, "decode_s": decode_s,
            "encode_stages": enc_stages, "decode_stages": dec_stages,
        }
        rows.append(row)
        print(f"{path.stem:10} {row['bpp']:6.3f} {row['bpp_estimated']:6.3f} | {encode_s:7.2f} "
              + " ".join(f"{enc_stages.get(s, 0):14.3f}" for s in ENCODE_STAGES)
              + f" | {decode_s:7.2f} " + " ".join(f"{dec_stages.get(s, 0):14.3f}" for s in DECODE_STAGES))
    n = len(rows)
    mean = lambda key: sum(r[key] for r in rows) / n  # noqa: E731
    print(f"mean over {n} image(s): encode {mean('encode_s'):.2f} s, decode {mean('decode_s'):.2f} s per image")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "spec": spec, "quality": args.quality, "device": device, "gpu": gpu, "load_s": load_s,
            "threads": torch.get_num_threads(), "rows": rows, "parameters": parameter_report(),
        }, indent=2))


if __name__ == "__main__":
    main()
