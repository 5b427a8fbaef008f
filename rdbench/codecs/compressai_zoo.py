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

Coding, device independence and the rate estimate: :mod:`rdbench.codecs.compressai_model`.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rdbench.codecs.base import Param
from rdbench.codecs.compressai_model import CompressAIModelCodec, import_compressai
from rdbench.codecs.learned import LOAD_ERRORS, checkpoint_errors, hash_suffix
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


class CompressAIZoo(CompressAIModelCodec):
    """A CompressAI zoo architecture; subclasses only set ``name`` and the quality ladder."""

    PARAMS = {
        "metric": Param("mse", "distortion the pretrained weights were optimised for", choices=("mse", "ms-ssim")),
        "weights": Param("pretrained", "published weights, or an untrained network", choices=("pretrained", "random")),
        "checkpoint": Param("", "your own weights file; {quality} is replaced by the quality"),
        "weights_root": Param("", "weights root (default $RDBENCH_WEIGHTS_ROOT, else codecs/)"),
        "seed": Param(0, "seed of weights=random", convert=int),
    }
    in_default_set = True  # when the published weights are cached

    # -- the network -----------------------------------------------------------------------
    def new_model(self, quality: int) -> Any:
        compressai = import_compressai()
        return compressai.zoo.image.model_architectures[self.name](*compressai.zoo.image.cfgs[self.name][quality])

    def model_from_state_dict(self, quality: int, state_dict: dict[str, Any]) -> Any:
        """The zoo architecture sized by the tensors (CompressAI's ``from_state_dict``)."""
        compressai = import_compressai()
        state_dict = compressai.zoo.load_state_dict(state_dict)  # legacy key names, module.
        return compressai.zoo.image.model_architectures[self.name].from_state_dict(state_dict)

    # -- identity --------------------------------------------------------------------------
    def _prefix(self) -> str:
        base = f"compressai {import_compressai().__version__} {self.name}"
        return base if self.params["checkpoint"] else f"{base} {self.params['metric']}"

    def _weights_description(self) -> str:
        if self.random_weights:
            return f"UNTRAINED (random init, seed {self.params['seed']})"
        if self.params["checkpoint"]:
            template = self.params["checkpoint"]
            if "{quality}" not in template:
                return f"checkpoint {template}{hash_suffix(template)}"
            present = [q for q in self.DEFAULT_QUALITIES if Path(self._checkpoint_path(q)).is_file()]
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
        urls = import_compressai().zoo.image.model_urls[self.name]
        return RemoteFile.from_url(urls[self.params["metric"]][quality], WEIGHTS_SUBDIR)

    def weights_available(self, qualities: Sequence[float] | None = None) -> bool:
        """Whether every quality's weights are here (cached or a checkpoint file) — no download."""
        if self.random_weights or self.params["checkpoint"]:
            return super().weights_available(qualities)
        qs = [self._quality(q) for q in (qualities if qualities is not None else self.DEFAULT_QUALITIES)]
        root = weights_root(self.params["weights_root"] or None)
        return all(self._remote(q).is_cached(root) for q in qs)

    def _default_weights(self, quality: int) -> tuple[Any, str, str]:
        """The published weights: from the cache, downloaded first if allowed and missing."""
        remote = self._remote(quality)
        path = str(remote.fetch(weights_root(self.params["weights_root"] or None)))
        state_dict = load_state_dict(path)
        with checkpoint_errors(path, self.name, LOAD_ERRORS):
            net = self.model_from_state_dict(quality, state_dict)
        return net, f"weights {remote.filename}", f"published:{remote.filename}"


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
