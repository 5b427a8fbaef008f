"""AV1 intra through libaom's ``aomenc``/``aomdec``, as CompressAI's bench runs it.

The image is converted to full-range BT.709 YCbCr 4:4:4, 8 bits, by CompressAI's conversion
(:func:`~rdbench.codecs.external.rgb_to_ycbcr`, truncated), written as one raw frame and coded by::

    aomenc -w W -h H --fps=1/1 --limit=1 --input-bit-depth=8 --cpu-used=0 --threads=1 --passes=2
           --end-usage=q --cq-level=CQ --i444 --skip=0 --tune=psnr --bit-depth=8 -o out.webm in.yuv

(CompressAI's flags: the *good-quality* usage with two passes, not ``--allintra``; its
``--psnr`` only prints statistics and is left out). Decoding: ``aomdec -o out.y4m
--output-bit-depth=8``, then YCbCr → RGB, truncated as CompressAI does. The bitstream is the
whole WebM file (container overhead included, as in CompressAI's bpp); ``container=ivf`` writes
the smaller IVF file instead. ``cpu_used=`` trades speed for rate (0, CompressAI's, is the slowest:
about 30 s per Kodak image).
"""
from __future__ import annotations

import numpy as np

from rdbench.codecs.base import Param
from rdbench.codecs.external import (
    EXTERNAL_PARAMS,
    QPCodec,
    Tool,
    planes_to_rgb,
    qp_param,
    read_y4m,
    rgb_to_ycbcr,
    write_planar,
)
from rdbench.codecs.vtm import ROUNDING_PARAM

__all__ = ["AOM"]


class AOM(QPCodec):
    """AV1 (libaom) intra, YCbCr 4:4:4; quality = 63 − cq-level (0–63); ladder = CompressAI's cq-levels 62, 57, …, 7."""

    name = "aom"
    RECIPE = "aom"
    PRODUCT = "libaom"
    TOOLS = {"encoder": Tool("aom", ("aomenc",)), "decoder": Tool("aom", ("aomdec",))}
    VERSION_PATTERN = r"AV1 Encoder\s+v?(\S+)"
    QP_PARAM = "cq_level"
    QP_MAX = 63
    QP_RANGE = (0, 63)
    PARAMS = {
        **EXTERNAL_PARAMS,
        "cq_level": qp_param(QP_RANGE, 63, "cq_level"),
        "cpu_used": Param(0, "aomenc --cpu-used, 0 (slowest, CompressAI's) – 6", choices=tuple(range(7)), convert=int),
        "container": Param("webm", "output container (webm: CompressAI's)", choices=("webm", "ivf")),
        "rounding": ROUNDING_PARAM,
    }
    DEFAULT_QUALITIES = (1, 6, 11, 16, 21, 26, 31, 36, 41, 46, 51, 56)  # cq-level 62 … 7
    QUALITY_RANGE = (0, 63)

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        cq = self.qp(quality)
        height, width = image.shape[:2]
        container = self.params["container"]
        with self.scratch() as tmp:
            src, out = tmp / "in.yuv", tmp / f"out.{container}"
            write_planar(rgb_to_ycbcr(image, self.params["rounding"]), src)
            self.run("encoder", ["-w", width, "-h", height, "--fps=1/1", "--limit=1", "--input-bit-depth=8",
                                 f"--cpu-used={self.params['cpu_used']}", "--threads=1", "--passes=2",
                                 "--end-usage=q", f"--cq-level={cq}", "--i444", "--skip=0", "--tune=psnr",
                                 "--bit-depth=8", f"--{container}", "-o", out, src], tmp, outputs=[out])
            return out.read_bytes()

    def decode_ycbcr(self, data: bytes) -> tuple[str, np.ndarray, np.ndarray]:
        """The decoded YCbCr planes, before the conversion to RGB (``"444"``, Y, CbCr)."""
        with self.scratch() as tmp:
            src, out = tmp / f"in.{self.params['container']}", tmp / "out.y4m"
            src.write_bytes(data)
            self.run("decoder", [src, "-o", out, "--output-bit-depth=8"], tmp, outputs=[out])
            return read_y4m(out, "aom: aomdec")

    def decode(self, data: bytes) -> np.ndarray:
        return planes_to_rgb(*self.decode_ycbcr(data), self.params["rounding"])
