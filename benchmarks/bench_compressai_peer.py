"""Peer check: rdbench's CompressAI codecs against CompressAI's own evaluation script.

For each architecture, an untrained network (fixed seed) is saved as a checkpoint; then

* rdbench encodes and decodes every image with ``ARCH:checkpoint=FILE`` and measures bpp
  (entropy-coded payload only: the container header is subtracted), PSNR and MS-SSIM with
  :mod:`rdbench.metrics`;
* ``python -m compressai.utils.eval_model checkpoint DIR -a ARCH -p FILE --per-image -d OUT``
  does the same with CompressAI's reference pipeline (its padding, its rANS bitstreams,
  its pytorch_msssim / float32 PSNR), writing one JSON file per image;

and the per-image figures are compared. Untrained weights are enough: the question is whether
the two pipelines compute the same thing, not how good the model is.

    python benchmarks/bench_compressai_peer.py                 # all Kodak images
    python benchmarks/bench_compressai_peer.py --limit 4       # quick run
    python benchmarks/bench_compressai_peer.py --json out.json # keep the per-image table

Two metric comparisons are reported: rdbench.metrics (float64) against eval_model's figures
(float32 torch PSNR, float32 pytorch_msssim), and the same float32 computation run on rdbench's
reconstruction — the latter isolates the reconstructions (identical images → ~0 difference);
the former adds the float32-vs-float64 arithmetic gap, which for MS-SSIM on the very
low-quality reconstructions of untrained networks reaches ~1e-5.

Exits non-zero if the payload sizes differ or a PSNR / MS-SSIM difference exceeds
1e-3 dB / 5e-5.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / "shared" / "kodak"
PSNR_TOL_DB = 1e-3
MSSSIM_TOL = 5e-5


def _images(folder: Path, limit: int | None) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    return files[:limit] if limit else files


def _peer(arch: str, image_dir: Path, checkpoint: Path, out_dir: Path) -> dict[str, dict]:
    """Run CompressAI's eval_model on ``image_dir``; per-image results by file stem."""
    cmd = [
        sys.executable, "-m", "compressai.utils.eval_model", "checkpoint", str(image_dir),
        "-a", arch, "-p", str(checkpoint), "--per-image", "-d", str(out_dir),
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = {}
    for path in out_dir.rglob("*.json"):
        doc = json.loads(path.read_text())
        if "source" in doc:  # per-image files; the summary file has no "source"
            results[doc["source"]] = doc["results"]
    return results


def _float32_metrics(image: np.ndarray, decoded: np.ndarray) -> tuple[float, float]:
    """PSNR and MS-SSIM computed as eval_model computes them (float32 torch, pytorch_msssim).

    Comparing these with eval_model's figures isolates the reconstruction (equal images give
    equal numbers); comparing rdbench.metrics (float64) with them shows the arithmetic gap.
    """
    import math

    import torch
    from pytorch_msssim import ms_ssim

    a = torch.tensor(image).permute(2, 0, 1)[None].float()
    b = torch.tensor(decoded).permute(2, 0, 1)[None].float()
    psnr = 20 * math.log10(255) - 10 * torch.log10((a - b).pow(2).mean()).item()
    return psnr, ms_ssim(a, b, data_range=255).item()


def _ours(arch: str, checkpoint: Path, images: list[Path], quality: int) -> dict[str, dict]:
    from rdbench.codecs import get_codec
    from rdbench.codecs.bitstream import unpack
    from rdbench.images import load_image
    from rdbench.metrics import ms_ssim, psnr

    codec = get_codec(f"{arch}:checkpoint={checkpoint}")
    results = {}
    for path in images:
        image = load_image(path)
        h, w = image.shape[:2]
        t0 = time.perf_counter()
        enc = codec.compress(image, quality)
        t1 = time.perf_counter()
        decoded = codec.decode(enc.data)
        t2 = time.perf_counter()
        _, strings = unpack(enc.data)
        payload = sum(len(s) for s in strings)
        psnr32, msssim32 = _float32_metrics(image, decoded)
        results[path.stem] = {
            "bpp": payload * 8 / (h * w),
            "bpp_with_header": len(enc.data) * 8 / (h * w),
            "header_bytes": len(enc.data) - payload,
            "bpp_estimated": enc.estimated_bits / (h * w),
            "psnr-rgb": psnr(image, decoded),
            "ms-ssim-rgb": ms_ssim(image, decoded),
            "psnr-rgb-float32": psnr32,
            "ms-ssim-rgb-float32": msssim32,
            "encoding_time": t1 - t0,
            "decoding_time": t2 - t1,
        }
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder of PNG images (default: shared Kodak)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    ap.add_argument("--archs", nargs="+", default=["bmshj2018-hyperprior", "mbt2018-mean"])
    ap.add_argument("--quality", type=int, default=3, help="zoo quality whose architecture size is used")
    ap.add_argument("--seed", type=int, default=0, help="seed of the untrained weights")
    ap.add_argument("--json", type=Path, default=None, help="write the per-image comparison here")
    args = ap.parse_args(argv)

    if not args.images.is_dir():
        print(f"no image folder {args.images}", file=sys.stderr)
        return 2
    images = _images(args.images, args.limit)
    from rdbench.codecs import get_codec

    report: dict[str, dict] = {}
    ok = True
    with tempfile.TemporaryDirectory(prefix="rdbench-peer-") as tmp:
        tmp = Path(tmp)
        image_dir = tmp / "images"  # exactly the selected images, for eval_model's folder scan
        image_dir.mkdir()
        for p in images:
            (image_dir / p.name).symlink_to(p.resolve())
        for arch in args.archs:
            untrained = get_codec(f"{arch}:weights=random,seed={args.seed}")
            net = untrained._load(args.quality).net  # noqa: SLF001 (the benchmark needs the network)
            checkpoint = tmp / f"{arch}-q{args.quality}-seed{args.seed}.pth.tar"
            import torch

            torch.save(net.state_dict(), checkpoint)

            t0 = time.perf_counter()
            peer = _peer(arch, image_dir, checkpoint, tmp / f"eval-{arch}")
            t1 = time.perf_counter()
            ours = _ours(arch, checkpoint, images, args.quality)
            t2 = time.perf_counter()

            rows = {}
            for stem, mine in ours.items():
                ref = peer[stem]
                rows[stem] = {
                    "ours": mine,
                    "compressai": ref,
                    "d_bpp": mine["bpp"] - ref["bpp"],
                    "d_psnr": mine["psnr-rgb"] - ref["psnr-rgb"],
                    "d_ms_ssim": mine["ms-ssim-rgb"] - ref["ms-ssim-rgb"],
                    "d_psnr_float32": mine["psnr-rgb-float32"] - ref["psnr-rgb"],
                    "d_ms_ssim_float32": mine["ms-ssim-rgb-float32"] - ref["ms-ssim-rgb"],
                }
            keys = ("d_bpp", "d_psnr", "d_ms_ssim", "d_psnr_float32", "d_ms_ssim_float32")
            d = {k: max(abs(r[k]) for r in rows.values()) for k in keys}
            header = sorted({r["ours"]["header_bytes"] for r in rows.values()})
            summary = {
                "images": len(rows),
                "max_abs_d_bpp": d["d_bpp"],
                "max_abs_d_psnr_db": d["d_psnr"],
                "max_abs_d_ms_ssim": d["d_ms_ssim"],
                "max_abs_d_psnr_db_float32": d["d_psnr_float32"],
                "max_abs_d_ms_ssim_float32": d["d_ms_ssim_float32"],
                "mean_bpp": float(np.mean([r["ours"]["bpp"] for r in rows.values()])),
                "mean_bpp_with_header": float(np.mean([r["ours"]["bpp_with_header"] for r in rows.values()])),
                "mean_bpp_estimated": float(np.mean([r["ours"]["bpp_estimated"] for r in rows.values()])),
                "mean_psnr_db": float(np.mean([r["ours"]["psnr-rgb"] for r in rows.values()])),
                "mean_ms_ssim": float(np.mean([r["ours"]["ms-ssim-rgb"] for r in rows.values()])),
                "header_bytes": header,
                "seconds_compressai": t1 - t0,
                "seconds_rdbench": t2 - t1,
            }
            report[arch] = {"summary": summary, "images": rows}
            passed = (
                d["d_bpp"] == 0
                and max(d["d_psnr"], d["d_psnr_float32"]) <= PSNR_TOL_DB
                and max(d["d_ms_ssim"], d["d_ms_ssim_float32"]) <= MSSSIM_TOL
            )
            ok &= passed
            print(
                f"{arch} q{args.quality} (untrained, seed {args.seed}), {len(rows)} images: "
                f"max |Δbpp| {d['d_bpp']:.3g}, max |ΔPSNR| {d['d_psnr']:.3g} dB, "
                f"max |ΔMS-SSIM| {d['d_ms_ssim']:.3g} (float32 metrics on rdbench's reconstruction: "
                f"{d['d_psnr_float32']:.3g} dB, {d['d_ms_ssim_float32']:.3g}); mean bpp {summary['mean_bpp']:.4f} "
                f"(+header {summary['mean_bpp_with_header']:.4f}, estimated {summary['mean_bpp_estimated']:.4f}), "
                f"PSNR {summary['mean_psnr_db']:.3f} dB, header {header} bytes; "
                f"compressai {t1 - t0:.1f} s, rdbench {t2 - t1:.1f} s  {'OK' if passed else 'MISMATCH'}"
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
