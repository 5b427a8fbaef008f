"""mentzer2018 on Kodak: encode/decode seconds per stage, real vs estimated rate, exact round trips.

    python benchmarks/bench_mentzer2018.py [--qualities 1,2,3] [--images 24] [--threads 1]
        [--weights fitted|random|CHECKPOINT_TEMPLATE] [--fit-steps 150] [--refit]
        [--verify all|first] [--json out.json]

Weights (there are no published PyTorch weights):

- ``random`` — the codec's ``weights=random``: untrained, batch norm calibrated on one synthetic
  image; its context model is untrained, so probabilities are near-uniform.
- ``fitted`` (default) — a "sensible initialisation" made here, offline, from BSDS500 training
  photographs (``../shared/train-images``; never Kodak): the same random network, its batch-norm
  statistics recalibrated on 256×256 crops of 32 training photographs, then its context model
  (only) trained with Adam for ``--fit-steps`` steps on the symbol volumes of those crops
  (cross-entropy of the coded symbols, random 16×16 windows, batch 8). The autoencoder stays untrained, so PSNR is meaningless, but the
  importance map follows image content and the probabilities are sharp, as in a trained model.
  Saved as ``codecs/mentzer2018/fitted-q{quality}.pth`` (reused unless ``--refit``) and
  benchmarked with ``checkpoint=``.
- anything else — a ``checkpoint=`` template.

Per image and quality: ``analyse`` (analysis transform + quantisation), ``entropy_encode``
(context model: all logits in one parallel pass; entropy coding: range coding of the symbols and
of the importance map), ``decode_full`` (entropy decoding: the map and the range decoder's calls;
context model: wavefront evaluations; synthesis). Checks: the decoded symbols and importance map
equal the encoder's, and the decoded image equals the synthesis of the encoder's symbols
(``--verify first`` checks the image only on the first image of each quality, saving a synthesis).
Rates: real bpp = file bytes·8 / pixels (header included); estimated = the model's −Σlog2 p of
what is coded (symbols + importance map). Times are wall and CPU seconds (the CPU column is what
the process itself used; on a shared machine wall time also counts waiting for a core).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
KODAK = SHARED / "kodak"
BSDS = SHARED / "train-images" / "bsds500"
sys.path.insert(0, str(REPO))

N_PHOTOS, CROP = 32, 256  # BSDS500 training photographs used for the fitted weights, crop size
ENC_STAGES = ("analysis", "context_model", "entropy_coding")
DEC_STAGES = ("entropy_decoding", "context_model", "synthesis")


def fitted_checkpoints(qualities, steps: int, refit: bool, log) -> str:
    """Make (or reuse) the BN-calibrated, context-fitted checkpoints; returns the template."""
    import numpy as np
    import torch

    from rdbench.codecs.seeds import mentzer2018 as M
    from rdbench.images import load_image

    folder = REPO / "codecs" / "mentzer2018"
    template = str(folder / "fitted-q{quality}.pth")
    files = sorted(BSDS.glob("train/*.jpg"))
    if not files:
        raise SystemExit(f"no BSDS500 training images under {BSDS}")
    for q in qualities:
        path = Path(template.replace("{quality}", str(q)))
        if path.is_file() and not refit:
            log(f"q{q}: reusing {path}")
            continue
        t0 = time.perf_counter()
        C = M.CONFIGS[q][1]
        net = M.random_net(C, seed=q)  # the same network as weights=random (seed 0), before fitting
        photos = [load_image(f) for f in files[:N_PHOTOS]]
        crops = [torch.from_numpy(p[:CROP, :CROP].copy()).permute(2, 0, 1).float() for p in photos]
        M.calibrate_batchnorm(net, [torch.stack(crops[i : i + 4]) for i in range(0, len(crops), 4)])
        volumes = []
        with torch.no_grad():
            for i in range(0, len(crops), 4):
                qz = net.quantize(net.encoder(torch.stack(crops[i : i + 4])))
                volumes += [(s.numpy(), n.numpy()) for s, n in zip(qz.symbols, qz.nmap)]
        mean_n = np.mean([v[1].mean() for v in volumes])
        log(f"q{q}: BN calibrated, {len(volumes)} symbol volumes (mean channels kept {mean_n:.1f}/{C}) "
            f"in {time.perf_counter() - t0:.0f} s; fitting the context model for {steps} steps")
        losses = M.fit_context_model(net, volumes, steps, log=lambda s, l: log(f"  q{q} step {s}: {l:.3f} bits/symbol"))
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), path)
        log(f"q{q}: saved {path} (final loss {np.mean(losses[-25:]):.3f} bits/symbol, "
            f"{time.perf_counter() - t0:.0f} s in all)")
    return template


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qualities", default="1,2,3")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--weights", default="fitted")
    parser.add_argument("--fit-steps", type=int, default=150)
    parser.add_argument("--refit", action="store_true")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--verify", default="all", choices=("all", "first"))
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    import numpy as np
    import torch

    from rdbench.codecs import bitstream, get_codec
    from rdbench.images import load_image

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.threads:
        torch.set_num_threads(args.threads)
    qualities = [int(q) for q in args.qualities.split(",") if q]
    paths = sorted(KODAK.glob("kodim*.png"))[: args.images]
    if not paths:
        raise SystemExit(f"no Kodak images under {KODAK}")
    if args.weights == "random":
        spec = "mentzer2018:weights=random"
    elif args.weights == "fitted":
        spec = f"mentzer2018:checkpoint={fitted_checkpoints(qualities, args.fit_steps, args.refit, log)}"
    else:
        spec = f"mentzer2018:checkpoint={args.weights}"
    if args.precision != "fp32":
        spec += f",precision={args.precision}"
    codec = get_codec(spec)
    for q in qualities:
        codec.model(q)  # build outside the timings
    env = {
        "spec": spec,
        "version": codec.version,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_start": os.getloadavg(),
    }
    log(f"{spec}: {len(paths)} Kodak images, qualities {qualities}, torch threads {torch.get_num_threads()}, "
        f"load average {env['loadavg_start'][0]:.1f}")
    rows = []
    for q in qualities:
        for n, path in enumerate(paths):
            image = load_image(path)
            pixels = image.shape[0] * image.shape[1]
            a = codec.analyse(image, q)
            enc = codec.entropy_encode(a, q, image.shape[:2])
            et = dict(codec.last_timings)
            dec = codec.decode_full(enc.data)
            dt = dict(codec.last_timings)
            symbols_ok = bool(np.array_equal(dec.symbols, a.symbols) and np.array_equal(dec.nmap, a.nmap))
            image_ok = None
            if args.verify == "all" or n == 0:
                ref = codec.synthesize(a.symbols, q)[: image.shape[0], : image.shape[1]]
                image_ok = bool(np.array_equal(ref, dec.image))
            header, strings = bitstream.unpack(enc.data)
            C = a.symbols.shape[0]
            row = {
                "quality": q,
                "image": path.stem,
                "bytes": len(enc.data),
                "header_bytes": len(enc.data) - sum(map(len, strings)),
                "map_bytes": len(strings[0]),
                "bpp": len(enc.data) * 8 / pixels,
                "bpp_estimated": enc.estimated_bits / pixels,
                "coded_fraction": float(a.nmap.mean() / C),
                "symbols_ok": symbols_ok,
                "image_ok": image_ok,
                **{f"enc_{k}": et[k] for k in ENC_STAGES},
                **{f"enc_{k}_cpu": et[k + "_cpu"] for k in ENC_STAGES},
                **{f"dec_{k}": dt[k] for k in DEC_STAGES},
                **{f"dec_{k}_cpu": dt[k + "_cpu"] for k in DEC_STAGES},
            }
            row["encode_s"] = sum(row[f"enc_{k}"] for k in ENC_STAGES)
            row["encode_cpu_s"] = sum(row[f"enc_{k}_cpu"] for k in ENC_STAGES)
            row["decode_s"] = sum(row[f"dec_{k}"] for k in DEC_STAGES)
            row["decode_cpu_s"] = sum(row[f"dec_{k}_cpu"] for k in DEC_STAGES)
            rows.append(row)
            log(f"q{q} {path.stem}: {row['bpp']:.4f} bpp (est {row['bpp_estimated']:.4f}, "
                f"{100 * (row['bpp'] / row['bpp_estimated'] - 1):+.3f} %), kept {row['coded_fraction']:.2f}, "
                f"encode {row['encode_s']:.2f} s (cpu {row['encode_cpu_s']:.2f}), decode {row['decode_s']:.2f} s "
                f"(cpu {row['decode_cpu_s']:.2f}), symbols {'ok' if symbols_ok else 'MISMATCH'}, "
                f"image {'-' if image_ok is None else 'ok' if image_ok else 'MISMATCH'}")
    env["loadavg_end"] = os.getloadavg()

    print(f"\n{spec}\n{codec.version}\n{env['cores']} cores, torch threads {env['torch_threads']}, "
          f"load average {env['loadavg_start'][0]:.1f} → {env['loadavg_end'][0]:.1f}\n")
    head = (f"{'q':>2} {'n':>3} {'bpp':>7} {'est':>7} {'real/est':>9} {'hdr B':>6} {'map %':>6} "
            f"{'kept':>5} {'exact':>6} | {'enc s':>6} {'cpu':>5} = {'anal':>5} {'ctx':>5} {'code':>5} | "
            f"{'dec s':>6} {'cpu':>5} = {'code':>5} {'ctx':>5} {'synth':>5}")
    print(head)
    print("-" * len(head))
    summary = []
    for q in qualities:
        rs = [r for r in rows if r["quality"] == q]
        m = {k: float(np.mean([r[k] for r in rs])) for k in rs[0] if isinstance(rs[0][k], float)}
        real_bits = sum(r["bytes"] * 8 for r in rs)
        est_bits = sum(r["bpp_estimated"] * r["bytes"] * 8 / r["bpp"] for r in rs)  # back to bits
        exact = all(r["symbols_ok"] for r in rs) and all(r["image_ok"] is not False for r in rs)
        s = {
            "quality": q,
            "images": len(rs),
            "bpp": m["bpp"],
            "bpp_estimated": m["bpp_estimated"],
            "real_over_estimate_percent": 100 * (real_bits / est_bits - 1),
            "max_image_real_over_estimate_percent": max(100 * (r["bpp"] / r["bpp_estimated"] - 1) for r in rs),
            "header_bytes": float(np.mean([r["header_bytes"] for r in rs])),
            "map_share_percent": 100 * sum(r["map_bytes"] for r in rs) / sum(r["bytes"] for r in rs),
            "coded_fraction": m["coded_fraction"],
            "all_exact": exact,
            "images_verified": sum(r["image_ok"] is not None for r in rs),
            **{k: m[k] for k in m if k.startswith(("enc_", "dec_", "encode", "decode"))},
        }
        summary.append(s)
        print(f"{q:>2} {len(rs):>3} {s['bpp']:>7.4f} {s['bpp_estimated']:>7.4f} "
              f"{s['real_over_estimate_percent']:>+8.3f}% {s['header_bytes']:>6.0f} {s['map_share_percent']:>5.2f}% "
              f"{s['coded_fraction']:>5.2f} {'yes' if exact else 'NO':>6} | "
              f"{m['encode_s']:>6.2f} {m['encode_cpu_s']:>5.2f} = {m['enc_analysis_cpu']:>5.2f} "
              f"{m['enc_context_model_cpu']:>5.2f} {m['enc_entropy_coding_cpu']:>5.2f} | "
              f"{m['decode_s']:>6.2f} {m['decode_cpu_s']:>5.2f} = {m['dec_entropy_decoding_cpu']:>5.2f} "
              f"{m['dec_context_model_cpu']:>5.2f} {m['dec_synthesis_cpu']:>5.2f}")
    print("\n(stage columns are CPU seconds per image; 'enc s'/'dec s' are wall seconds; exact = decoded "
          "symbols, map and image equal the encoder's)")
    if args.json:
        Path(args.json).write_text(json.dumps({"env": env, "summary": summary, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
