"""Try a codec on one image: ``python -m rdbench.codecs jpeg IMAGE --quality 50``.

Prints, per quality: bytes, bpp, PSNR (RGB), MS-SSIM and encode/decode times. With
``--output DIR`` the bitstreams and decoded PNGs are kept. A classical codec's run imports no
torch (``tests/test_cold_start.py``; start-up time: ``benchmarks/bench_cold_start.py``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rdbench.codecs.base import CodecSpecError, get_codec, known


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rdbench.codecs", description=__doc__.splitlines()[0])
    parser.add_argument("codec", help=f"codec spec, NAME[:key=value,…]; known: {', '.join(known())}")
    parser.add_argument("image", help="any image file Pillow can read")
    parser.add_argument("-q", "--quality", type=float, action="append",
                        help="quality (repeatable); default: the codec's ladder")
    parser.add_argument("--device", default="auto",
                        help="auto | cpu | cuda | cuda:N (learned codecs; classical codecs run on the CPU)")
    parser.add_argument("-o", "--output", type=Path, help="folder for bitstreams and decoded PNGs")
    args = parser.parse_args(argv)
    # Imported after parsing, so that --help and usage errors skip them (the run package brings
    # pyarrow and fsspec).
    from rdbench.device import DeviceError, resolve_device
    from rdbench.images import ImageLoadError, load_image, save_png
    from rdbench.run.ladder import Failure, evaluate_ladder

    try:  # every argument checked before any work
        codec = get_codec(args.codec)
        qualities = args.quality or codec.default_qualities()
        for quality in qualities:
            codec.check_quality(quality)
        # Classical codecs never touch torch: resolving "auto" for them would import it (~1 s).
        device = resolve_device(args.device, uses_torch=codec.family != "classical")
        image = load_image(args.image)
    except (CodecSpecError, DeviceError, ImageLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    codec = codec.to(device)
    print(f"{codec.spec}  [{codec.version}]  {Path(args.image).name} {image.shape[1]}×{image.shape[0]}")
    print(f"{'quality':>8} {'bytes':>9} {'bpp':>7} {'PSNR dB':>8} {'MS-SSIM':>8} {'enc s':>7} {'dec s':>7}")
    status = 0
    for m in evaluate_ladder(codec, image, qualities, keep_outputs=args.output is not None):
        if isinstance(m, Failure):
            print(f"{m.quality:>8g}  {m.stage} failed: {m.error_type}: {m.message}", file=sys.stderr)
            status = 1
            continue
        ms = "n/a" if m.values["ms_ssim_rgb"] is None else f"{m.values['ms_ssim_rgb']:.5f}"
        print(f"{m.quality:>8g} {m.num_bytes:>9d} {m.bpp:>7.4f} {m.values['psnr_rgb']:>8.3f} {ms:>8} "
              f"{m.encode_s:>7.4f} {m.decode_s:>7.4f}")
        if args.output is not None:
            args.output.mkdir(parents=True, exist_ok=True)
            stem = f"{Path(args.image).stem}.{codec.name}.q{m.quality:g}"
            (args.output / f"{stem}.bin").write_bytes(m.data)
            save_png(m.decoded, args.output / f"{stem}.png")
    return status


if __name__ == "__main__":
    sys.exit(main())
