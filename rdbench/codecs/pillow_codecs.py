"""Classical codecs that Pillow builds in: JPEG, WebP, JPEG 2000 and AVIF.

Each bitstream is the codec's own file (JFIF, RIFF/WebP, a raw JPEG 2000 codestream, AVIF),
decodable alone by any reader of that format; its every byte counts towards bpp.
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import PIL
from PIL import Image, features

from rdbench.codecs.base import Codec, CodecError, Param
from rdbench.images import to_rgb_array

__all__ = ["JPEG", "WebP", "JPEG2000", "AVIF"]


def _library_version(feature: str, library: str) -> str:
    return f"{library} {features.version(feature) or 'unknown'} (Pillow {PIL.__version__})"


class PillowCodec(Codec):
    """Shared save/open logic; subclasses say which format and which save options."""

    family = "classical"
    in_default_set = True
    FORMAT: str = ""

    def save_options(self, quality: float) -> dict[str, Any]:
        raise NotImplementedError

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        buf = io.BytesIO()
        try:
            Image.fromarray(image, "RGB").save(buf, format=self.FORMAT, **self.save_options(quality))
        except (OSError, ValueError) as exc:
            raise CodecError(f"{self.name} encoder failed at quality {quality}: {exc}") from exc
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        try:
            with Image.open(io.BytesIO(data), formats=[self.FORMAT]) as im:
                im.load()
                return to_rgb_array(im)
        except (OSError, ValueError, SyntaxError) as exc:
            raise CodecError(f"{self.name} decoder failed: {exc}") from exc


class JPEG(PillowCodec):
    """Baseline JPEG through libjpeg-turbo; quality 0–100 (Pillow's scale)."""

    name = "jpeg"
    FORMAT = "JPEG"
    PARAMS = {
        "subsampling": Param("420", "chroma subsampling", choices=("420", "444")),
    }
    DEFAULT_QUALITIES = (5, 10, 20, 35, 50, 75, 90, 95)
    QUALITY_RANGE = (0, 100)

    @property
    def version(self) -> str:
        return _library_version("libjpeg_turbo", "libjpeg-turbo")

    def save_options(self, quality: float) -> dict[str, Any]:
        return {
            "quality": int(round(quality)),
            "subsampling": {"420": 2, "444": 0}[self.params["subsampling"]],
        }


class WebP(PillowCodec):
    """Lossy WebP through libwebp; quality 0–100."""

    name = "webp"
    FORMAT = "WEBP"
    PARAMS = {"method": Param(4, "effort 0 (fast) – 6 (slow)", choices=tuple(range(7)), convert=int)}
    DEFAULT_QUALITIES = (5, 10, 20, 35, 50, 75, 90, 95)
    QUALITY_RANGE = (0, 100)

    @property
    def version(self) -> str:
        return _library_version("webp", "libwebp")

    def save_options(self, quality: float) -> dict[str, Any]:
        return {"quality": int(round(quality)), "method": self.params["method"], "lossless": False}


class JPEG2000(PillowCodec):
    """JPEG 2000 (OpenJPEG, 9/7 irreversible wavelet); quality = target PSNR in dB.

    OpenJPEG's rate control stops adding coding passes once the layer reaches the requested
    PSNR, so ``quality`` is a distortion target rather than a 0–100 scale. The bitstream is a
    raw J2K codestream (no JP2 box wrapper).
    """

    name = "jpeg2000"
    FORMAT = "JPEG2000"
    DEFAULT_QUALITIES = (26, 28, 30, 32, 34, 36, 38, 40)
    QUALITY_RANGE = (10, 100)  # target PSNR in dB

    @property
    def version(self) -> str:
        return _library_version("jpg_2000", "OpenJPEG")

    def save_options(self, quality: float) -> dict[str, Any]:
        return {
            "quality_mode": "dB",
            "quality_layers": [float(quality)],
            "irreversible": True,
            "no_jp2": True,
        }


class AVIF(PillowCodec):
    """AVIF (AV1 intra) through Pillow's libavif; quality 0–100."""

    name = "avif"
    FORMAT = "AVIF"
    PARAMS = {
        "speed": Param(6, "encoder speed 0 (slow) – 10 (fast)", choices=tuple(range(11)), convert=int),
        "subsampling": Param("420", "chroma subsampling", choices=("420", "444")),
    }
    DEFAULT_QUALITIES = (10, 25, 40, 55, 70, 80, 90)
    QUALITY_RANGE = (0, 100)

    @property
    def version(self) -> str:
        return _library_version("avif", "libavif")

    def save_options(self, quality: float) -> dict[str, Any]:
        return {
            "quality": int(round(quality)),
            "speed": self.params["speed"],
            "subsampling": {"420": "4:2:0", "444": "4:4:4"}[self.params["subsampling"]],
        }
