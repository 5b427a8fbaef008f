"""The coding path of learned transform codecs: batched transforms on the device, entropy coding on the CPU.

:class:`TransformCodec` codes an image as the latents of an analysis transform. Equal-shape
images share one analysis pass on the codec's device; each image's latents are entropy coded on
the CPU, because a stream only decodes if the decoder derives bit-identical entropy parameters,
and GPU and CPU arithmetic differ in the last bits (CompressAI issues #279, #309, #320); the
strings go into an :mod:`rdbench.codecs.bitstream` container with the image and padded sizes,
the latent shape and the weights tag. Decoding checks codec, quality and tag, entropy-decodes on
the CPU, runs one synthesis pass per quality and latent shape, crops the padding off and rounds
to uint8. So a stream made on a GPU decodes on a CPU and vice versa.

Subclasses build the network (:meth:`~TransformCodec._build`), place its transforms
(:meth:`~TransformCodec._place`) and provide the hooks :meth:`~TransformCodec._analysis`,
:meth:`~TransformCodec._entropy_encode`, :meth:`~TransformCodec._entropy_decode`,
:meth:`~TransformCodec._synthesis` and :meth:`~TransformCodec._crop_offsets`. Users: the
CompressAI models (:mod:`rdbench.codecs.compressai_model`) and ``hific``.
"""
from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rdbench.codecs import bitstream
from rdbench.codecs.base import CodecError, Encoded
from rdbench.codecs.learned import LearnedCodec, indices_by_shape

__all__ = ["Loaded", "TransformCodec"]


@dataclass
class Loaded:
    """One weights key's network: the whole model on the CPU, and its transforms on the codec's device."""

    net: Any  # eval mode, entropy tables built; entropy coding runs on it, on the CPU
    label: str  # which weights, for ``version_for``
    tag: bytes  # 4-byte weights fingerprint, written into every stream and checked on decode
    analysis: Any = None  # set by ``_place``
    synthesis: Any = None  # set by ``_place``
    extra: dict[str, Any] = field(default_factory=dict)  # what a codec's hooks need besides


class TransformCodec(LearnedCodec[Loaded]):
    """A learned codec coding analysis-transform latents in the rdbench container, in batches.

    Stage timing (for benchmarks): set ``codec.stage_times = collections.defaultdict(float)`` and
    every ``compress``/``decode`` adds seconds to ``analysis`` and ``synthesis`` (and to the
    stages the entropy hooks time, e.g. ``hyperprior``, ``entropy_coding``); CUDA is
    synchronised around each stage while timing.
    """

    batched = True

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.stage_times: dict[str, float] | None = None

    # -- identity ------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return f"{self._prefix()} {self._weights_description()}"

    def version_for(self, quality: float) -> str:
        """The version naming the exact weights of one quality (loads that quality's model)."""
        return f"{self._prefix()} {self._load(self._quality(quality)).label}"

    def _prefix(self) -> str:
        """The implementation part of ``version``."""
        raise NotImplementedError

    def _weights_description(self) -> str:
        """The weights part of ``version`` (without loading any network)."""
        raise NotImplementedError

    # -- the network cache -----------------------------------------------------------------------
    def _weights_key(self, quality: int) -> Hashable:
        """Qualities with equal keys share one network; by default each quality has its own."""
        return quality

    def _load(self, quality: int) -> Loaded:
        """One quality's network, built and placed on first use."""
        return self._cached(self._weights_key(quality), self._build_placed, quality)

    def _load_model(self, quality: int) -> Loaded:
        """What :meth:`prepare` loads: the network of ``quality``, built and placed."""
        return self._load(quality)

    def _build_placed(self, quality: int) -> Loaded:
        loaded = self._build(quality)
        self._place(loaded)
        return loaded

    def _build(self, quality: int) -> Loaded:
        """One quality's network on the CPU, in eval mode, ready to entropy-code."""
        raise NotImplementedError

    # -- stage timing ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        times = self.stage_times
        if times is None:
            yield
            return
        from rdbench.device import synchronize

        synchronize(self.device)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            times[name] = times.get(name, 0.0) + time.perf_counter() - t0

    # -- coding ----------------------------------------------------------------------------------
    def compress(self, image: np.ndarray, quality: float) -> Encoded:
        return self.compress_batch([image], quality)[0]

    def decode(self, data: bytes) -> np.ndarray:
        return self.decode_batch([data])[0]

    def compress_batch(self, images: Sequence[np.ndarray], quality: float) -> list[Encoded]:
        """Encode images at one quality; equal-shape images share one analysis pass on the device."""
        import torch

        q = self._quality(quality)
        loaded = self._load(q)  # outside inference mode: networks are never built in it
        out: list[Encoded | None] = [None] * len(images)
        with torch.inference_mode():
            for (h, w, _), idx in indices_by_shape(self.name, images).items():
                with self._stage("analysis"):
                    x = torch.from_numpy(np.stack([images[i] for i in idx])).to(self.device)
                    y, ph, pw = self._analysis(loaded, x.permute(0, 3, 1, 2), h, w)
                    y = y.float().cpu()
                for j, i in enumerate(idx):
                    strings, shape, bits = self._entropy_encode(loaded, y[j : j + 1])
                    header = bitstream.Header(self.name, float(q), h, w, ph, pw, tuple(shape), loaded.tag)
                    out[i] = Encoded(bitstream.pack(header, strings), bits)
        return out  # type: ignore[return-value]

    def decode_batch(self, streams: Sequence[bytes]) -> list[np.ndarray]:
        """Decode streams; those with equal quality and latent shape share one synthesis pass."""
        import torch

        parsed = []
        for data in streams:  # headers and weights first: networks are never built in inference mode
            header, strings, q = self.unpack_stream(data)
            loaded = self._load(q)
            if header.tag != loaded.tag:
                raise CodecError(
                    f"{self.name}: the stream was encoded with other weights than {self.version_for(q)!r}"
                )
            parsed.append((header, strings, q, loaded))
        latents = []
        groups: dict[tuple, list[int]] = defaultdict(list)
        with torch.inference_mode():
            for i, (header, strings, q, loaded) in enumerate(parsed):
                try:
                    y_hat = self._entropy_decode(loaded, strings, header)
                except CodecError:
                    raise
                except Exception as exc:  # AssertionError/ValueError/RuntimeError from a corrupt stream
                    raise CodecError(f"{self.name}: entropy decoding failed: {type(exc).__name__}: {exc}") from exc
                latents.append((header, y_hat))
                groups[(q, tuple(y_hat.shape))].append(i)
            out: list[np.ndarray | None] = [None] * len(streams)
            for (q, _), idx in groups.items():
                loaded = self._load(q)
                with self._stage("synthesis"):
                    y_hat = torch.cat([latents[i][1] for i in idx]).to(self.device)
                    x_hat = self._synthesis(loaded, y_hat)
                    for j, i in enumerate(idx):
                        out[i] = self._to_uint8(x_hat[j], latents[i][0])
        return out  # type: ignore[return-value]

    # -- hooks -----------------------------------------------------------------------------------
    def _analysis(self, loaded: Loaded, x, h: int, w: int):
        """uint8 (B, 3, H, W) on the device → (latents (B, C, h', w'), padded H, padded W)."""
        raise NotImplementedError

    def _entropy_encode(self, loaded: Loaded, y) -> tuple[list[bytes], tuple[int, ...], float]:
        """One latent (1, C, h', w') on the CPU → (strings, header shape, −Σ log2 p)."""
        raise NotImplementedError

    def _entropy_decode(self, loaded: Loaded, strings: list[bytes], header: bitstream.Header):
        """The strings of one stream → the dequantized latent (1, C, h', w') on the CPU."""
        raise NotImplementedError

    def _synthesis(self, loaded: Loaded, y_hat):
        """Latents on the device → images, nominally in [0, 1], (B, 3, padded H, padded W)."""
        raise NotImplementedError

    def _crop_offsets(self, header: bitstream.Header) -> tuple[int, int]:
        """(top, left) of the image inside the padded reconstruction."""
        return 0, 0

    def _to_uint8(self, x_hat, header: bitstream.Header) -> np.ndarray:
        """Crop one reconstruction to the image, clamp to [0, 1] and round to uint8 (H, W, 3)."""
        import torch

        top, left = self._crop_offsets(header)
        h, w = header.height, header.width
        x = x_hat[:, top : top + h, left : left + w].clamp(0, 1).mul(255).round().to(torch.uint8)
        return np.ascontiguousarray(x.permute(1, 2, 0).cpu().numpy())
