"""JPEG XL through imagecodecs' libjxl binding."""
from __future__ import annotations

import imagecodecs
import numpy as np

from rdbench.codecs.base import Codec, CodecError, Param

__all__ = ["JPEGXL"]


class JPEGXL(Codec):
    """Lossy JPEG XL (VarDCT); quality 0–100, libjxl's quality scale (mapped to a distance).

    The bitstream is a bare JPEG XL codestream (no ISOBMFF container): the smallest valid
    .jxl file.
    """

    name = "jpegxl"
    family = "classical"
    in_default_set = True
    PARAMS = {"effort": Param(7, "encoder effort 1 (fast) – 9 (slow)", choices=tuple(range(1, 10)), convert=int)}
    DEFAULT_QUALITIES = (10, 25, 40, 55, 70, 80, 90)
    QUALITY_RANGE = (0, 100)

    @property
    def version(self) -> str:
        return f"{imagecodecs.jpegxl_version()} (imagecodecs {imagecodecs.__version__})"

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        try:
            return bytes(imagecodecs.jpegxl_encode(np.ascontiguousarray(image), level=int(round(quality)),
                                                   effort=self.params["effort"], usecontainer=False,
                                                   numthreads=1))
        except (imagecodecs.JpegxlError, ValueError) as exc:
            raise CodecError(f"jpegxl encoder failed at quality {quality}: {exc}") from exc

    def decode(self, data: bytes) -> np.ndarray:
        try:
            arr = imagecodecs.jpegxl_decode(data, numthreads=1)
        except (imagecodecs.JpegxlError, ValueError) as exc:
            raise CodecError(f"jpegxl decoder failed: {exc}") from exc
        if arr.ndim != 3 or arr.shape[2] < 3 or arr.dtype != np.uint8:
            raise CodecError(f"jpegxl decoder returned unexpected {arr.dtype} {arr.shape}")
        return np.ascontiguousarray(arr[:, :, :3])
