"""``hific``: HiFiC (Mentzer et al. 2020), built so that the published PyTorch checkpoints of
Justin-Tan/high-fidelity-generative-compression (Zenodo record 4026003) load as they are.

Qualities 1, 2, 3 are the published regimes low, med, high; the architecture is rebuilt from each
checkpoint's own ``args``. Streams are :mod:`rdbench.codecs.bitstream` containers with CompressAI
rANS strings (not the original ``.hfc`` format); entropy coding runs on the CPU, so a stream made
on a GPU decodes anywhere. Layers, checkpoint keys, image padding and the stream layout:
docs/codecs.md, section hific.
"""
from __future__ import annotations

import argparse
import functools
import pickle
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rdbench.codecs import bitstream
from rdbench.codecs.base import CodecError, Param
from rdbench.codecs.compressai_model import import_compressai
from rdbench.codecs.learned import checkpoint_identity, first_line, hash_suffix, weights_tag
from rdbench.codecs.transform import Loaded, TransformCodec
from rdbench.codecs.weights import CheckpointError, weights_root

__all__ = [
    "HiFiC",
    "HiFiCConfig",
    "PUBLISHED_ARGS",
    "REGIMES",
    "ZENODO_RECORD",
    "build_model",
    "config_from_args",
    "load_checkpoint",
    "parameter_counts",
    "published_filename",
]

#: quality → regime name (``--regime`` of the original train.py)
REGIMES = {1: "low", 2: "med", 3: "high"}
#: quality → the token in the published file names (hific_low.pt, hific_med.pt, hific_hi.pt)
FILE_TOKENS = {1: "low", 2: "med", 3: "hi"}
#: quality → target bitrate of the regime (bpp)
TARGET_BPP = {1: 0.14, 2: 0.30, 3: 0.45}
ZENODO_RECORD = "https://zenodo.org/record/4026003"
WEIGHTS_SUBDIR = "hific"

ENCODER_FILTERS = (60, 120, 240, 480, 960)
HYPERLATENT_FILTERS = 320  # LARGE_HYPERLATENT_FILTERS of the original
DENSITY_FILTERS = (3, 3, 3)
SCALE_LOWER_BOUND = 0.11
LIKELIHOOD_BOUND = 1e-9
CHANNEL_NORM_EPS = 1e-3
LATENT_MULTIPLE = 4  # the hyper-analysis downsamples twice
MIN_LATENT = 8  # smallest latent side for which the hyper-analysis' reflect padding works
STRIDE = 16

#: Defaults of the original default_config.py (used where a checkpoint's args lack a field)
DEFAULT_ARGS = {
    "latent_channels": 220,
    "n_residual_blocks": 9,
    "use_channel_norm": True,
    "likelihood_type": "gaussian",
    "normalize_input_image": False,
    "use_latent_mixture_model": False,
    "sample_noise": False,
}
#: The published models' architecture arguments, per quality (README: low and high were
#: trained with ``-nrb 9 -norm``, med with ``--likelihood_type logistic``).
PUBLISHED_ARGS = {
    1: {**DEFAULT_ARGS, "regime": "low", "normalize_input_image": True},
    2: {**DEFAULT_ARGS, "regime": "med", "likelihood_type": "logistic"},
    3: {**DEFAULT_ARGS, "regime": "high", "normalize_input_image": True},
}
#: state-dict keys of the published files that this port does not need
IGNORED_PREFIXES = (
    "Discriminator.",
    "Hyperprior.hyperprior_entropy_model.",  # entropy tables of an evaluation-mode model
    "Hyperprior.prior_entropy_model.",
    "Hyperprior.prior_density.",
)


def published_filename(quality: int) -> str:
    return f"hific_{FILE_TOKENS[quality]}.pt"


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HiFiCConfig:
    """The architecture choices a checkpoint's ``args`` make."""

    latent_channels: int = 220
    n_residual_blocks: int = 9
    use_channel_norm: bool = True
    likelihood_type: str = "gaussian"
    normalize_input_image: bool = False


def config_from_args(args: Mapping[str, Any], *, source: str = "checkpoint") -> HiFiCConfig:
    """Validate a checkpoint's ``args`` and return the architecture they describe."""

    def get(key):
        return args.get(key, DEFAULT_ARGS[key])

    def integer(key, lo):
        v = get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise CheckpointError(f"{source}: args[{key!r}] must be an integer ≥ {lo}, got {v!r}")
        return v

    def flag(key):
        v = get(key)
        if not isinstance(v, bool):
            raise CheckpointError(f"{source}: args[{key!r}] must be True or False, got {v!r}")
        return v

    if flag("use_latent_mixture_model"):
        raise CheckpointError(
            f"{source}: args['use_latent_mixture_model'] is True — the discretized logistic mixture "
            f"hyperprior is not implemented by rdbench's hific (the published models do not use it)"
        )
    if flag("sample_noise"):
        raise CheckpointError(
            f"{source}: args['sample_noise'] is True — a generator fed with random noise cannot decode "
            f"deterministically; rdbench's hific does not support it"
        )
    likelihood = get("likelihood_type")
    if likelihood not in ("gaussian", "logistic"):
        raise CheckpointError(f"{source}: args['likelihood_type'] must be 'gaussian' or 'logistic', got {likelihood!r}")
    return HiFiCConfig(
        latent_channels=integer("latent_channels", 1),
        n_residual_blocks=integer("n_residual_blocks", 1),
        use_channel_norm=flag("use_channel_norm"),
        likelihood_type=likelihood,
        normalize_input_image=flag("normalize_input_image"),
    )


# -- the network ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _arch():
    """The module classes, defined on first use so that importing this module stays cheap."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    class ChannelNorm2D(nn.Module):
        """Normalises each pixel's vector over the channels (unbiased variance), then γ·x + β."""

        def __init__(self, channels: int, eps: float = CHANNEL_NORM_EPS):
            super().__init__()
            self.eps = eps
            self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
            self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

        def forward(self, x):
            mean = x.mean(dim=1, keepdim=True)
            var = x.var(dim=1, keepdim=True)  # unbiased, as torch.var defaults to
            return self.gamma * ((x - mean) * torch.rsqrt(var + self.eps)) + self.beta

    def norm(channels: int, channel_norm: bool) -> nn.Module:
        if channel_norm:
            return ChannelNorm2D(channels)
        return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)

    class Encoder(nn.Module):
        def __init__(self, cfg: HiFiCConfig):
            super().__init__()
            f = ENCODER_FILTERS
            self.conv_block1 = nn.Sequential(
                nn.ReflectionPad2d(3), nn.Conv2d(3, f[0], 7), norm(f[0], cfg.use_channel_norm), nn.ReLU()
            )
            for i in range(1, len(f)):
                block = nn.Sequential(
                    nn.ReflectionPad2d((0, 1, 1, 0)),  # left, right, top, bottom
                    nn.Conv2d(f[i - 1], f[i], 3, stride=2),
                    norm(f[i], cfg.use_channel_norm),
                    nn.ReLU(),
                )
                self.add_module(f"conv_block{i + 1}", block)
            self.conv_block_out = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(f[-1], cfg.latent_channels, 3))

        def forward(self, x):
            for i in range(1, len(ENCODER_FILTERS) + 1):
                x = getattr(self, f"conv_block{i}")(x)
            return self.conv_block_out(x)

    class ResidualBlock(nn.Module):
        def __init__(self, channels: int, channel_norm: bool):
            super().__init__()
            self.pad = nn.ReflectionPad2d(1)
            self.conv1 = nn.Conv2d(channels, channels, 3)
            self.conv2 = nn.Conv2d(channels, channels, 3)
            self.norm1 = norm(channels, channel_norm)
            self.norm2 = norm(channels, channel_norm)

        def forward(self, x):
            res = F.relu(self.norm1(self.conv1(self.pad(x))))
            return self.norm2(self.conv2(self.pad(res))) + x

    class Generator(nn.Module):
        def __init__(self, cfg: HiFiCConfig):
            super().__init__()
            f = ENCODER_FILTERS[::-1]  # 960, 480, 240, 120, 60
            cn = cfg.use_channel_norm
            self.n_residual_blocks = cfg.n_residual_blocks
            self.conv_block_init = nn.Sequential(
                norm(cfg.latent_channels, cn), nn.ReflectionPad2d(1), nn.Conv2d(cfg.latent_channels, f[0], 3), norm(f[0], cn)
            )
            for m in range(cfg.n_residual_blocks):
                self.add_module(f"resblock_{m}", ResidualBlock(f[0], cn))
            for i in range(1, len(f)):
                block = nn.Sequential(
                    nn.ConvTranspose2d(f[i - 1], f[i], 3, stride=2, padding=1, output_padding=1), norm(f[i], cn), nn.ReLU()
                )
                self.add_module(f"upconv_block{i}", block)
            self.conv_block_out = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(f[-1], 3, 7))

        def forward(self, y):
            head = self.conv_block_init(y)
            x = head
            for m in range(self.n_residual_blocks):
                x = getattr(self, f"resblock_{m}")(x)
            x = x + head
            for i in range(1, len(ENCODER_FILTERS)):
                x = getattr(self, f"upconv_block{i}")(x)
            return self.conv_block_out(x)

    class HyperAnalysis(nn.Module):
        def __init__(self, C: int, N: int = HYPERLATENT_FILTERS):
            super().__init__()
            self.conv1 = nn.Conv2d(C, N, 3, stride=1, padding=1)
            self.conv2 = nn.Conv2d(N, N, 5, stride=2, padding=2, padding_mode="reflect")
            self.conv3 = nn.Conv2d(N, N, 5, stride=2, padding=2, padding_mode="reflect")

        def forward(self, y):
            return self.conv3(F.relu(self.conv2(F.relu(self.conv1(y)))))

    class HyperSynthesis(nn.Module):
        def __init__(self, C: int, N: int = HYPERLATENT_FILTERS):
            super().__init__()
            self.conv1 = nn.ConvTranspose2d(N, N, 5, stride=2, padding=2, output_padding=1)
            self.conv2 = nn.ConvTranspose2d(N, N, 5, stride=2, padding=2, output_padding=1)
            self.conv3 = nn.ConvTranspose2d(N, C, 3, stride=1, padding=1)

        def forward(self, z):
            return self.conv3(F.relu(self.conv2(F.relu(self.conv1(z)))))

    class FactorizedDensity(nn.Module):
        """Per-channel non-parametric density convolved with U(−½, ½) (Ballé 2018, §6.1)."""

        def __init__(self, channels: int = HYPERLATENT_FILTERS, filters=DENSITY_FILTERS, init_scale: float = 10.0):
            super().__init__()
            self.channels = channels
            self.filters = tuple(filters)
            dims = (1, *self.filters, 1)
            scale = init_scale ** (1 / (len(self.filters) + 1))
            for k in range(len(self.filters) + 1):
                h = torch.full((channels, dims[k + 1], dims[k]), float(np.log(np.expm1(1 / scale / dims[k + 1]))))
                self.register_parameter(f"H_{k}", nn.Parameter(h))
                self.register_parameter(f"a_{k}", nn.Parameter(torch.zeros(channels, dims[k + 1], 1)))
                b = torch.empty(channels, dims[k + 1], 1)
                if not b.is_meta:
                    nn.init.uniform_(b, -0.5, 0.5)
                self.register_parameter(f"b_{k}", nn.Parameter(b))

        def cdf_logits(self, x):
            """Logits of the cumulative density at ``x`` of shape (C, 1, L)."""
            for k in range(len(self.filters) + 1):
                x = torch.matmul(F.softplus(getattr(self, f"H_{k}")), x) + getattr(self, f"b_{k}")
                x = x + torch.tanh(getattr(self, f"a_{k}")) * torch.tanh(x)
            return x

        def likelihood_collapsed(self, x):
            """Probability of the unit bin around each value of ``x`` (C, 1, L)."""
            upper = self.cdf_logits(x + 0.5)
            lower = self.cdf_logits(x - 0.5)
            sign = -torch.sign(upper + lower)  # subtract in the tail where it is precise
            return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))

        def likelihood(self, z):
            """Likelihood of (N, C, H, W) hyper-latents (rounded), lower-bounded at 1e-9."""
            n, c, h, w = z.shape
            flat = z.permute(1, 0, 2, 3).reshape(c, 1, -1)
            lik = self.likelihood_collapsed(flat).reshape(c, n, h, w).permute(1, 0, 2, 3)
            return lik.clamp_min(LIKELIHOOD_BOUND)

    class Hyperprior(nn.Module):
        def __init__(self, cfg: HiFiCConfig):
            super().__init__()
            C = cfg.latent_channels
            self.analysis_net = HyperAnalysis(C)
            self.synthesis_mu = HyperSynthesis(C)
            self.synthesis_std = HyperSynthesis(C)
            self.hyperlatent_likelihood = FactorizedDensity(HYPERLATENT_FILTERS)

        def latent_parameters(self, z_hat):
            """(μ, σ) of the latents given the decoded hyper-latents; σ ≥ 0.11."""
            mu = self.synthesis_mu(z_hat)
            sigma = self.synthesis_std(z_hat).clamp_min(SCALE_LOWER_BOUND)
            return mu, sigma

    class HiFiCModel(nn.Module):
        """Encoder, Generator and Hyperprior under the published checkpoints' top-level names."""

        def __init__(self, cfg: HiFiCConfig):
            super().__init__()
            self.config = cfg
            self.Encoder = Encoder(cfg)
            self.Generator = Generator(cfg)
            self.Hyperprior = Hyperprior(cfg)

        def forward(self, x):
            """Evaluation pass without entropy coding: x in the model's input range → x̂ (same range)."""
            y = self.Encoder(x)
            z_hat = torch.round(self.Hyperprior.analysis_net(y))
            mu, sigma = self.Hyperprior.latent_parameters(z_hat)
            y_hat = torch.round(y - mu) + mu
            x_hat = self.Generator(y_hat)
            if self.config.normalize_input_image:
                x_hat = torch.tanh(x_hat)
            return x_hat

    return dict(
        ChannelNorm2D=ChannelNorm2D,
        Encoder=Encoder,
        Generator=Generator,
        Hyperprior=Hyperprior,
        FactorizedDensity=FactorizedDensity,
        HiFiCModel=HiFiCModel,
    )


def build_model(config: HiFiCConfig | None = None, *, device: str | None = None):
    """A HiFiC network (random init; ``device="meta"`` allocates nothing)."""
    import torch

    cls = _arch()["HiFiCModel"]
    config = config or HiFiCConfig()
    if device is None:
        return cls(config)
    with torch.device(device):
        return cls(config)


def parameter_counts(config: HiFiCConfig | None = None) -> dict[str, int]:
    """Parameters per part (Encoder, Generator, Hyperprior) and in total, without the discriminator."""
    net = build_model(config, device="meta")
    counts = {name: sum(p.numel() for p in part.parameters()) for name, part in net.named_children()}
    counts["total"] = sum(counts.values())
    return counts


# -- checkpoints ------------------------------------------------------------------------------

_GLOBAL_IN_MESSAGE = re.compile(r"GLOBAL ([\w.]+)|global ['\"]?([\w.]+)")


def _read(path: Path):
    """``torch.load(weights_only=True)`` allowing only ``argparse.Namespace`` besides tensors."""
    import torch

    with torch.serialization.safe_globals([argparse.Namespace]):
        try:  # memory-mapped: the optimizer states (two thirds of the published files) are never read
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except pickle.UnpicklingError:
            raise
        except Exception:  # e.g. the legacy (non-zip) format, which cannot be memory-mapped
            pass
        return torch.load(path, map_location="cpu", weights_only=True)


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], HiFiCConfig, dict[str, Any]]:
    """Read a HiFiC checkpoint safely: (model state dict, architecture, args).

    Raises :class:`~rdbench.codecs.weights.CheckpointError` naming what is wrong: an unreadable
    file, a pickled object of a type other than tensors, containers, primitives and
    ``argparse.Namespace``, a missing ``model_state_dict`` or ``args``, or invalid args.
    Keys and shapes are checked when the state dict is loaded (:func:`model_from_checkpoint`).
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"HiFiC checkpoint not found: {p}")
    try:
        obj = _read(p)
    except pickle.UnpicklingError as exc:
        m = _GLOBAL_IN_MESSAGE.search(str(exc))
        what = next(g for g in m.groups() if g) if m else None
        detail = f"a pickled object of type {what}" if what else "a pickled object"
        raise CheckpointError(
            f"HiFiC checkpoint {p} holds {detail}, which torch.load(weights_only=True) refuses to "
            f"unpickle (only tensors, containers, primitives and argparse.Namespace are allowed): "
            f"{first_line(exc)}"
        ) from exc
    except Exception as exc:  # zip/EOF/format errors
        raise CheckpointError(f"HiFiC checkpoint {p} cannot be read by torch.load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, Mapping) or "model_state_dict" not in obj:
        keys = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(
            f"{p} is not a HiFiC training checkpoint: no 'model_state_dict' (found: {keys})"
        )
    state_dict = obj["model_state_dict"]
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"{p}: 'model_state_dict' is not a mapping of parameter names to tensors")
    if "args" not in obj:
        raise CheckpointError(f"{p}: no 'args' entry, so the architecture cannot be rebuilt")
    args = obj["args"]
    if isinstance(args, argparse.Namespace):
        args = vars(args)
    if not isinstance(args, Mapping):
        raise CheckpointError(f"{p}: 'args' is a {type(args).__name__}, expected a dict or argparse.Namespace")
    config = config_from_args(args, source=str(p))
    prefix = "module."
    if state_dict and all(k.startswith(prefix) for k in state_dict):  # saved from DataParallel
        state_dict = {k[len(prefix) :]: v for k, v in state_dict.items()}
    return dict(state_dict), config, dict(args)


def model_from_checkpoint(state_dict: Mapping[str, Any], config: HiFiCConfig, *, source: str = "checkpoint"):
    """The network with ``state_dict`` loaded, after checking every key and shape."""
    import torch

    net = build_model(config, device="meta")
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    found = {k: v for k, v in state_dict.items() if not k.startswith(IGNORED_PREFIXES)}
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    wrong = [f"{k} (expected {list(expected[k])}, found {list(found[k].shape)})"
             for k in expected if k in found and tuple(found[k].shape) != expected[k]]
    problems = []
    if missing:
        problems.append(f"missing key(s): {', '.join(missing[:5])}" + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    if unexpected:
        problems.append(f"unexpected key(s): {', '.join(unexpected[:5])}" + (f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""))
    if wrong:
        problems.append(f"wrong shape(s): {'; '.join(wrong[:5])}" + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""))
    if problems:
        raise CheckpointError(
            f"{source} does not match the HiFiC architecture its args describe ({_describe(config)}): "
            + " — ".join(problems)
        )
    not_float = [k for k in expected if not torch.is_floating_point(found[k])]
    if not_float:
        raise CheckpointError(f"{source}: parameter(s) {', '.join(not_float[:5])} are not floating-point tensors")
    net.load_state_dict({k: found[k] for k in expected}, strict=True, assign=True)
    net = net.float()
    return net.eval().requires_grad_(False)


def _describe(cfg: HiFiCConfig) -> str:
    return ", ".join(f"{k}={v}" for k, v in asdict(cfg).items())


# -- entropy models ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _coders():
    import math as _math

    import torch

    import_compressai()
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    from compressai.models.base import get_scale_table

    class DensityBottleneck(EntropyBottleneck):
        """CompressAI's bottleneck coding with the CDF of a :class:`FactorizedDensity`.

        The median is pinned to 0, so symbols are round(z) exactly as the original quantizes.
        """

        def __init__(self, density):
            super().__init__(density.channels, filters=density.filters)
            object.__setattr__(self, "_density", density)  # not a submodule: no duplicate weights

        def _logits_cumulative(self, inputs, stop_gradient):
            return self._density.cdf_logits(inputs)

        def _likelihood(self, inputs, stop_gradient=False):
            lower = self._density.cdf_logits(inputs - 0.5)
            upper = self._density.cdf_logits(inputs + 0.5)
            sign = -torch.sign(upper + lower)
            return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)), lower, upper

        @torch.no_grad()
        def build(self):
            self._update_quantiles()  # bisection on the density's own CDF for the tails
            self.quantiles.data[:, 0, 1] = 0.0
            self.update(force=True)
            return self

    class LogisticConditional(GaussianConditional):
        """The conditional model with a logistic instead of a Gaussian CDF (``likelihood_type=logistic``)."""

        def _standardized_cumulative(self, inputs):
            return torch.sigmoid(inputs)

        @staticmethod
        def _standardized_quantile(quantile):
            return _math.log(quantile / (1 - quantile))

    def conditional(likelihood_type: str):
        cls = LogisticConditional if likelihood_type == "logistic" else GaussianConditional
        model = cls(None, scale_bound=SCALE_LOWER_BOUND)
        model.update_scale_table(get_scale_table(SCALE_LOWER_BOUND, 256, 64))  # as the original's table
        return model

    return DensityBottleneck, conditional


# -- the codec ---------------------------------------------------------------------------------


class HiFiC(TransformCodec):
    """HiFiC (Mentzer et al. 2020), the seed's PyTorch port; qualities 1/2/3 = low/med/high."""

    name = "hific"
    DEFAULT_QUALITIES = (1, 2, 3)
    PARAMS = {
        "weights": Param(
            "published",
            "published: <weights root>/hific/hific_{low,med,hi}.pt (Zenodo 4026003); random: untrained",
            choices=("published", "random"),
        ),
        "checkpoint": Param("", "checkpoint file; {quality} → low/med/hi, {regime} → low/med/high, {index} → 1/2/3"),
        "weights_root": Param("", "weights root (default $RDBENCH_WEIGHTS_ROOT, else codecs/)"),
        "seed": Param(0, "seed of weights=random", convert=int),
    }

    # -- identity / weights ------------------------------------------------------------------------
    def _prefix(self) -> str:
        return f"hific (rdbench port of Justin-Tan/high-fidelity-generative-compression; compressai {import_compressai().__version__} rANS)"

    def _weights_description(self) -> str:
        if self.random_weights:
            return f"UNTRAINED (random init of the published architectures, seed {self.params['seed']})"
        hashes = ", ".join(f"{REGIMES[q]}{hash_suffix(self._weights_file(q))}" for q in self.DEFAULT_QUALITIES)
        if self.params["checkpoint"]:
            return f"checkpoint {self.params['checkpoint']} ({hashes})"
        root = weights_root(self.params["weights_root"] or None)
        return f"published weights {root}/{WEIGHTS_SUBDIR}/hific_{{low,med,hi}}.pt ({ZENODO_RECORD}; {hashes})"

    def _checkpoint_path(self, quality: int) -> str:
        return (
            self.params["checkpoint"]
            .replace("{quality}", FILE_TOKENS[quality])
            .replace("{regime}", REGIMES[quality])
            .replace("{index}", str(quality))
        )

    def _weights_file(self, quality: int) -> str:
        if self.params["checkpoint"]:
            return self._checkpoint_path(quality)
        root = weights_root(self.params["weights_root"] or None)
        return str(root / WEIGHTS_SUBDIR / published_filename(quality))

    def _weights_key(self, quality: int) -> Hashable:
        """Random networks per quality (the regimes' architectures differ); files by path."""
        return quality if self.random_weights else self._weights_file(quality)

    def weights_available(self, qualities: Sequence[float] | None = None) -> bool:
        """Whether every quality's file is here (or the networks are random) — no download."""
        if self.random_weights:
            return True
        qs = [self._quality(q) for q in (qualities if qualities is not None else self.DEFAULT_QUALITIES)]
        return all(Path(self._weights_file(q)).is_file() for q in qs)

    def _build(self, quality: int) -> Loaded:
        import torch

        if self.random_weights:
            config = config_from_args(PUBLISHED_ARGS[quality], source="published args")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.params["seed"])
                net = build_model(config)
            net.eval().requires_grad_(False)
            label = f"UNTRAINED (random init of the published {REGIMES[quality]} architecture, seed {self.params['seed']})"
            identity = f"random:{quality}:{self.params['seed']}"
            args: dict[str, Any] = dict(PUBLISHED_ARGS[quality])
        else:
            path = self._weights_file(quality)
            if not Path(path).is_file():
                raise CheckpointError(self._missing_message(quality, path))
            state_dict, config, args = load_checkpoint(path)
            net = model_from_checkpoint(state_dict, config, source=path)
            label, identity = checkpoint_identity(path)
            regime = args.get("regime")
            if isinstance(regime, str):
                label += f", trained as regime {regime!r}"
        DensityBottleneck, conditional = _coders()
        hyper = net.Hyperprior
        coders = {
            "z": DensityBottleneck(hyper.hyperlatent_likelihood).build(),
            "y": conditional(net.config.likelihood_type),
        }
        return Loaded(net, label, weights_tag(self.name, identity), extra={"coders": coders, "args": args})

    def _missing_message(self, quality: int, path: str) -> str:
        if self.params["checkpoint"]:
            return f"hific: checkpoint {path} (quality {quality}, regime {REGIMES[quality]}) not found"
        name = published_filename(quality)
        return (
            f"hific: the published {REGIMES[quality]} weights are not at {path}. Download {name} "
            f"(~2 GB) from {ZENODO_RECORD} (e.g. curl -L -o {path} '{ZENODO_RECORD}/files/{name}?download=1'), "
            f"or set weights_root= / $RDBENCH_WEIGHTS_ROOT to a folder holding hific/{name}, or give checkpoint=."
        )

    def _place(self, loaded: Loaded) -> None:
        """Encoder, hyper-analysis and generator on the device; the hyper-synthesis stays on the CPU."""
        net = loaded.net
        if self.device == "cpu":
            loaded.analysis = (net.Encoder, net.Hyperprior.analysis_net)
            loaded.synthesis = net.Generator
        else:
            import copy

            loaded.analysis = (copy.deepcopy(net.Encoder).to(self.device), copy.deepcopy(net.Hyperprior.analysis_net).to(self.device))
            loaded.synthesis = copy.deepcopy(net.Generator).to(self.device)

    # -- coding ------------------------------------------------------------------------------------
    def _analysis(self, loaded: Loaded, x, h: int, w: int):
        """Encoder on the device, latents reflect-padded to a multiple of 4 (≥ 8)."""
        encoder, _ = loaded.analysis
        x = x.float().div(255)
        if loaded.net.config.normalize_input_image:
            x = x * 2 - 1
        x = _reflect_pad(x, _round_up(h, STRIDE) - h, _round_up(w, STRIDE) - w)
        y = encoder(x)
        yh, yw = y.shape[-2:]
        th, tw = max(_round_up(yh, LATENT_MULTIPLE), MIN_LATENT), max(_round_up(yw, LATENT_MULTIPLE), MIN_LATENT)
        y = _reflect_pad(y, th - yh, tw - yw)
        return y, STRIDE * th, STRIDE * tw

    def _entropy_encode(self, loaded: Loaded, y):
        import torch

        hyper = loaded.net.Hyperprior
        z_coder, y_coder = loaded.extra["coders"]["z"], loaded.extra["coders"]["y"]
        _, hyper_analysis = loaded.analysis
        with self._stage("hyperprior"):
            z = hyper_analysis(y.to(self.device)).float().cpu()
            z_hat = torch.round(z)
            mu, sigma = hyper.latent_parameters(z_hat)
            indexes = y_coder.build_indexes(sigma)
            y_hat = y_coder.quantize(y, "dequantize", mu)
            bits = -torch.log2(hyper.hyperlatent_likelihood.likelihood(z_hat).double()).sum()
            bits += -torch.log2(y_coder._likelihood(y_hat, sigma, mu).clamp_min(LIKELIHOOD_BOUND).double()).sum()
        with self._stage("entropy_coding"):
            z_string = z_coder.compress(z_hat)[0]
            y_string = y_coder.compress(y, indexes, means=mu)[0]
        return [z_string, y_string], tuple(int(v) for v in z.shape[-2:]), float(bits)

    def _entropy_decode(self, loaded: Loaded, strings: list[bytes], header: bitstream.Header):
        hyper = loaded.net.Hyperprior
        z_coder, y_coder = loaded.extra["coders"]["z"], loaded.extra["coders"]["y"]
        if len(strings) != 2 or len(header.shape) != 2:
            raise CodecError("hific: expected 2 strings and a 2-d hyper-latent shape in the stream")
        zh, zw = header.shape
        if STRIDE * LATENT_MULTIPLE * zh != header.padded_height or STRIDE * LATENT_MULTIPLE * zw != header.padded_width:
            raise CodecError(f"hific: hyper-latent shape {header.shape} does not match the padded size in the header")
        with self._stage("entropy_coding"):
            z_hat = z_coder.decompress([strings[0]], [zh, zw])
        with self._stage("hyperprior"):
            mu, sigma = hyper.latent_parameters(z_hat)
            indexes = y_coder.build_indexes(sigma)
        with self._stage("entropy_coding"):
            return y_coder.decompress([strings[1]], indexes, mu.dtype, means=mu)

    def _synthesis(self, loaded: Loaded, y_hat):
        import torch

        x_hat = loaded.synthesis(y_hat)
        if loaded.net.config.normalize_input_image:
            x_hat = (torch.tanh(x_hat) + 1) / 2
        return x_hat

    def _crop_offsets(self, header: bitstream.Header) -> tuple[int, int]:
        return 0, 0  # padded at the bottom and right


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _reflect_pad(x, pad_h: int, pad_w: int):
    """Reflect-pad at the bottom and right, in steps where the pad exceeds what one reflection allows."""
    import torch.nn.functional as F

    while pad_h > 0 or pad_w > 0:
        h, w = x.shape[-2:]
        step_h, step_w = min(pad_h, h - 1), min(pad_w, w - 1)
        if (pad_h and step_h <= 0) or (pad_w and step_w <= 0):  # a single row/column: repeat it
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
            break
        x = F.pad(x, (0, step_w, 0, step_h), mode="reflect")
        pad_h, pad_w = pad_h - step_h, pad_w - step_w
    return x
