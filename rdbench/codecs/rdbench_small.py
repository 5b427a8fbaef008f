"""``rdbench-small``: a small factorized-prior codec trained by rdbench itself, shipped as package data.

The architecture is Ballé et al.'s factorized prior (``compressai.models.FactorizedPrior``:
four 5×5 stride-2 convolutions with GDN, a per-channel non-parametric entropy bottleneck)
with fewer channels (N=64, M=96), made *variable-rate* with gain units (Cui et al., "Asymmetric
Gained Deep Image Compression with Continuous Rate Adaptation", CVPR 2021): one shared pair of
transforms, and for each quality level k a per-channel gain ``g_k`` applied to the latent
before quantisation, an inverse gain ``1/ĝ_k`` applied after, and its own entropy bottleneck.
Quality k (1..K) was trained with the k-th λ of the ladder (rate + λ·255²·MSE, as CompressAI's
``examples/train.py``). Because the gains are per channel they fold exactly into the last
convolution of ``g_a`` and the first transposed convolution of ``g_s``, so each quality *is* a
plain ``FactorizedPrior`` (:func:`fold`) and the coding path is CompressAI's own, through
:class:`~rdbench.codecs.compressai_model.CompressAIModelCodec` (real range-coded bitstreams,
padding, device handling, the versioned container).

How it was trained (command, data, wall time, Kodak results): ``benchmarks/train_rdbench_small.py``.
It is small and under-trained (2400 steps on a CPU): on Kodak it spends about 67 % more bits
than JPEG at equal PSNR (47 % at equal MS-SSIM). It is there so that the training, packaging and
benchmarking of a learned codec run end to end with real trained weights and no download.

Parameters (``rdbench-small:key=value,...``):

- ``checkpoint`` — other weights: a gained checkpoint as ``TrainCodec --codec rdbench-small``
  writes (``checkpoint-final.pth``, all qualities in one file), or, with ``{quality}`` in the
  path, one plain ``FactorizedPrior`` state dict per quality.
- ``weights`` — ``shipped`` (default; the package's own file) or ``random`` (untrained,
  seeded by ``seed``, labelled UNTRAINED in ``version``).
- ``seed`` — the seed of ``weights=random``.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from rdbench.codecs.base import Param
from rdbench.codecs.compressai_model import CompressAIModelCodec, import_compressai
from rdbench.codecs.learned import LOAD_ERRORS, checkpoint_errors, hash_suffix
from rdbench.codecs.weights import CheckpointError, load_state_dict, sha256sum

__all__ = ["LMBDAS", "WEIGHTS_FILE", "RDBenchSmall", "fold", "make_model", "num_levels", "shipped_weights"]

#: The λ ladder of the shipped model, quality 1..4 (CompressAI's zoo λ for qualities 1, 3, 5, 7).
LMBDAS = (0.0018, 0.0067, 0.025, 0.0932)
#: Channels of the shipped model.
N_CHANNELS, M_CHANNELS = 64, 96
#: The shipped weights, inside the package (rdbench/codecs/weights_data/).
WEIGHTS_FILE = "rdbench_small.pth"

_GAIN_KEYS = ("log_gain", "log_inv_gain")


def shipped_weights() -> Path:
    """The path of the shipped weights file (package data)."""
    return Path(str(resources.files("rdbench.codecs").joinpath("weights_data", WEIGHTS_FILE)))


def make_model(N: int = N_CHANNELS, M: int = M_CHANNELS, lmbdas: Sequence[float] = LMBDAS):
    """A gained factorized-prior network with one level per λ (an ``nn.Module``, untrained).

    ``forward(x, levels)`` takes one level index per image (a LongTensor of shape (B,)) and
    returns CompressAI's usual ``{"x_hat", "likelihoods": {"y"}}`` (likelihoods per image).
    Gains are initialised to √(λ_k / geometric mean λ): at high rate the MSE-optimal step is
    ∝ 1/√λ, so training starts with the levels' rates already ordered.
    """
    import torch
    from compressai.entropy_models import EntropyBottleneck
    from compressai.models import CompressionModel, FactorizedPrior
    from torch import nn

    class GainedFactorizedPrior(CompressionModel):
        def __init__(self, N: int, M: int, lmbdas: Sequence[float]):
            super().__init__()
            base = FactorizedPrior(N, M)  # the same transforms (and parameter names) as the zoo
            self.g_a, self.g_s = base.g_a, base.g_s
            self.N, self.M = N, M
            self.entropy_bottlenecks = nn.ModuleList(EntropyBottleneck(M) for _ in lmbdas)
            ref = sum(math.log(l) for l in lmbdas) / len(lmbdas)
            init = torch.tensor([0.5 * (math.log(l) - ref) for l in lmbdas]).unsqueeze(1).repeat(1, M)
            self.log_gain = nn.Parameter(init.clone())
            self.log_inv_gain = nn.Parameter(-init.clone())
            self.register_buffer("lmbdas", torch.tensor(list(lmbdas), dtype=torch.float64))

        @property
        def downsampling_factor(self) -> int:
            return 2**4

        def forward(self, x, levels):
            y = self.g_a(x) * self.log_gain.exp()[levels][:, :, None, None]
            y_hat = torch.empty_like(y)
            likelihoods = torch.empty_like(y)
            for k in torch.unique(levels).tolist():
                idx = (levels == k).nonzero().squeeze(1)
                y_hat_k, lik_k = self.entropy_bottlenecks[k](y[idx])
                y_hat = y_hat.index_copy(0, idx, y_hat_k)
                likelihoods = likelihoods.index_copy(0, idx, lik_k)
            x_hat = self.g_s(y_hat * self.log_inv_gain.exp()[levels][:, :, None, None])
            return {"x_hat": x_hat, "likelihoods": {"y": likelihoods}}

    return GainedFactorizedPrior(N, M, lmbdas)


def num_levels(state_dict: dict) -> int:
    """How many quality levels a gained state dict holds (0 for a plain FactorizedPrior)."""
    return int(state_dict["log_gain"].shape[0]) if "log_gain" in state_dict else 0


def fold(state_dict: dict, level: int) -> dict:
    """The plain ``FactorizedPrior`` state dict of one level (0-based) of a gained state dict.

    ``g_a``'s last convolution is scaled by the level's gain (weights and bias, per output
    channel), ``g_s``'s first transposed convolution by its inverse gain (per input channel),
    and the level's entropy bottleneck becomes ``entropy_bottleneck``.
    """
    import torch

    k = int(level)
    if not 0 <= k < num_levels(state_dict):
        raise CheckpointError(f"level {k} is not in this checkpoint (it holds {num_levels(state_dict)})")
    gain = state_dict["log_gain"][k].double().exp()
    inv_gain = state_dict["log_inv_gain"][k].double().exp()
    last = max(int(key.split(".")[1]) for key in state_dict if key.startswith("g_a.") and key.endswith(".weight"))
    prefix = f"entropy_bottlenecks.{k}."
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key in _GAIN_KEYS or key == "lmbdas" or key.startswith("entropy_bottlenecks."):
            continue
        if key == f"g_a.{last}.weight":
            value = (value.double() * gain[:, None, None, None]).to(value.dtype)
        elif key == f"g_a.{last}.bias":
            value = (value.double() * gain).to(value.dtype)
        elif key == "g_s.0.weight":  # ConvTranspose2d weight: (in = M, out = N, kh, kw)
            value = (value.double() * inv_gain[:, None, None, None]).to(value.dtype)
        out[key] = value
    for key, value in state_dict.items():
        if key.startswith(prefix):
            out["entropy_bottleneck." + key[len(prefix) :]] = value
    return out


class RDBenchSmall(CompressAIModelCodec):
    """The shipped small variable-rate factorized-prior model; quality 1..4 = the λ ladder."""

    name = "rdbench-small"
    DEFAULT_QUALITIES = tuple(range(1, len(LMBDAS) + 1))
    PARAMS = {
        "weights": Param("shipped", "the package's trained weights, or an untrained network", choices=("shipped", "random")),
        "checkpoint": Param("", "other weights: a gained checkpoint, or per-quality FactorizedPrior files with {quality}"),
        "seed": Param(0, "seed of weights=random", convert=int),
    }
    in_default_set = False  # a small demonstration model: only when asked for (--codecs)

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._gained: dict | None = None
        self._gained_lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_gained"] = None
        state.pop("_gained_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._gained_lock = threading.Lock()

    # -- the network ---------------------------------------------------------------------------
    def new_model(self, quality: int) -> Any:
        """An untrained gained network's level ``quality``, folded into a plain ``FactorizedPrior``."""
        return self.model_from_state_dict(quality, fold(make_model().state_dict(), quality - 1))

    def model_from_state_dict(self, quality: int, state_dict: dict[str, Any]) -> Any:
        """A plain ``FactorizedPrior`` state dict (one quality) as a network sized by its tensors."""
        return import_compressai().models.FactorizedPrior.from_state_dict(state_dict)

    # -- identity ----------------------------------------------------------------------------
    def _prefix(self) -> str:
        return f"compressai {import_compressai().__version__} {self.name}"

    def _per_quality_files(self) -> bool:
        """Whether ``checkpoint=`` names one plain state dict per quality (``{quality}`` in it)."""
        return "{quality}" in self.params["checkpoint"]

    def _weights_path(self) -> str:
        """The gained checkpoint: ``checkpoint=`` (without ``{quality}``), else the shipped file."""
        return self.params["checkpoint"] or str(shipped_weights())

    def _weights_description(self) -> str:
        if self.random_weights:
            return f"UNTRAINED (random init, seed {self.params['seed']})"
        template = self.params["checkpoint"]
        if self._per_quality_files():
            present = [q for q in self.DEFAULT_QUALITIES if Path(self._checkpoint_path(q)).is_file()]
            hashes = ", ".join(f"q{q}{hash_suffix(self._checkpoint_path(q))}" for q in present)
            return f"checkpoint {template} ({hashes or 'no file present'})"
        what = f"checkpoint {template}" if template else f"shipped weights {WEIGHTS_FILE}"
        return f"{what}{hash_suffix(self._weights_path())}"

    def weights_available(self, qualities: Sequence[float] | None = None) -> bool:
        if self.random_weights or self._per_quality_files():
            return super().weights_available(qualities)
        return Path(self._weights_path()).is_file()

    # -- weights -------------------------------------------------------------------------------
    def _gained_state(self) -> dict:
        with self._gained_lock:
            if self._gained is None:
                path = self._weights_path()
                sd = load_state_dict(path)
                if num_levels(sd) < 1:
                    raise CheckpointError(f"{path} is not an rdbench-small (gained) checkpoint: no log_gain tensor")
                if num_levels(sd) < len(self.DEFAULT_QUALITIES):
                    raise CheckpointError(
                        f"{path} holds {num_levels(sd)} quality levels; {self.name} needs {len(self.DEFAULT_QUALITIES)}"
                    )
                self._gained = sd
            return self._gained

    def _default_weights(self, quality: int) -> tuple[Any, str, str]:
        """Level ``quality`` of the gained checkpoint (the shipped one unless ``checkpoint=`` names another)."""
        path = self._weights_path()
        with checkpoint_errors(path, self.name, LOAD_ERRORS):
            net = self.model_from_state_dict(quality, fold(self._gained_state(), quality - 1))
        name = f"checkpoint {path}" if self.params["checkpoint"] else f"shipped weights {WEIGHTS_FILE}"
        return net, f"{name} sha256 {sha256sum(path)[:8]} level {quality}", f"{path} level {quality}"

    def _weights(self, quality: int) -> tuple[Any, str, str]:
        if self.params["checkpoint"] and not self._per_quality_files():
            return self._default_weights(quality)
        return super()._weights(quality)
