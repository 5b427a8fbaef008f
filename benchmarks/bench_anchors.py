"""An external anchor codec (bpg, vtm, aom, vvenc) on Kodak at CompressAI's quantisers vs its published means.

    python benchmarks/bench_anchors.py --codec bpg                    # 24 images × 8 QPs
    python benchmarks/bench_anchors.py --codec vtm --qps 47,37,27 --workers 2
    python benchmarks/bench_anchors.py --codec aom --qps 52,32 --limit 8
    python benchmarks/bench_anchors.py --codec vtm --from-run reports/kodak-anchors   # a finished run's rows

Each image is coded through rdbench's own path (``get_codec`` + ``evaluate_ladder``: encode,
decode twice, PSNR-RGB and MS-SSIM by rdbench.metrics), one process per worker. The means per
quantiser are compared with the CompressAI rows of rdbench's shipped reference table
(rdbench/reports/reference/kodak.csv): point p ↔ QP 47 − 5(p − 1) for bpg/vtm/vvenc,
cq-level 62 − 5(p − 1) for aom. Prints Δbpp %, ΔPSNR dB and ΔMS-SSIM per quantiser, the mean
encoder and decoder subprocess seconds per image, and the load average before and after.
For bpg it checks the acceptance targets (|Δbpp| ≤ 1 %, |ΔPSNR| ≤ 0.05 dB at every QP).

For the YCbCr codecs (vtm, aom) a last column gives PSNR2020: PSNR as CompressAI's bench computed
it when it made its VTM/HM/AV1 JSONs (2020; commit 7c2f679): between the YCbCr-converted source
and the decoded YCbCr, both back in float RGB, so without the loss of the 8-bit conversion that
rdbench's PSNR (decoded uint8 RGB vs the original PNG) counts. It isolates the codec from that
metric difference.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import KODAK, REPO  # noqa: E402

sys.path.insert(0, str(REPO))

#: codec name → (published method slug in the Kodak reference table, quantiser of point 1).
REFERENCE = {"bpg": ("bpg-444-x265-ycbcr", 47), "vtm": ("vtm", 47), "vvenc": ("vtm", 47),
             "hm": ("hm", 47), "aom": ("av1-aomenc", 62)}


def _rgb_2020(planes: np.ndarray) -> np.ndarray:
    """uint8 (3, H, W) BT.709 YCbCr → float RGB in [0, 1], clipped: CompressAI's 2020 bench conversion."""
    y, cb, cr = planes.astype(np.float32) / 255
    r = 1.5748 * (cr - 0.5) + y
    b = 1.8556 * (cb - 0.5) + y
    g = (y - 0.2126 * r - 0.0722 * b) / 0.7152
    return np.clip(np.stack([r, g, b]), 0, 1)


def psnr_2020(image: np.ndarray, decoded_planes: np.ndarray) -> float:
    """PSNR as CompressAI's bench computed it for VTM/HM/AV1 when its Kodak JSONs were made (2020):
    between the YCbCr-converted source and the decoded YCbCr, both back in float RGB; the 8-bit
    truncation of the conversion and of the output are not counted."""
    from rdbench.codecs.external import rgb_to_ycbcr

    mse = float(np.mean((_rgb_2020(rgb_to_ycbcr(image)).astype(np.float64) - _rgb_2020(decoded_planes)) ** 2))
    return -10 * np.log10(mse)


def code_image(spec: str, path: str, qps: list[int]) -> list[dict]:
    """One image at every quantiser through rdbench's ladder evaluation (run in a worker process)."""
    from rdbench.codecs import get_codec
    from rdbench.images import load_image
    from rdbench.run.ladder import Failure, MetricSet, evaluate_ladder

    codec = get_codec(spec)
    image = load_image(path)
    metrics = MetricSet(("psnr_rgb", "ms_ssim_rgb"))
    rows = []
    for qp in qps:
        quality = codec.QP_MAX - qp
        (m,) = evaluate_ladder(codec, image, [quality], metrics=metrics, keep_outputs=True)
        if isinstance(m, Failure):
            raise RuntimeError(f"{Path(path).name} qp {qp}: {m.stage}: {m.error_type}: {m.message}")
        tool_s = dict(codec.last_tool_s)
        p2020 = float("nan")
        if hasattr(codec, "decode_ycbcr"):  # YCbCr codecs: also the 2020 bench's PSNR (untimed extra decode)
            fmt, luma, chroma = codec.decode_ycbcr(m.data)
            if fmt == "444":
                p2020 = psnr_2020(image, np.concatenate([luma[None], chroma]))
        rows.append({"psnr_2020": p2020, "image": Path(path).name, "qp": qp, "bpp": m.bpp, "psnr": m.values["psnr_rgb"],
                     "ms_ssim": m.values["ms_ssim_rgb"], "encode_s": m.encode_s,
                     "tool_encode_s": tool_s.get("encoder", float("nan")),
                     "tool_decode_s": tool_s.get("decoder", float("nan")),
                     "roundtrip_ok": m.roundtrip_ok})
    return rows


def rows_from_run(run_dir: Path, name: str) -> tuple[str, list[dict]]:
    """A finished run's result rows of codec ``name`` in this script's row format (no PSNR2020, no
    subprocess times: the run keeps no bitstreams)."""
    import pandas as pd
    import pyarrow.parquet as pq

    results = pd.concat([pq.read_table(f).to_pandas() for f in sorted((run_dir / "results").glob("*.parquet"))])
    mine = results[results["codec"].astype(str).str.split(":").str[0] == name]
    if mine.empty:
        raise SystemExit(f"no {name} rows in {run_dir}")
    specs = sorted(mine["codec"].astype(str).unique())
    if len(specs) > 1:
        raise SystemExit(f"several {name} specs in {run_dir}: {specs}")
    return specs[0], [{"psnr_2020": float("nan"), "image": r.image_id, "quality": r.quality, "bpp": r.bpp,
                       "psnr": r.psnr_rgb, "ms_ssim": r.ms_ssim_rgb, "encode_s": r.encode_s,
                       "tool_encode_s": float("nan"), "tool_decode_s": float("nan"), "roundtrip_ok": True}
                      for r in mine.itertuples()]


def conversion_ceiling(images: list[str], codec) -> float:
    """Mean PSNR-RGB of the codec's own RGB → YCbCr → RGB conversion with no coding at all: the
    highest PSNR rdbench can measure for it (CompressAI's 2020 figures do not count this loss)."""
    from rdbench.codecs.external import rgb_to_ycbcr, ycbcr_to_rgb
    from rdbench.images import load_image
    from rdbench.metrics.psnr import psnr

    rounding = codec.params.get("rounding", "floor")
    values = []
    for path in images:
        image = load_image(path)
        values.append(psnr(image, ycbcr_to_rgb(rgb_to_ycbcr(image, rounding), rounding)))
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codec", default="bpg", help="codec spec: bpg, vtm, aom, vvenc (with :key=value parameters)")
    parser.add_argument("--qps", default="", help="comma-separated QPs (aom: cq-levels); default CompressAI's ladder")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--folder", type=Path, default=KODAK, help=f"folder of PNGs (default {KODAK})")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images")
    parser.add_argument("--from-run", type=Path, default=None, metavar="RUN_DIR",
                        help="compare a finished run's rows of --codec (its images: --folder) instead of coding")
    args = parser.parse_args()

    from rdbench.codecs import get_codec
    from rdbench.reports.reference import reference_curve

    codec = get_codec(args.codec)
    codec.check_runnable()
    slug, first = REFERENCE.get(codec.name, (None, 47))
    ladder = [codec.qp(q) for q in codec.default_qualities()]
    qps = [int(s) for s in args.qps.split(",") if s.strip()] or ladder
    for qp in qps:
        codec.check_quality(codec.QP_MAX - qp)
    images = sorted(str(p) for p in args.folder.glob("*.png"))[: args.limit or None]
    if not images:
        raise SystemExit(f"no PNG images in {args.folder}")
    published = reference_curve("kodak", slug) if slug else None
    print(f"{codec.spec} [{codec.version}]; published curve: "
          + (f"CompressAI '{slug}' (Kodak)" if slug else "none"))
    print(f"{len(images)} images from {args.folder}"
          + ("" if args.from_run else f", QPs {qps}, {args.workers} workers")
          + f"; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    start = time.perf_counter()
    if args.from_run:
        spec, rows = rows_from_run(args.from_run, codec.name)
        codec = get_codec(spec)
        for r in rows:
            r["qp"] = codec.qp(r.pop("quality"))
        qps = sorted({r["qp"] for r in rows}, reverse=True)
        names = sorted(Path(p).name for p in images)
        for qp in qps:  # a mean over other images than the folder's is no comparison: refuse it
            got = sorted(r["image"] for r in rows if r["qp"] == qp)
            if got != names:
                raise SystemExit(f"--from-run: {spec} at QP {qp} has {len(got)} rows, not one per image of "
                                 f"{args.folder} ({len(names)}); give the run's image folder as --folder")
        print(f"rows of {spec} from {args.from_run}: {len(rows)} items, QPs {qps}")
    else:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(code_image, args.codec, path, qps) for path in images]
            rows = [row for f in futures for row in f.result()]
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    if hasattr(codec, "decode_ycbcr") and codec.name != "vvenc":
        print(f"conversion ceiling: RGB → YCbCr (8-bit) → RGB with no coding gives {conversion_ceiling(images, codec):.3f} dB "
              "mean PSNR-RGB over these images; CompressAI's 2020 VTM/AV1 figures do not count this loss")

    label = "cq" if codec.name == "aom" else "QP"
    live = not args.from_run  # a run's rows carry no tool times and no PSNR2020
    print(f"\n{label:>3} {'bpp':>8} {'pub':>8} {'Δbpp %':>7} {'PSNR':>7} {'pub':>7} {'ΔdB':>6} "
          f"{'MS-SSIM':>8} {'pub':>8} {'Δ':>8}" + (f" {'enc s':>6} {'dec s':>6} {'PSNR2020':>8} {'ΔdB':>6}" if live else ""))
    worst_bpp = worst_psnr = 0.0
    compared = 0
    for qp in qps:
        sel = [r for r in rows if r["qp"] == qp]
        bpp, ps, ms, p20 = (float(np.mean([r[k] for r in sel])) for k in ("bpp", "psnr", "ms_ssim", "psnr_2020"))
        enc, dec = (float(np.mean([r[k] for r in sel])) for k in ("tool_encode_s", "tool_decode_s"))
        point = (first - qp) / 5 + 1
        pub = None
        if published is not None and len(images) == 24 and point == int(point):
            match = published[published["point"] == int(point)]
            pub = match.iloc[0] if len(match) else None
        tools = f" {enc:6.2f} {dec:6.2f} {p20:8.3f}" if live else ""
        if pub is None:
            print(f"{qp:>3} {bpp:8.4f} {'—':>8} {'':>7} {ps:7.3f} {'—':>7} {'':>6} {ms:8.5f} {'—':>8} {'':>8}{tools}")
            continue
        d_bpp, d_psnr, d_ms = (bpp / pub["bpp"] - 1) * 100, ps - pub["psnr_rgb"], ms - pub["ms_ssim_rgb"]
        worst_bpp, worst_psnr = max(worst_bpp, abs(d_bpp)), max(worst_psnr, abs(d_psnr))
        compared += 1
        print(f"{qp:>3} {bpp:8.4f} {pub['bpp']:8.4f} {d_bpp:+7.3f} {ps:7.3f} {pub['psnr_rgb']:7.3f} {d_psnr:+6.3f} "
              f"{ms:8.5f} {pub['ms_ssim_rgb']:8.5f} {d_ms:+8.5f}{tools}"
              + (f" {p20 - pub['psnr_rgb']:+6.3f}" if live else ""))
    bad = sum(not r["roundtrip_ok"] for r in rows)
    if live:
        print(f"\n{len(rows)} items in {wall:.1f} s wall ({args.workers} workers); encoder subprocess "
              f"{np.mean([r['tool_encode_s'] for r in rows]):.2f} s/item mean, encode_s as rdbench times it "
              f"{np.mean([r['encode_s'] for r in rows]):.2f} s/item; round-trip mismatches: {bad}")
    else:
        print(f"\n{len(rows)} items from the run; encode_s as rdbench timed it {np.mean([r['encode_s'] for r in rows]):.2f} "
              "s/item (the run verified each round trip)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)}")
    if compared:
        print(f"largest differences from CompressAI's published means ({compared} QPs): "
              f"bpp {worst_bpp:.3f} %, PSNR {worst_psnr:.4f} dB")
    if codec.name == "bpg" and compared:
        ok = worst_bpp <= 1.0 and worst_psnr <= 0.05
        print("acceptance (bpg: |Δbpp| ≤ 1 %, |ΔPSNR| ≤ 0.05 dB at every QP): " + ("PASS" if ok else "FAIL"))
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
