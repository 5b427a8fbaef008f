"""VTM, the VVC (H.266) reference software, all-intra, as CompressAI's bench runs it.

The image is converted to full-range BT.709 YCbCr 4:4:4, 8 bits, by CompressAI's conversion
(float32, truncated: :func:`~rdbench.codecs.external.rgb_to_ycbcr`), written as one raw frame and
coded by::

    EncoderApp -i in.yuv -c encoder_intra_vtm.cfg -q QP -o "" -b out.bin -wdt W -hgt H -fr 1 -f 1
               --InputChromaFormat=444 --InputBitDepth=8 --ConformanceWindowMode=1

(CompressAI's flags; ``-o ""`` writes no reconstruction where CompressAI writes it to /dev/null,
the bitstream is the same). ``encoder_intra_vtm.cfg`` sets InternalBitDepth 10, so VTM codes at
10 bits internally, as in CompressAI's runs. ``--ConformanceWindowMode=1`` pads the picture to
the minimum CU size and signals a conformance window, so odd sizes decode to the input size.
Decoding: ``DecoderApp -b in.bin -o out.y4m -d 8`` (8-bit output, cropped to the conformance
window; the size is read from the Y4M header), then YCbCr → RGB, truncated as CompressAI does.
``rounding=nearest`` rounds both conversions instead (not CompressAI's, and slightly better).
The bitstream is EncoderApp's whole output file.
"""
from __future__ import annotations

import numpy as np

from rdbench.codecs.base import Param
from rdbench.codecs.external import (
    EXTERNAL_PARAMS,
    ROUNDING,
    ExternalCodec,
    QPCodec,
    Tool,
    planes_to_rgb,
    qp_param,
    read_y4m,
    rgb_to_ycbcr,
    write_planar,
)

__all__ = ["VTM", "VTM_DECODER", "decode_vvc"]

#: VTM's decoder, which also decodes VVenC's bitstreams.
VTM_DECODER = Tool("vtm", ("DecoderApp", "DecoderAppStatic"))
ROUNDING_PARAM = Param("floor", "8-bit rounding of the RGB ↔ YCbCr conversions (floor: CompressAI's)",
                       choices=ROUNDING)


def decode_vvc(codec: ExternalCodec, data: bytes) -> tuple[str, np.ndarray, np.ndarray]:
    """Decode a VVC bitstream with VTM's DecoderApp (role ``decoder``): :func:`read_y4m`'s planes."""
    with codec.scratch() as tmp:
        src, out = tmp / "in.bin", tmp / "out.y4m"
        src.write_bytes(data)
        codec.run("decoder", ["-b", src, "-o", out, "-d", 8], tmp, outputs=[out])
        return read_y4m(out, f"{codec.name}: DecoderApp")


class VTM(QPCodec):
    """VTM 23.13 all-intra, YCbCr 4:4:4; quality = 51 − QP (QP 63 … 0); ladder = CompressAI's QPs 47 … 12."""

    name = "vtm"
    RECIPE = "vtm"
    PRODUCT = "VTM"
    TOOLS = {"encoder": Tool("vtm", ("EncoderApp", "EncoderAppStatic")), "decoder": VTM_DECODER}
    FILES = {"cfg": ("encoder_intra_vtm.cfg",)}
    VERSION_PATTERN = r"Version\s+(\S+)"
    QP_RANGE = (0, 63)
    PARAMS = {
        **EXTERNAL_PARAMS,
        "qp": qp_param(QP_RANGE, 51),
        "cfg": Param("", "encoder configuration file (default: encoder_intra_vtm.cfg beside EncoderApp)"),
        "rounding": ROUNDING_PARAM,
    }
    DEFAULT_QUALITIES = (4, 9, 14, 19, 24, 29, 34, 39)  # QP 47 … 12
    QUALITY_RANGE = (-12, 51)

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        qp = self.qp(quality)
        cfg = self.tool_path("cfg")
        height, width = image.shape[:2]
        with self.scratch() as tmp:
            src, out = tmp / "in.yuv", tmp / "out.bin"
            write_planar(rgb_to_ycbcr(image, self.params["rounding"]), src)
            self.run("encoder", ["-i", src, "-c", cfg, "-q", qp, "-o", "", "-b", out, "-wdt", width, "-hgt", height,
                                 "-fr", 1, "-f", 1, "--InputChromaFormat=444", "--InputBitDepth=8",
                                 "--ConformanceWindowMode=1"], tmp, outputs=[out])
            return out.read_bytes()

    def decode_ycbcr(self, data: bytes) -> tuple[str, np.ndarray, np.ndarray]:
        """The decoded YCbCr planes, before the conversion to RGB (``"444"``, Y, CbCr)."""
        return decode_vvc(self, data)

    def decode(self, data: bytes) -> np.ndarray:
        return planes_to_rgb(*self.decode_ycbcr(data), self.params["rounding"])
