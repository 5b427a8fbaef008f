"""Seconds per Kodak image and real rates of ``toderici2017`` and ``agustsson2019`` (untrained weights).

    python benchmarks/bench_toderici_agustsson.py [--images 2] [--threads 1] [--device cpu]
        [--decode-qualities 1,4,16] [--json out.json]

For each image (the first ``--images`` files of ``../shared/kodak``):

- toderici2017: one 16-iteration encode (``compress_ladder``: every quality from that encode),
  the decode time of the ``--decode-qualities`` (decoding quality k runs k decoder
  iterations, so decoding all 16 qualities one stream at a time costs Σk = 136 iterations: the
  table extrapolates it from the measured per-iteration time), the measured time of
  ``decode_ladder`` on all 16 streams (what the harness runs: one pass of 16 iterations), the
  stream size per quality (header bytes stated), and the lossless entropy stage: its time and
  its size against the raw bits.
- agustsson2019: per C, encode and decode seconds, the real bytes (header included), the
  model's −Σlog2 p, and the fixed rate C·log2(5)/256 the paper quotes.

The weights are random (``weights=random``): times are representative, rates of the entropy
stages are not (an untrained network's codes are far more redundant than a trained one's).
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
KODAK = REPO.parent / "shared" / "kodak"
sys.path.insert(0, str(REPO))


class _Timer:
    """Wall-clock and process CPU seconds of a block (CPU time is what a shared, loaded machine distorts least)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--decode-qualities", default="1,4,16")
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    import numpy as np
    import torch

    from rdbench.codecs import bitstream, get_codec
    from rdbench.codecs.seeds import agustsson2019 as ag
    from rdbench.codecs.seeds import toderici2017 as td
    from rdbench.images import load_image

    if args.threads:
        torch.set_num_threads(args.threads)
    paths = sorted(KODAK.glob("kodim*.png"))[: args.images]
    if not paths:
        raise SystemExit(f"no Kodak images under {KODAK}")
    decode_ks = [int(k) for k in args.decode_qualities.split(",") if k]
    tod = get_codec("toderici2017:weights=random").to(args.device)
    agu = get_codec("agustsson2019:weights=random").to(args.device)
    for c in ag.CHANNELS:  # build the models outside the timings
        agu._model(c)
    tod._model(1)

    report = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "device": args.device,
                    "load_avg": os.getloadavg(), "torch": torch.__version__},
        "images": [],
    }
    for path in paths:
        image = load_image(path)
        h, w = image.shape[:2]
        pixels = h * w
        row = {"image": path.name, "size": [h, w]}

        with _Timer() as t:
            ladder = tod.compress_ladder(image, list(range(1, 17)))
        row["toderici_encode_s"], row["toderici_encode_cpu_s"] = t.wall, t.cpu
        row["toderici_bytes"] = [len(e.data) for e in ladder]
        row["toderici_header_bytes"] = [bitstream.header_nbytes(e.data) for e in ladder]
        row["toderici_bpp"] = [len(e.data) * 8 / pixels for e in ladder]
        decode_s, decode_cpu_s = {}, {}
        for k in decode_ks:
            with _Timer() as t:
                tod.decode(ladder[k - 1].data)
            decode_s[k], decode_cpu_s[k] = t.wall, t.cpu
        row["toderici_decode_s"], row["toderici_decode_cpu_s"] = decode_s, decode_cpu_s
        per_iteration = decode_s[max(decode_ks)] / max(decode_ks)
        row["toderici_decode_all16_s_estimated"] = per_iteration * sum(range(1, 17))
        row["toderici_decode_all16_cpu_s_estimated"] = decode_cpu_s[max(decode_ks)] / max(decode_ks) * sum(range(1, 17))
        with _Timer() as t:
            assert len(list(tod.decode_ladder([e.data for e in ladder]))) == 16
        row["toderici_decode_ladder_s"], row["toderici_decode_ladder_cpu_s"] = t.wall, t.cpu

        _, (payload,) = bitstream.unpack(ladder[-1].data)
        bits = np.unpackbits(np.frombuffer(payload, np.uint8)).reshape(16, td.BITS, *(s // 16 for s in (-(-h // 32) * 32, -(-w // 32) * 32)))
        start = time.perf_counter()
        strings, ideal = td.encode_bits(bits)
        row["toderici_entropy_encode_s"] = time.perf_counter() - start
        start = time.perf_counter()
        assert np.array_equal(td.decode_bits(strings, bits.shape[2], bits.shape[3]), bits)
        row["toderici_entropy_decode_s"] = time.perf_counter() - start
        raw = np.cumsum([bits[t].size / 8 for t in range(16)])
        coded = np.cumsum([len(s) for s in strings])
        row["toderici_entropy_saving_percent"] = [100 * (1 - c / r) for c, r in zip(coded, raw)]

        row["agustsson"] = {}
        for c in ag.CHANNELS:
            with _Timer() as te:
                enc = agu.compress(image, c)
            with _Timer() as tdec:
                agu.decode(enc.data)
            row["agustsson"][c] = {
                "encode_s": te.wall, "decode_s": tdec.wall, "encode_cpu_s": te.cpu, "decode_cpu_s": tdec.cpu,
                "bytes": len(enc.data),
                "header_bytes": bitstream.header_nbytes(enc.data),
                "bpp": len(enc.data) * 8 / pixels, "bpp_estimated": enc.estimated_bits / pixels,
                "bpp_fixed": ag.fixed_rate_bpp(c),
            }
        row["load_avg_after"] = os.getloadavg()
        report["images"].append(row)
        print(f"{path.name}: toderici encode {row['toderici_encode_s']:.1f} s, decode "
              + ", ".join(f"q{k} {s:.1f} s" for k, s in decode_s.items())
              + "; agustsson " + ", ".join(f"C{c} {v['encode_s']:.1f}+{v['decode_s']:.1f} s" for c, v in row["agustsson"].items()),
              flush=True)

    _print_tables(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


def _print_tables(report: dict) -> None:
    import numpy as np

    rows = report["images"]
    print(f"\nmachine: {report['machine']}")
    print(f"\ntoderici2017 (mean over {len(rows)} image(s), weights=random)")
    print(f"  encode (all 16 qualities, one encode): {np.mean([r['toderici_encode_s'] for r in rows]):.2f} s/image "
          f"(CPU {np.mean([r['toderici_encode_cpu_s'] for r in rows]):.2f} s)")
    for k in rows[0]["toderici_decode_s"]:
        print(f"  decode quality {k:2d}: {np.mean([r['toderici_decode_s'][k] for r in rows]):.2f} s/image "
              f"(CPU {np.mean([r['toderici_decode_cpu_s'][k] for r in rows]):.2f} s)")
    print(f"  decode all 16 qualities (Σk iterations, extrapolated): "
          f"{np.mean([r['toderici_decode_all16_s_estimated'] for r in rows]):.1f} s/image "
          f"(CPU {np.mean([r['toderici_decode_all16_cpu_s_estimated'] for r in rows]):.1f} s)")
    print(f"  decode all 16 qualities with decode_ladder (one pass, measured): "
          f"{np.mean([r['toderici_decode_ladder_s'] for r in rows]):.1f} s/image "
          f"(CPU {np.mean([r['toderici_decode_ladder_cpu_s'] for r in rows]):.1f} s)")
    print(f"  entropy stage: encode {np.mean([r['toderici_entropy_encode_s'] for r in rows]):.2f} s, "
          f"decode {np.mean([r['toderici_entropy_decode_s'] for r in rows]):.2f} s (16 iterations)")
    print("  k | bytes | header | bpp | 0.125k | entropy saving %")
    for k in range(16):
        print(f"  {k + 1:2d} | {np.mean([r['toderici_bytes'][k] for r in rows]):.0f} | "
              f"{np.mean([r['toderici_header_bytes'][k] for r in rows]):.0f} | "
              f"{np.mean([r['toderici_bpp'][k] for r in rows]):.5f} | {0.125 * (k + 1):.3f} | "
              f"{np.mean([r['toderici_entropy_saving_percent'][k] for r in rows]):.1f}")
    print(f"\nagustsson2019 (mean over {len(rows)} image(s), weights=random)")
    print("  C | encode s (CPU) | decode s (CPU) | bytes | header | bpp (real) | bpp (−Σlog2 p) | bpp fixed C·log2(5)/256")
    for c in rows[0]["agustsson"]:
        v = [r["agustsson"][c] for r in rows]
        print(f"  {c:2d} | {np.mean([x['encode_s'] for x in v]):.2f} ({np.mean([x['encode_cpu_s'] for x in v]):.2f}) | "
              f"{np.mean([x['decode_s'] for x in v]):.2f} ({np.mean([x['decode_cpu_s'] for x in v]):.2f}) | "
              f"{np.mean([x['bytes'] for x in v]):.0f} | {np.mean([x['header_bytes'] for x in v]):.0f} | "
              f"{np.mean([x['bpp'] for x in v]):.4f} | {np.mean([x['bpp_estimated'] for x in v]):.4f} | "
              f"{v[0]['bpp_fixed']:.4f}")


if __name__ == "__main__":
    main()
