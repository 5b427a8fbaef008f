"""CompressAI's pretrained image models as rdbench codecs, with real entropy-coded bitstreams.

Codecs: ``bmshj2018-factorized``, ``bmshj2018-hyperprior``, ``mbt2018-mean``, ``mbt2018``,
``cheng2020-anchor``, ``cheng2020-attn``. ``quality`` is the zoo's quality index (1–8;
cheng2020 1–6). CompressAI is a dependency: the networks, the entropy models and the rANS
coder are its own (``model.compress`` / ``model.decompress``); rdbench adds weights handling,
padding, a self-contained container (:mod:`rdbench.codecs.bitstream`) and batching.

Parameters (``NAME:key=value,...``):

- ``metric`` — ``mse`` (default) or ``ms-ssim``: which published weights to use.
- ``weights`` — ``pretrained`` (default; CompressAI's published files, cached under
  ``<weights root>/compressai/``, hash-checked, downloaded with pooch when online) or
  ``random`` (an untrained network, seeded by ``seed``, labelled UNTRAINED in ``version``).
- ``checkpoint`` — your own weights, ``{quality}`` replaced by the quality: a plain state dict
  or a CompressAI training checkpoint (``{"state_dict": ..., "epoch": ...}``), read with
  ``torch.load(weights_only=True)``; the architecture's size (N, M) is read off the tensors.
- ``weights_root`` — the weights root (default ``$RDBENCH_WEIGHTS_ROOT`` or ``codecs``).
- ``seed`` — the seed of ``weights=random`` (default 0).

How an image is coded (matching ``python -m compressai.utils.eval_model``): pixels / 255,
zero-padded symmetrically (``compressai.ops.compute_padding``) to a multiple of 64, the
model's ``compress``; the decoder runs ``decompress``, crops, clamps to [0, 1], × 255, rounds.

Device independence: a stream is only decodable if the decoder derives exactly the same CDF
indexes (and means) from the hyper-latent as the encoder did, and GPU and CPU arithmetic differ
in the last bits (CompressAI issues #279, #309, #320). So only the analysis and synthesis
transforms (``g_a``, ``g_s``: the bulk of the work) run on :meth:`to`'s device; everything
that feeds the entropy coder — hyper-analysis/synthesis, context model, entropy parameters,
entropy bottleneck, Gaussian conditional — always runs on the CPU, through CompressAI's own
``compress``/``decompress`` on a view of the model whose ``g_a``/``g_s`` are pass-throughs.
A stream made on a GPU decodes identically on a CPU machine and vice versa (the
reconstruction differs only by ``g_s``'s float rounding on the two devices).

The rate estimate of :meth:`compress` is −Σ log2 p of the model's own eval-mode forward pass
(rounded latents, as coded) on the same padded input.
"""
from __future__ import annotations

import copy
import threading
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rdbench.codecs import bitstream
from rdbench.codecs.base import Codec, CodecError, Encoded, Param, get_codec
from rdbench.codecs.seeds.learned import (
    indices_by_shape,
    LOAD_ERRORS,
    LearnedCodec,
    checkpoint_errors,
    checkpoint_identity,
    hash_suffix,
    state_fingerprint,
)
from rdbench.codecs.weights import RemoteFile, load_state_dict, weights_root

__all__ = [
    "ZOO",
    "CompressAIZoo",
    "BMSHJ2018Factorized",
    "BMSHJ2018Hyperprior",
    "MBT2018Mean",
    "MBT2018",
    "Cheng2020Anchor",
    "Cheng2020Attn",
    "weights_available",
]

#: Codec name → quality indices of CompressAI's zoo (the names are compressai.zoo's).
ZOO: dict[str, tuple[int, ...]] = {
    "bmshj2018-factorized": tuple(range(1, 9)),
    "bmshj2018-hyperprior": tuple(range(1, 9)),
    "mbt2018-mean": tuple(range(1, 9)),
    "mbt2018": tuple(range(1, 9)),
    "cheng2020-anchor": tuple(range(1, 7)),
    "cheng2020-attn": tuple(range(1, 7)),
}
WEIGHTS_SUBDIR = "compressai"
MIN_DIVISOR = 64  # what eval_model pads to: six stride-2 stages


def _compressai():
    """Import CompressAI lazily (it pulls in torch and emits deprecation noise on import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import compressai
        import compressai.layers
        import compressai.zoo
        import compressai.zoo.image
    return compressai


def _modules():
    import torch
    from torch import nn

    class PassThrough(nn.Module):
        """Stands in for ``g_a`` on the CPU view: the latents were computed on the device."""

        def forward(self, y):
            return y

    class Capture(nn.Module):
        """Stands in for ``g_s`` on the CPU view: hands the decoded latents back.

        CompressAI's ``decompress`` returns ``g_s(y_hat).clamp_(0, 1)``; this returns an empty
        tensor carrying ``y_hat`` as an attribute (``clamp_`` returns the same object), so the
        latents come back untouched and no state is shared between threads.
        """

        def forward(self, y_hat):
            out = torch.empty(0)
            out.latents = y_hat
            return out

    return PassThrough, Capture


@dataclass
class _Loaded:
    """One quality's network: the CPU model, its entropy view and the device transforms."""

    net: Any  # compressai CompressionModel, on the CPU, eval mode, CDFs updated
    entropy: Any  # the same model with g_a / g_s replaced: runs only the entropy path
    g_a: Any  # analysis transform on the codec's device
    g_s: Any  # synthesis transform on the codec's device
    label: str  # which weights, for ``version``
    tag: bytes  # 4-byte fingerprint of the weights, written into every stream and checked


class CompressAIZoo(LearnedCodec[_Loaded]):
    """A CompressAI zoo architecture; subclasses only set ``name`` and the quality ladder."""

    PARAMS = {
        "metric": Param("mse", "distortion the pretrained weights were optimised for", choices=("mse", "ms-ssim")),
        "weights": Param("pretrained", "published weights, or an untrained network", choices=("pretrained", "random")),
        "checkpoint": Param("", "your own weights file; {quality} is replaced by the quality"),
        "weights_root": Param("", "weights root (default $RDBENCH_WEIGHTS_ROOT, else codecs/)"),
        "seed": Param(0, "seed of weights=random", convert=int),
    }
    batched = True
    in_default_set = True  # when the published weights are cached

    def __getstate__(self) -> dict:
        """Pickle the configuration only (Beam ships codecs to workers); models reload lazily."""
        state = self.__dict__.copy()
        state["_nets"] = {}
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # -- identity --------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return f"{self._prefix()} {self._weights_description()}"

    def version_for(self, quality: float) -> str:
        """The version naming the exact weights of one quality (loads that quality's model)."""
        return f"{self._prefix()} {self._load(self._quality(quality)).label}"

    def _prefix(self) -> str:
        base = f"compressai {_compressai().__version__} {self.name}"
        return base if self.params["checkpoint"] else f"{base} {self.params['metric']}"

    def _weights_description(self) -> str:
        if self.random_weights:
            return f"UNTRAINED (random init, seed {self.params['seed']})"
        if self.params["checkpoint"]:
            template = self.params["checkpoint"]
            if "{quality}" not in template:
                return f"checkpoint {template}{hash_suffix(template)}"
            present = [q for q in self.DEFAULT_QUALITIES if _is_file(self._checkpoint_path(q))]
            hashes = ", ".join(f"q{q}{hash_suffix(self._checkpoint_path(q))}" for q in present)
            return f"checkpoint {template} ({hashes or 'no file present'})"
        q = self.DEFAULT_QUALITIES[0]
        first = self._remote(q)
        pattern = first.filename.replace(f"-{q}-{first.sha256}", "-{quality}-<sha256 prefix>")
        return f"pretrained weights {pattern} ({first.url.rsplit('/', 1)[0]})"

    # -- weights -----------------------------------------------------------------------------
    def _quality_error(self, quality: Any) -> str:
        lo, hi = self.DEFAULT_QUALITIES[0], self.DEFAULT_QUALITIES[-1]
        return f"{self.name}: quality must be an integer {lo}–{hi}, got {quality!r}"

    def _remote(self, quality: int) -> RemoteFile:
        urls = _compressai().zoo.image.model_urls[self.name]
        return RemoteFile.from_url(urls[self.params["metric"]][quality], WEIGHTS_SUBDIR)

    def weights_available(self, qualities: Sequence[float] | None = None) -> bool:
        """Whether every quality's weights are here (cached or a checkpoint file) — no download."""
        if self.random_weights:
            return True
        qs = [self._quality(q) for q in (qualities if qualities is not None else self.DEFAULT_QUALITIES)]
        if self.params["checkpoint"]:
            return all(Path(self._checkpoint_path(q)).is_file() for q in qs)
        root = weights_root(self.params["weights_root"] or None)
        return all(self._remote(q).is_cached(root) for q in qs)

    def _load(self, quality: int) -> _Loaded:
        return self._cached(quality, self._build, quality)

    def _build(self, quality: int) -> _Loaded:
        import torch

        compressai = _compressai()
        arch = compressai.zoo.image.model_architectures[self.name]
        if self.params["checkpoint"]:
            path = self._checkpoint_path(quality)
            net = self._from_state_dict(arch, load_state_dict(path), path)
            label, _ = checkpoint_identity(path)
        elif self.random_weights:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.params["seed"])
                net = arch(*compressai.zoo.image.cfgs[self.name][quality])
            label = f"UNTRAINED (random init, seed {self.params['seed']})"
        else:
            remote = self._remote(quality)
            path = remote.fetch(weights_root(self.params["weights_root"] or None))
            net = self._from_state_dict(arch, load_state_dict(path), str(path))
            label = f"weights {remote.filename}"
        net.eval().requires_grad_(False)
        net.update(force=True)
        for module in net.modules():  # MaskedConv2d masks its weight in place on first use;
            if isinstance(module, compressai.layers.MaskedConv2d):  # do it now, so the
                module.weight.data *= module.mask  # fingerprint is that of the weights used
        g_a, g_s = self._on_device(net)
        return _Loaded(net, _entropy_view(net), g_a, g_s, label, state_fingerprint(self.name, net))

    def _from_state_dict(self, arch, state_dict: dict, source: str):
        compressai = _compressai()
        state_dict = compressai.zoo.load_state_dict(state_dict)  # legacy key names, module.
        with checkpoint_errors(source, f"{self.name} ({arch.__name__})", LOAD_ERRORS):
            return arch.from_state_dict(state_dict)

    def _on_device(self, net):
        if self.device == "cpu":
            return net.g_a, net.g_s
        return copy.deepcopy(net.g_a).to(self.device), copy.deepcopy(net.g_s).to(self.device)

    def _place(self, loaded: _Loaded) -> None:
        """Put the analysis/synthesis transforms on the codec's device; entropy coding stays on the CPU."""
        loaded.g_a, loaded.g_s = self._on_device(loaded.net)

    # -- coding ----------------------------------------------------------------------------
    def compress(self, image: np.ndarray, quality: float) -> Encoded:
        return self.compress_batch([image], quality)[0]

    def decode(self, data: bytes) -> np.ndarray:
        return self.decode_batch([data])[0]

    def compress_batch(self, images: Sequence[np.ndarray], quality: float) -> list[Encoded]:
        """Encode images at one quality; equal-shape images share one ``g_a`` pass on the device."""
        q = self._quality(quality)
        loaded = self._load(q)
        out: list[Encoded | None] = [None] * len(images)
        for (h, w, _), idx in indices_by_shape(self.name, images).items():
            for i, enc in zip(idx, self._compress_group([images[i] for i in idx], q, loaded, h, w)):
                out[i] = enc
        return out  # type: ignore[return-value]

    def _compress_group(self, images, q: int, loaded: _Loaded, h: int, w: int) -> list[Encoded]:
        import torch
        import torch.nn.functional as F
        from compressai.ops import compute_padding

        divisor = max(MIN_DIVISOR, int(getattr(loaded.net, "downsampling_factor", MIN_DIVISOR)))
        pad, _ = compute_padding(h, w, min_div=divisor)
        ph, pw = h + pad[2] + pad[3], w + pad[0] + pad[1]
        with torch.no_grad():
            x = torch.from_numpy(np.stack(images)).to(self.device).permute(0, 3, 1, 2).float().div(255)
            x = F.pad(x, pad, mode="constant", value=0)
            y = loaded.g_a(x).float().cpu()
            results = []
            for i in range(y.size(0)):
                y_i = y[i : i + 1]
                likelihoods = loaded.entropy(y_i)["likelihoods"].values()
                bits = float(sum(-torch.log2(lk.double()).sum() for lk in likelihoods))
                coded = loaded.entropy.compress(y_i)
                strings = [s[0] for s in coded["strings"]]
                header = bitstream.Header(
                    self.name, float(q), h, w, ph, pw, tuple(int(v) for v in coded["shape"]), loaded.tag
                )
                results.append(Encoded(bitstream.pack(header, strings), bits))
        return results

    def decode_batch(self, streams: Sequence[bytes]) -> list[np.ndarray]:
        """Decode streams; those with equal quality and size share one ``g_s`` pass on the device."""
        import torch

        latents = []
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, data in enumerate(streams):
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
            try:
                with torch.no_grad():
                    y_hat = loaded.entropy.decompress([[s] for s in strings], list(header.shape))["x_hat"].latents
            except Exception as exc:  # AssertionError/ValueError/RuntimeError from a corrupt stream
                raise CodecError(f"{self.name}: entropy decoding failed: {type(exc).__name__}: {exc}") from exc
            latents.append((header, y_hat))
            groups[(q, tuple(y_hat.shape))].append(i)
        out: list[np.ndarray | None] = [None] * len(streams)
        with torch.no_grad():
            for (q, _), idx in groups.items():
                g_s = self._load(q).g_s
                x_hat = g_s(torch.cat([latents[i][1] for i in idx]).to(self.device)).clamp_(0, 1)
                for j, i in enumerate(idx):
                    out[i] = _to_uint8(x_hat[j], latents[i][0])
        return out  # type: ignore[return-value]


def _entropy_view(net):
    """A shallow copy of ``net`` sharing every parameter, whose g_a/g_s are pass-throughs."""
    PassThrough, Capture = _modules()
    view = copy.copy(net)
    view._modules = dict(net._modules)  # own module table: replacing g_a/g_s leaves net intact
    view._modules["g_a"] = PassThrough()
    view._modules["g_s"] = Capture()
    return view


def _to_uint8(x_hat, header: bitstream.Header) -> np.ndarray:
    """Crop the padding off one decoded image and round it to uint8 (H, W, 3)."""
    import torch
    from compressai.ops import compute_padding

    h, w = header.height, header.width
    pad, _ = compute_padding(h, w, out_h=header.padded_height, out_w=header.padded_width)
    left, top = pad[0], pad[2]
    x = x_hat[:, top : top + h, left : left + w].mul(255).round().to(torch.uint8).permute(1, 2, 0)
    return np.ascontiguousarray(x.cpu().numpy())


def _is_file(path: str) -> bool:
    return Path(path).is_file()


class BMSHJ2018Factorized(CompressAIZoo):
    """Ballé et al. 2018, factorized prior (``compressai.zoo.bmshj2018_factorized``)."""

    name = "bmshj2018-factorized"
    DEFAULT_QUALITIES = ZOO[name]


class BMSHJ2018Hyperprior(CompressAIZoo):
    """Ballé et al. 2018, scale hyperprior (``compressai.zoo.bmshj2018_hyperprior``)."""

    name = "bmshj2018-hyperprior"
    DEFAULT_QUALITIES = ZOO[name]


class MBT2018Mean(CompressAIZoo):
    """Minnen et al. 2018, mean-scale hyperprior (``compressai.zoo.mbt2018_mean``)."""

    name = "mbt2018-mean"
    DEFAULT_QUALITIES = ZOO[name]


class MBT2018(CompressAIZoo):
    """Minnen et al. 2018, joint autoregressive + hierarchical prior (``compressai.zoo.mbt2018``)."""

    name = "mbt2018"
    DEFAULT_QUALITIES = ZOO[name]


class Cheng2020Anchor(CompressAIZoo):
    """Cheng et al. 2020, anchor (``compressai.zoo.cheng2020_anchor``)."""

    name = "cheng2020-anchor"
    DEFAULT_QUALITIES = ZOO[name]


class Cheng2020Attn(CompressAIZoo):
    """Cheng et al. 2020, with attention (``compressai.zoo.cheng2020_attn``)."""

    name = "cheng2020-attn"
    DEFAULT_QUALITIES = ZOO[name]


def weights_available(spec: "str | Codec", qualities: Sequence[float] | None = None) -> bool:
    """Whether a learned codec spec can run here without downloading anything.

    True for codecs that need no weights (classical ones, ``weights=random``); for the zoo,
    whether every quality's file is cached (or every ``checkpoint=`` file exists).
    """
    codec = get_codec(spec) if isinstance(spec, str) else spec
    check = getattr(codec, "weights_available", None)
    return bool(check(qualities)) if callable(check) else True
