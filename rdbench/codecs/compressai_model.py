"""A CompressAI model as an rdbench codec: the base of the zoo, ``rdbench-small``, the seed
hyperprior codecs, and of your own model (README, "Evaluate your own model").

:class:`CompressAIModelCodec` codes with a ``compressai.models.CompressionModel``'s own
``compress``/``decompress`` (its entropy models and rANS coder) on the
:class:`~rdbench.codecs.transform.TransformCodec` path, as ``python -m
compressai.utils.eval_model`` does: pixels / 255, zero-padded symmetrically
(``compressai.ops.compute_padding``) to a multiple of the model's ``downsampling_factor`` (at
least 64), then ``compress``; the decoder runs ``decompress``, crops, clamps to [0, 1], × 255,
rounds. ``g_a`` and ``g_s`` (the bulk of the work) run on the codec's device; everything that
feeds the entropy coder runs on the CPU, through ``compress``/``decompress`` on a view of the
model whose ``g_a``/``g_s`` are pass-throughs. ``compress`` reports −Σ log2 p of the model's
eval-mode forward pass on the same latents.

A subclass sets ``name`` and ``DEFAULT_QUALITIES`` and builds an untrained network in
:meth:`~CompressAIModelCodec.new_model`; the weights come from ``checkpoint=PATH``
(``{quality}`` replaced by the quality; a state dict, or a training checkpoint nesting one,
read with ``torch.load(weights_only=True)``) or ``weights=random`` (seeded by ``seed``).
"""
from __future__ import annotations

import copy
import functools
import warnings
from types import ModuleType
from typing import Any, ClassVar

from rdbench.codecs import bitstream
from rdbench.codecs.base import Param
from rdbench.codecs.learned import (
    LOAD_ERRORS,
    checkpoint_errors,
    checkpoint_identity,
    hash_suffix,
    state_fingerprint,
)
from rdbench.codecs.transform import Loaded, TransformCodec
from rdbench.codecs.weights import CheckpointError, load_state_dict

__all__ = ["MIN_DIVISOR", "CompressAIModelCodec", "import_compressai"]

MIN_DIVISOR = 64  # what eval_model pads to: six stride-2 stages


@functools.lru_cache(maxsize=None)
def import_compressai() -> ModuleType:
    """CompressAI with the submodules rdbench uses, imported on first use (it pulls in torch
    and warns about deprecations on import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import compressai
        import compressai.entropy_models
        import compressai.layers
        import compressai.models
        import compressai.models.utils
        import compressai.ops
        import compressai.zoo
        import compressai.zoo.image
    return compressai


class CompressAIModelCodec(TransformCodec):
    """A ``CompressionModel`` (``g_a``, ``g_s``, ``compress``, ``decompress``) in the rdbench container.

    Override :meth:`new_model`; :meth:`model_from_state_dict` too if a network's size must be
    read off its checkpoint.
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

    # -- the network: what a subclass says ------------------------------------------------------
    def new_model(self, quality: int) -> Any:
        """An untrained network for ``quality``: a ``compressai.models.CompressionModel``."""
        raise NotImplementedError(f"{type(self).__name__} must implement new_model")

    def model_from_state_dict(self, quality: int, state_dict: dict[str, Any]) -> Any:
        """The network of ``quality`` holding ``state_dict``: :meth:`new_model`, loaded strictly."""
        net = self.new_model(quality)
        net.load_state_dict(state_dict)
        return net

    # -- identity ------------------------------------------------------------------------------
    def _prefix(self) -> str:
        return f"{self.name} (compressai {import_compressai().__version__})"

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

    # -- weights ---------------------------------------------------------------------------------
    def _weights(self, quality: int) -> tuple[Any, str, str]:
        """(network, label for ``version_for``, identity for :meth:`_tag`) of one quality."""
        import torch

        if self.random_weights:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.params["seed"])
                net = self.new_model(quality)
            return net, f"UNTRAINED (random init, seed {self.params['seed']})", f"random:{self.params['seed']}"
        if not self.params["checkpoint"]:
            return self._default_weights(quality)
        path = self._checkpoint_path(quality)
        state_dict = load_state_dict(path)
        with checkpoint_errors(path, self.name, LOAD_ERRORS):
            net = self.model_from_state_dict(quality, state_dict)
        label, identity = checkpoint_identity(path)
        return net, label, identity

    def _default_weights(self, quality: int) -> tuple[Any, str, str]:
        """:meth:`_weights` without ``checkpoint=`` or ``weights=random``: there are none by default."""
        raise CheckpointError(
            f"{self.name}: no weights given: give checkpoint=PATH "
            f"(e.g. {self.name}:checkpoint=codecs/{self.name}/q{{quality}}.pth) or weights=random"
        )

    def _tag(self, net: Any, identity: str) -> bytes:
        """The 4-byte weights tag of the streams: a fingerprint of the network's tensors."""
        return state_fingerprint(self.name, net)

    def _build(self, quality: int) -> Loaded:
        compressai = import_compressai()
        net, label, identity = self._weights(quality)
        net.eval().requires_grad_(False)
        net.update(force=True)
        for module in net.modules():  # MaskedConv2d masks its weight in place on first use;
            if isinstance(module, compressai.layers.MaskedConv2d):  # do it now, so the
                module.weight.data *= module.mask  # tag is that of the weights used
        return Loaded(net, label, self._tag(net, identity), extra={"entropy": _entropy_view(net)})

    def _place(self, loaded: Loaded) -> None:
        """Put ``g_a`` and ``g_s`` on the codec's device; entropy coding stays on the CPU."""
        net = loaded.net
        if self.device == "cpu":
            loaded.analysis, loaded.synthesis = net.g_a, net.g_s
        else:
            loaded.analysis = copy.deepcopy(net.g_a).to(self.device)
            loaded.synthesis = copy.deepcopy(net.g_s).to(self.device)

    # -- coding hooks ----------------------------------------------------------------------------
    def _analysis(self, loaded: Loaded, x, h: int, w: int):
        import torch.nn.functional as F
        from compressai.ops import compute_padding

        divisor = max(MIN_DIVISOR, int(getattr(loaded.net, "downsampling_factor", MIN_DIVISOR)))
        pad, _ = compute_padding(h, w, min_div=divisor)
        x = F.pad(x.float().div(255), pad, mode="constant", value=0)
        return loaded.analysis(x), x.size(2), x.size(3)

    def _entropy_encode(self, loaded: Loaded, y) -> tuple[list[bytes], tuple[int, ...], float]:
        import torch

        entropy = loaded.extra["entropy"]
        likelihoods = entropy(y)["likelihoods"].values()
        bits = float(sum(-torch.log2(lk.double()).sum() for lk in likelihoods))
        coded = entropy.compress(y)
        return [s[0] for s in coded["strings"]], tuple(int(v) for v in coded["shape"]), bits

    def _entropy_decode(self, loaded: Loaded, strings: list[bytes], header: bitstream.Header):
        entropy = loaded.extra["entropy"]
        return entropy.decompress([[s] for s in strings], list(header.shape))["x_hat"].latents

    def _synthesis(self, loaded: Loaded, y_hat):
        return loaded.synthesis(y_hat)

    def _crop_offsets(self, header: bitstream.Header) -> tuple[int, int]:
        from compressai.ops import compute_padding

        pad, _ = compute_padding(header.height, header.width, out_h=header.padded_height, out_w=header.padded_width)
        return pad[2], pad[0]


@functools.lru_cache(maxsize=None)
def _view_modules() -> tuple[type, type]:
    """The stand-ins for ``g_a`` and ``g_s`` in an entropy view (defined on first use: torch)."""
    import torch
    from torch import nn

    class PassThrough(nn.Module):
        """Stands in for ``g_a``: the latents were computed on the device."""

        def forward(self, y):
            return y

    class Capture(nn.Module):
        """Stands in for ``g_s``: hands the decoded latents back.

        CompressAI's ``decompress`` returns ``g_s(y_hat).clamp_(0, 1)``; this returns an empty
        tensor carrying ``y_hat`` as an attribute (``clamp_`` returns the same object), so the
        latents come back untouched and no state is shared between threads.
        """

        def forward(self, y_hat):
            out = torch.empty(0)
            out.latents = y_hat
            return out

    return PassThrough, Capture


def _entropy_view(net: Any) -> Any:
    """A shallow copy of ``net`` sharing every parameter, whose g_a/g_s are pass-throughs."""
    PassThrough, Capture = _view_modules()
    view = copy.copy(net)
    view._modules = dict(net._modules)  # own module table: replacing g_a/g_s leaves net intact
    view._modules["g_a"] = PassThrough()
    view._modules["g_s"] = Capture()
    return view
