"""Load any image file Pillow can read as a ``uint8 (H, W, 3)`` RGB array.

Every codec and metric in rdbench works on that one representation, so conversion happens
here, once, with explicit rules:

- grayscale (L, 1, I;16, I, F) → replicated to three channels;
- 16-bit and 32-bit samples → 8-bit by rounding ``v * 255 / max`` to nearest (not truncating);
- RGBA / LA / PA → RGB with the alpha channel **dropped** (not composited: codecs are compared
  on the colour samples as stored);
- palette (P) → RGB through the palette; CMYK / YCbCr / LAB / HSV → RGB through Pillow.

Files that cannot be decoded — unreadable, truncated, not an image, or larger than Pillow's
decompression-bomb limit — raise :class:`ImageLoadError`, which names the file and the cause.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["ImageLoadError", "load_image", "decode_image_bytes", "to_rgb_array", "save_png"]


class ImageLoadError(Exception):
    """An input image could not be loaded; ``path`` and ``cause`` say which and why."""

    def __init__(self, path: str | os.PathLike, cause: str):
        self.path = str(path)
        self.cause = cause
        super().__init__(f"cannot load image {self.path}: {cause}")


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read ``path`` and return its pixels as a C-contiguous ``uint8 (H, W, 3)`` RGB array."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ImageLoadError(path, f"unreadable file ({exc.strerror or exc})") from exc
    return decode_image_bytes(data, name=path)


def decode_image_bytes(data: bytes, name: str | os.PathLike = "<bytes>") -> np.ndarray:
    """Decode an encoded image held in memory; ``name`` is used in error messages."""
    if not data:
        raise ImageLoadError(name, "empty file (0 bytes)")
    try:
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; a benchmark harness
        # should refuse both, so the warning is promoted to an error.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                return to_rgb_array(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(name, f"decompression bomb refused ({exc})") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageLoadError(name, "not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated and corrupt data as OSError/SyntaxError/ValueError.
        raise ImageLoadError(name, f"corrupt or truncated image data ({exc})") from exc


def to_rgb_array(im: Image.Image) -> np.ndarray:
    """Convert a loaded Pillow image to ``uint8 (H, W, 3)`` following the module's rules."""
    mode = im.mode
    if mode == "RGB":
        arr = np.asarray(im)
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = _wide_to_uint8(np.asarray(im), mode)
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif mode in ("L", "1"):
        arr = np.asarray(im.convert("L"))
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif mode in ("RGBA", "RGBa", "RGBX"):
        arr = np.asarray(im)[:, :, :3]
    elif mode in ("LA", "La"):
        arr = np.repeat(np.asarray(im)[:, :, :1], 3, axis=2)
    elif mode in ("P", "PA"):
        arr = np.asarray(im.convert("RGBA"))[:, :, :3]
    else:  # CMYK, YCbCr, LAB, HSV, …: Pillow knows the conversion.
        arr = np.asarray(im.convert("RGB"))
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"unsupported pixel layout {arr.dtype} {arr.shape} from mode {mode}")
    return np.ascontiguousarray(arr)


def _wide_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Scale 16/32-bit or float samples to 0–255 with round-to-nearest."""
    if mode == "F":
        scaled = np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0
    else:
        full = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        scaled = np.clip(arr.astype(np.float64), 0.0, full) * (255.0 / full)
    return np.floor(scaled + 0.5).astype(np.uint8)


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a ``uint8 (H, W, 3)`` array as PNG (lossless); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image, "RGB").save(path, format="PNG")
    return path
