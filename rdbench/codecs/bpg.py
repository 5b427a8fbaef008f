"""BPG (Fabrice Bellard's HEVC-intra image format) through ``bpgenc``/``bpgdec``, as CompressAI's bench runs it.

Encoding: ``bpgenc -o OUT -q QP -f 444 -e x265 -c ycbcr -b 8 IN.png`` (4:4:4, the x265 HEVC
encoder, YCbCr, 8 bits: the settings of CompressAI's published ``bpg_444_x265_ycbcr.json``);
decoding: ``bpgdec -o OUT.png IN``. bpgenc does its own RGB → YCbCr conversion (BT.601) from the
PNG. The bitstream is the whole ``.bpg`` file, its header (size, format, colour space) included:
every byte counts towards bpp.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from rdbench.codecs.base import CodecError, Param
from rdbench.codecs.external import EXTERNAL_PARAMS, QPCodec, Tool, qp_param
from rdbench.images import to_rgb_array

__all__ = ["BPG"]


class BPG(QPCodec):
    """BPG 0.9.8, x265, YCbCr; quality = 51 − QP (0–51); ladder = CompressAI's QPs 47, 42, …, 12."""

    name = "bpg"
    RECIPE = "bpg"
    PRODUCT = "BPG"
    TOOLS = {"encoder": Tool("bpg", ("bpgenc",)), "decoder": Tool("bpg", ("bpgdec",))}
    VERSION_ARGS = ("-h",)
    VERSION_PATTERN = r"version\s+(\S+)"
    QP_RANGE = (0, 51)
    PARAMS = {
        **EXTERNAL_PARAMS,
        "qp": qp_param(QP_RANGE, 51),
        "subsampling": Param("444", "chroma format (-f)", choices=("444", "420")),
    }
    DEFAULT_QUALITIES = (4, 9, 14, 19, 24, 29, 34, 39)  # QP 47 … 12
    QUALITY_RANGE = (0, 51)

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        qp = self.qp(quality)
        with self.scratch() as tmp:
            src, out = tmp / "in.png", tmp / "out.bpg"
            Image.fromarray(image, "RGB").save(src, format="PNG", compress_level=0)  # lossless, fast to write
            self.run("encoder", ["-o", out, "-q", qp, "-f", self.params["subsampling"], "-e", "x265",
                                 "-c", "ycbcr", "-b", "8", src], tmp, outputs=[out])
            return out.read_bytes()

    def decode(self, data: bytes) -> np.ndarray:
        with self.scratch() as tmp:
            src, out = tmp / "in.bpg", tmp / "out.png"
            src.write_bytes(data)
            self.run("decoder", ["-o", out, src], tmp, outputs=[out])
            return _read_png(out)


def _read_png(path: Path) -> np.ndarray:
    try:
        with Image.open(path, formats=["PNG"]) as im:
            im.load()
            return to_rgb_array(im)
    except (OSError, ValueError, SyntaxError) as exc:
        raise CodecError(f"bpg: bpgdec's output {path.name} is unreadable: {exc}") from exc
