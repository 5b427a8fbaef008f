"""``balle2018``: the scale-hyperprior baseline (Ballé et al. 2018, N = M = 192) of the
deep-image-compression seed, and :class:`SeedCodec`, the coding shared with ``xiao2019`` and ``hific``.

CompressAI's ``ScaleHyperprior`` without the bias at the end of ``h_a`` and the ReLU at the end of
``h_s``, as the seed trained it. ``quality`` 1–8 indexes :data:`LAMBDAS` and only selects the
checkpoint (the seed published none: ``checkpoint=`` or ``weights=random``). Entropy coding runs
on the CPU so streams decode on any device. Details: docs/codecs.md, section balle2018.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import time
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rdbench.codecs import bitstream
from rdbench.codecs.base import CodecError, Encoded, Param
from rdbench.codecs.seeds.learned import (
    indices_by_shape,
    LOAD_ERRORS,
    LearnedCodec,
    checkpoint_errors,
    checkpoint_identity,
    hash_suffix,
    weights_tag,
)
from rdbench.codecs.weights import CheckpointError, load_state_dict

__all__ = [
    "LAMBDAS",
    "Balle2018",
    "Loaded",
    "SeedCodec",
    "SeedHyperpriorCodec",
    "network",
]

#: quality → the λ a checkpoint for that quality is meant to be trained with (λ·255²·MSE + bpp).
LAMBDAS = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483, 7: 0.0932, 8: 0.1800}
SEED_FILTERS = 192  # --num_filters of the seed's training scripts (N = M)
PAD_MULTIPLE = 64  # g_a (×16) then h_a (×4)


def compressai_version() -> str:
    return _compressai().__version__


@functools.lru_cache(maxsize=None)
def _compressai():
    """Import CompressAI lazily (it is slow to import and warns about deprecations)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import compressai
        import compressai.entropy_models
        import compressai.layers
        import compressai.models
        import compressai.models.utils
    return compressai


# -- the networks ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _arch():
    """The network classes, defined on first use so that importing this module stays cheap."""
    from torch import nn

    compressai = _compressai()
    from compressai.models.utils import conv, deconv

    class Balle2018Net(compressai.models.ScaleHyperprior):
        """Scale hyperprior as the seed's tensorflow-compression 1.2 example builds it."""

        def __init__(self, N: int = SEED_FILTERS, M: int = SEED_FILTERS, **kwargs):
            super().__init__(N, M, **kwargs)
            self.h_a = nn.Sequential(
                conv(M, N, stride=1, kernel_size=3),
                nn.ReLU(inplace=True),
                conv(N, N),
                nn.ReLU(inplace=True),
                nn.Conv2d(N, N, kernel_size=5, stride=2, padding=2, bias=False),
            )
            self.h_s = nn.Sequential(
                deconv(N, N),
                nn.ReLU(inplace=True),
                deconv(N, N),
                nn.ReLU(inplace=True),
                conv(N, M, stride=1, kernel_size=3),
            )

        @classmethod
        def from_state_dict(cls, state_dict):
            N, M = infer_widths(state_dict)
            net = cls(N, M)
            net.load_state_dict(state_dict)
            return net

    return Balle2018Net


def infer_widths(state_dict) -> tuple[int, int]:
    """(N, M) of a scale-hyperprior state dict: ``g_a``'s first and ``h_a``'s first layer."""
    try:
        N = int(state_dict["g_a.0.weight"].size(0))
        M = int(state_dict["h_a.0.weight"].size(1))
    except KeyError as exc:
        raise KeyError(f"missing key {exc.args[0]!r}") from exc
    return N, M


def network(N: int = SEED_FILTERS, M: int = SEED_FILTERS):
    """A fresh (untrained) ``balle2018`` network: a CompressAI ``CompressionModel``."""
    return _arch()(N, M)


# -- the shared codec machinery ------------------------------------------------------------------


@dataclass
class Loaded:
    """One quality's network: the CPU model (entropy path) and the transforms on the device."""

    net: Any  # the whole network, on the CPU, eval mode, entropy tables built
    analysis: Any  # analysis transform on the codec's device
    synthesis: Any  # synthesis transform on the codec's device
    label: str  # which weights, for ``version``
    tag: bytes  # 4-byte fingerprint of the weights, written into every stream
    extra: dict = field(default_factory=dict)


class SeedCodec(LearnedCodec[Loaded]):
    """Base of the seed codecs that code one latent ``y`` with a hyperprior ``z``.

    Subclasses provide the network (:meth:`_build`), the analysis (:meth:`_analysis`: uint8
    batch → padded latents), the entropy path (:meth:`_entropy_encode` / :meth:`_entropy_decode`,
    always on the CPU) and the synthesis (:meth:`_synthesis`: latents → [0, 1] images); this class
    does the container, batching, cropping and stage timing, and (with :class:`LearnedCodec`)
    the weights bookkeeping.

    Stage timing (for benchmarks): set ``codec.stage_times = collections.defaultdict(float)`` and
    every ``compress``/``decode`` adds seconds to ``analysis``, ``hyperprior``, ``entropy_coding``
    and ``synthesis`` (CUDA is synchronised around each stage while timing).
    """

    PARAMS: ClassVar[dict[str, Param]] = {
        "weights": Param(
            "checkpoint",
            "checkpoint: weights from checkpoint=; random: an untrained network",
            choices=("checkpoint", "random"),
        ),
        "checkpoint": Param("", "weights file; {quality} is replaced by the quality"),
        "seed": Param(0, "seed of weights=random", convert=int),
    }
    batched = True
    #: what ``weights`` means when no checkpoint is given and weights are not random
    NO_WEIGHTS_HINT: ClassVar[str] = ""

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
        return f"{self.name} (rdbench seed port; compressai {compressai_version()} rANS)"

    def _weights_description(self) -> str:
        if self.random_weights:
            return f"UNTRAINED (random init, seed {self.params['seed']})"
        template = self.params["checkpoint"]
        if not template:
            return "no weights (give checkpoint= or weights=random)"
        paths = sorted({self._checkpoint_path(q) for q in self.DEFAULT_QUALITIES})
        if len(paths) == 1:
            return f"checkpoint {paths[0]}{hash_suffix(paths[0])}"
        hashes = [f"q{q}{hash_suffix(self._checkpoint_path(q))}" for q in self.DEFAULT_QUALITIES]
        return f"checkpoint {template} ({', '.join(hashes)})"

    # -- weights -------------------------------------------------------------------------------
    def weights_available(self, qualities: Sequence[float] | None = None) -> bool:
        """Whether every quality's weights are here (or the network is random) — no download."""
        if self.random_weights:
            return True
        qs = [self._quality(q) for q in (qualities if qualities is not None else self.DEFAULT_QUALITIES)]
        return all(p is not None and Path(p).is_file() for p in (self._weights_file(q) for q in qs))

    def _weights_file(self, quality: int) -> str | None:
        """The file that holds one quality's weights, or None when there is none to look for."""
        return self._checkpoint_path(quality) if self.params["checkpoint"] else None

    def _identity(self, quality: int) -> tuple:
        """A key naming one quality's weights: qualities with the same key share one network."""
        if self.random_weights:
            return ("random", self._random_key(quality), self.params["seed"])
        path = self._weights_file(quality)
        if path is None:
            raise CheckpointError(
                f"{self.name} has no published PyTorch weights here{self.NO_WEIGHTS_HINT}: give "
                f"checkpoint=PATH (e.g. {self.name}:checkpoint=codecs/{self.name}/q{{quality}}.pth) "
                f"or weights=random"
            )
        return ("file", path)

    def _random_key(self, quality: int) -> Any:
        """What distinguishes random networks of two qualities (nothing, by default)."""
        return None

    def _load(self, quality: int) -> Loaded:
        """One quality's network, built and placed on first use, shared by qualities of one identity."""
        return self._cached(self._identity(quality), self._build_placed, quality)

    def _build_placed(self, quality: int) -> Loaded:
        loaded = self._build(quality)
        self._place(loaded)
        return loaded

    def _build(self, quality: int) -> Loaded:
        raise NotImplementedError

    def _place(self, loaded: Loaded) -> None:
        """Put the analysis and synthesis transforms on the codec's device; entropy coding stays on the CPU."""
        if self.device == "cpu":
            loaded.analysis, loaded.synthesis = loaded.extra["cpu_transforms"]
        else:
            a, s = loaded.extra["cpu_transforms"]
            loaded.analysis, loaded.synthesis = copy.deepcopy(a).to(self.device), copy.deepcopy(s).to(self.device)

    # -- stage timing ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _stage(self, name: str):
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
        loaded = self._load(q)
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
        """Decode streams; those with equal quality and latent size share one synthesis pass."""
        import torch

        parsed = []
        for data in streams:  # headers and weights first: networks are never built in inference mode
            header, strings = bitstream.unpack(data)
            if header.codec != self.name:
                raise CodecError(f"{self.name}: the stream was made by codec {header.codec!r}")
            try:
                q = self._quality(header.quality)
            except ValueError as exc:
                raise CodecError(f"stream header: {exc}") from exc
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
        """Latents on the device → images in [0, 1], (B, 3, padded H, padded W)."""
        raise NotImplementedError

    def _crop_offsets(self, header: bitstream.Header) -> tuple[int, int]:
        """(top, left) of the image inside the padded reconstruction."""
        return 0, 0

    def _to_uint8(self, x_hat, header: bitstream.Header) -> np.ndarray:
        import torch

        top, left = self._crop_offsets(header)
        h, w = header.height, header.width
        x = x_hat[:, top : top + h, left : left + w].clamp(0, 1).mul(255).round().to(torch.uint8)
        return np.ascontiguousarray(x.permute(1, 2, 0).cpu().numpy())


# -- scale-hyperprior codecs (balle2018, xiao2019) --------------------------------------------------


class SeedHyperpriorCodec(SeedCodec):
    """A CompressAI ``ScaleHyperprior``-shaped network (``g_a``, ``h_a``, ``h_s``, ``g_s``)."""

    DEFAULT_QUALITIES = tuple(LAMBDAS)

    @classmethod
    def architecture(cls):
        """The network class (a CompressAI ``CompressionModel``)."""
        raise NotImplementedError

    def _build(self, quality: int) -> Loaded:
        import torch

        arch = self.architecture()
        if self.random_weights:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.params["seed"])
                net = arch()
            label = f"UNTRAINED (random init, seed {self.params['seed']})"
            identity = f"random:{self.params['seed']}"
        else:
            path = self._weights_file(quality)
            assert path is not None  # _identity refused the weightless case already
            state_dict = load_state_dict(path)
            with checkpoint_errors(path, f"{self.name} ({arch.__name__})", LOAD_ERRORS):
                net = arch.from_state_dict(state_dict)
            label, identity = checkpoint_identity(path)
        net.eval().requires_grad_(False)
        net.update(force=True)
        tag = weights_tag(self.name, identity)
        return Loaded(net, None, None, label, tag, {"cpu_transforms": (net.g_a, net.g_s)})

    def _analysis(self, loaded: Loaded, x, h: int, w: int):
        import torch.nn.functional as F
        from compressai.ops import compute_padding

        pad, _ = compute_padding(h, w, min_div=PAD_MULTIPLE)
        x = F.pad(x.float().div(255), pad, mode="constant", value=0)
        return loaded.analysis(x), x.size(2), x.size(3)

    def _entropy_encode(self, loaded: Loaded, y):
        import torch

        net = loaded.net
        with self._stage("hyperprior"):
            z = net.h_a(torch.abs(y))
            eb = net.entropy_bottleneck
            z_hat, z_lik = eb(z, training=False)
            scales = net.h_s(z_hat)
            indexes = net.gaussian_conditional.build_indexes(scales)
            _, y_lik = net.gaussian_conditional(y, scales, training=False)
            bits = float(sum(-torch.log2(lk.double()).sum() for lk in (z_lik, y_lik)))
        with self._stage("entropy_coding"):
            z_strings = eb.compress(z)
            y_strings = net.gaussian_conditional.compress(y, indexes)
        return [z_strings[0], y_strings[0]], tuple(int(v) for v in z.shape[-2:]), bits

    def _entropy_decode(self, loaded: Loaded, strings: list[bytes], header: bitstream.Header):
        net = loaded.net
        if len(strings) != 2 or len(header.shape) != 2:
            raise CodecError(f"{self.name}: expected 2 strings and a 2-d hyper-latent shape in the stream")
        with self._stage("entropy_coding"):
            z_hat = net.entropy_bottleneck.decompress([strings[0]], list(header.shape))
        with self._stage("hyperprior"):
            indexes = net.gaussian_conditional.build_indexes(net.h_s(z_hat))
        with self._stage("entropy_coding"):
            return net.gaussian_conditional.decompress([strings[1]], indexes, z_hat.dtype)

    def _synthesis(self, loaded: Loaded, y_hat):
        return loaded.synthesis(y_hat)

    def _crop_offsets(self, header: bitstream.Header) -> tuple[int, int]:
        from compressai.ops import compute_padding

        pad, _ = compute_padding(header.height, header.width, out_h=header.padded_height, out_w=header.padded_width)
        return pad[2], pad[0]


class Balle2018(SeedHyperpriorCodec):
    """Ballé et al. 2018 scale hyperprior, N=M=192: the deep-image-compression seed's baseline."""

    name = "balle2018"

    @classmethod
    def architecture(cls):
        return _arch()
