"""VVenC, Fraunhofer's fast VVC (H.266) encoder, all-intra, 4:2:0; decoded by VTM's DecoderApp.

VVenC 1.14 codes 4:0:0 and 4:2:0 only ("Intern chroma format must be either 400, 420"), so this
anchor is 4:2:0, unlike ``vtm`` (4:4:4): the image is converted to full-range BT.709 YCbCr by the
conversion ``vtm`` uses (CompressAI's, truncated by default), chroma averaged over 2×2 blocks,
written as one raw 8-bit 4:2:0 frame and coded by::

    vvencFFapp -i in.yuv -s WxH --InputChromaFormat 420 --InputBitDepth 8 -f 1 -fr 1 -ip 1
               --preset PRESET -q QP --PerceptQPA 0 -t 1 -b out.266

(``-ip 1``: every frame intra, VVenC then sets GOP size 1; ``--PerceptQPA 0``: no perceptual QP
adaptation, as befits a PSNR anchor; one thread, like every other codec here; InternalBitDepth
10, VVenC's default). Decoding: VTM's ``DecoderApp -d 8`` to Y4M, chroma upsampled linearly
(centred siting), YCbCr → RGB. 4:2:0 VVC crops in 2-pixel units, so odd widths or heights cannot
be represented: such images are refused (CodecError) rather than returned a pixel larger.
The bitstream is vvencFFapp's whole output file.
"""
from __future__ import annotations

import numpy as np

from rdbench.codecs.base import CodecError, Param
from rdbench.codecs.external import (
    EXTERNAL_PARAMS,
    QPCodec,
    Tool,
    planes_to_rgb,
    qp_param,
    rgb_to_ycbcr420,
    write_planar,
)
from rdbench.codecs.vtm import ROUNDING_PARAM, VTM_DECODER, decode_vvc

__all__ = ["VVenC"]

PRESETS = ("faster", "fast", "medium", "slow", "slower")


class VVenC(QPCodec):
    """VVenC 1.14 all-intra, YCbCr 4:2:0; quality = 51 − QP (QP 63 … 0); ladder = CompressAI's QPs 47 … 12."""

    name = "vvenc"
    RECIPE = "vvenc"
    PRODUCT = "VVenC"
    TOOLS = {"encoder": Tool("vvenc", ("vvencFFapp",)), "decoder": VTM_DECODER}
    VERSION_ARGS = ("--version",)
    VERSION_PATTERN = r"version\s+(\S+)"
    QP_RANGE = (0, 63)
    PARAMS = {
        **EXTERNAL_PARAMS,
        "qp": qp_param(QP_RANGE, 51),
        "preset": Param("medium", "VVenC preset (speed vs rate)", choices=PRESETS),
        "rounding": ROUNDING_PARAM,
    }
    DEFAULT_QUALITIES = (4, 9, 14, 19, 24, 29, 34, 39)  # QP 47 … 12
    QUALITY_RANGE = (-12, 51)

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        qp = self.qp(quality)
        height, width = image.shape[:2]
        if height % 2 or width % 2:
            raise CodecError(f"vvenc codes 4:2:0, which VVC cannot crop to an odd size; this image is "
                             f"{width}×{height} (use vtm, 4:4:4, for odd sizes)")
        with self.scratch() as tmp:
            src, out = tmp / "in.yuv", tmp / "out.266"
            write_planar(rgb_to_ycbcr420(image, self.params["rounding"]), src)
            self.run("encoder", ["-i", src, "-s", f"{width}x{height}", "--InputChromaFormat", 420,
                                 "--InputBitDepth", 8, "-f", 1, "-fr", 1, "-ip", 1, "--preset", self.params["preset"],
                                 "-q", qp, "--PerceptQPA", 0, "-t", 1, "-b", out], tmp, outputs=[out])
            return out.read_bytes()

    def decode_ycbcr(self, data: bytes) -> tuple[str, np.ndarray, np.ndarray]:
        """The decoded YCbCr planes, before the conversion to RGB (``"420"``, Y, CbCr)."""
        return decode_vvc(self, data)

    def decode(self, data: bytes) -> np.ndarray:
        return planes_to_rgb(*self.decode_ycbcr(data), self.params["rounding"])
