"""Synthetic HiFiC checkpoints with the published files' layout, for testing the loading path.

The published ``hific_{low,med,hi}.pt`` (Zenodo 4026003, ~2 GB each) are what the seed's
``utils.save_model`` writes for a ``compression_gan`` model::

    {"model_state_dict": Model.state_dict(),            # Encoder.*, Generator.*, Hyperprior.*, Discriminator.*
     "compression_optimizer_state_dict": ..., "hyperprior_optimizer_state_dict": ...,
     "discriminator_state_dict": ..., "discriminator_optimizer_state_dict": ...,
     "epoch": int, "steps": int, "args": {every field of the training config}}

:func:`published_layout` lists the state-dict keys and shapes from the seed's module tree,
written out here independently of :mod:`rdbench.codecs.seeds.hific` (so the tests check that
module's tree against it rather than against itself). :func:`write_checkpoint` fills them with
random values of a sensible scale and saves the file with ``torch.save``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

ENCODER_FILTERS = (60, 120, 240, 480, 960)
HYPER_FILTERS = 320
DENSITY_DIMS = (1, 3, 3, 3, 1)
DISC_FILTERS = (64, 128, 256, 512)
DISC_CONTEXT = 12

#: regime → the architecture fields of the published args (README training commands)
REGIME_ARGS = {
    "low": {"normalize_input_image": True, "likelihood_type": "gaussian"},
    "med": {"normalize_input_image": False, "likelihood_type": "logistic"},
    "high": {"normalize_input_image": True, "likelihood_type": "gaussian"},
}


class Struct:
    """Stands in for the seed's ``src.helpers.utils.Struct``: a pickled type weights_only refuses."""

    def __init__(self, **entries):
        self.__dict__.update(entries)


def published_layout(latent_channels: int = 220, n_residual_blocks: int = 9, channel_norm: bool = True,
                     discriminator: bool = True) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of every tensor of the published ``model_state_dict``, in the file's order."""
    C = latent_channels
    out: list[tuple[str, tuple[int, ...]]] = []

    def conv(prefix, cin, cout, k):
        out.extend([(f"{prefix}.weight", (cout, cin, k, k)), (f"{prefix}.bias", (cout,))])

    def conv_t(prefix, cin, cout, k):  # ConvTranspose2d weights are (in, out, k, k)
        out.extend([(f"{prefix}.weight", (cin, cout, k, k)), (f"{prefix}.bias", (cout,))])

    def norm(prefix, c):
        if channel_norm:  # ChannelNorm2D
            out.extend([(f"{prefix}.gamma", (1, c, 1, 1)), (f"{prefix}.beta", (1, c, 1, 1))])
        else:  # nn.InstanceNorm2d(affine=True, track_running_stats=False)
            out.extend([(f"{prefix}.weight", (c,)), (f"{prefix}.bias", (c,))])

    # Encoder: conv_blockN = Sequential(pad, conv, norm, act); conv_block_out = Sequential(pad, conv)
    f = ENCODER_FILTERS
    conv("Encoder.conv_block1.1", 3, f[0], 7)
    norm("Encoder.conv_block1.2", f[0])
    for i in range(1, 5):
        conv(f"Encoder.conv_block{i + 1}.1", f[i - 1], f[i], 3)
        norm(f"Encoder.conv_block{i + 1}.2", f[i])
    conv("Encoder.conv_block_out.1", f[4], C, 3)

    # Generator: conv_block_init = Sequential(norm, pad, conv, norm)
    g = f[::-1]
    norm("Generator.conv_block_init.0", C)
    conv("Generator.conv_block_init.2", C, g[0], 3)
    norm("Generator.conv_block_init.3", g[0])
    for m in range(n_residual_blocks):  # ResidualBlock registers pad, conv1, conv2, norm1, norm2
        conv(f"Generator.resblock_{m}.conv1", g[0], g[0], 3)
        conv(f"Generator.resblock_{m}.conv2", g[0], g[0], 3)
        norm(f"Generator.resblock_{m}.norm1", g[0])
        norm(f"Generator.resblock_{m}.norm2", g[0])
    for i in range(1, 5):  # upconv_blockN = Sequential(convT, norm, act)
        conv_t(f"Generator.upconv_block{i}.0", g[i - 1], g[i], 3)
        norm(f"Generator.upconv_block{i}.1", g[i])
    conv("Generator.conv_block_out.1", g[4], 3, 7)

    # Hyperprior
    N = HYPER_FILTERS
    conv("Hyperprior.analysis_net.conv1", C, N, 3)
    conv("Hyperprior.analysis_net.conv2", N, N, 5)
    conv("Hyperprior.analysis_net.conv3", N, N, 5)
    for part in ("synthesis_mu", "synthesis_std"):
        conv_t(f"Hyperprior.{part}.conv1", N, N, 5)
        conv_t(f"Hyperprior.{part}.conv2", N, N, 5)
        conv_t(f"Hyperprior.{part}.conv3", N, C, 3)
    d = DENSITY_DIMS
    for k in range(4):
        out.append((f"Hyperprior.hyperlatent_likelihood.H_{k}", (N, d[k + 1], d[k])))
        out.append((f"Hyperprior.hyperlatent_likelihood.a_{k}", (N, d[k + 1], 1)))
        out.append((f"Hyperprior.hyperlatent_likelihood.b_{k}", (N, d[k + 1], 1)))

    if discriminator:
        out.extend(("Discriminator." + k, s) for k, s in discriminator_layout(C))
    return out


def discriminator_layout(latent_channels: int = 220) -> list[tuple[str, tuple[int, ...]]]:
    """The discriminator's keys: a context conv and four spectral-normalised 4×4 convs."""
    out = [("context_conv.weight", (DISC_CONTEXT, latent_channels, 3, 3)), ("context_conv.bias", (DISC_CONTEXT,))]
    cin = 3 + DISC_CONTEXT
    for i, cout in enumerate(DISC_FILTERS, start=1):
        out += [(f"conv{i}.bias", (cout,)), (f"conv{i}.weight_orig", (cout, cin, 4, 4)),
                (f"conv{i}.weight_u", (cout,)), (f"conv{i}.weight_v", (cin * 16,))]
        cin = cout
    out += [("conv_out.weight", (1, cin, 1, 1)), ("conv_out.bias", (1,))]
    return out


def published_args(regime: str = "low", **overrides: Any) -> dict[str, Any]:
    """The ``args`` dict save_model writes: default_config.hific_args + train.py's options."""
    name = f"hific_v0.1_openimages_compression_gan_2020_08_29_12_00"
    snapshot = f"experiments/{name}"
    args = {
        "batch_size": 8, "beta": 0.15, "checkpoints_save": f"{snapshot}/checkpoints", "crop_size": 256,
        "dataset": "openimages", "dataset_path": "data/openimages", "discriminator_steps": 1,
        "figures_save": f"{snapshot}/figures", "force_set_gpu": False, "gan_loss_type": "non_saturating",
        "gpu": 0, "ignore_schedule": False, "image_dims": (3, 256, 256), "k_M": 0.075 * 2 ** -5, "k_P": 1.0,
        "lambda_A": {"low": 2.0, "med": 1.0, "high": 0.5}[regime],
        "lambda_A_map": {"low": 2.0, "med": 1.0, "high": 0.5}, "lambda_B": 2 ** -4,
        "lambda_schedule": {"vals": [2.0, 1.0], "steps": [50000]}, "latent_channels": 220,
        "latent_channels_DLMM": 64, "latent_dims": (220, 16, 16), "learning_rate": 1e-4,
        "likelihood_type": REGIME_ARGS[regime]["likelihood_type"], "log_interval": 1000,
        "lr_schedule": {"vals": [1.0, 0.1], "steps": [500000]}, "mixture_components": 4,
        "model_mode": "training", "model_type": "compression_gan", "multigpu": False, "n_data": 1743042,
        "n_epochs": 8, "n_residual_blocks": 9, "n_steps": 1000000, "name": name, "noise_dim": 32,
        "normalize_input_image": REGIME_ARGS[regime]["normalize_input_image"], "regime": regime,
        "sample_noise": False, "save": "experiments", "save_interval": 50000, "shuffle": True, "silent": True,
        "snapshot": snapshot, "storage_save": f"{snapshot}/storage", "target_rate": {"low": 0.14, "med": 0.3, "high": 0.45}[regime],
        "target_rate_map": {"low": 0.14, "med": 0.3, "high": 0.45},
        "target_schedule": {"vals": [0.20 / 0.14, 1.0], "steps": [50000]},
        "tensorboard_runs": f"{snapshot}/tensorboard", "use_channel_norm": True,
        "use_latent_mixture_model": False, "warmstart": True, "warmstart_ckpt": "experiments/base/checkpoints/base.pt",
        "weight_decay": 1e-6, "timestamp": "2020_08_30_09:00",
    }
    args.update(overrides)
    return args


def random_state_dict(layout, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors for a layout, scaled as PyTorch's default initialisation would."""
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for key, shape in layout:
        leaf = key.rsplit(".", 1)[-1]
        t = torch.empty(shape)
        if leaf in ("weight", "weight_orig") and len(shape) == 4:
            bound = 1 / math.sqrt(shape[1] * shape[2] * shape[3])
            t.uniform_(-bound, bound, generator=gen)
        elif leaf == "bias":
            t.uniform_(-0.05, 0.05, generator=gen)
        elif leaf in ("gamma", "weight"):
            t.normal_(1.0, 0.05, generator=gen)
        elif leaf == "beta":
            t.normal_(0.0, 0.05, generator=gen)
        elif leaf.startswith("H_"):
            t.normal_(math.log(math.expm1(1 / 10 ** 0.25 / shape[1])), 0.1, generator=gen)
        elif leaf.startswith("a_"):
            t.normal_(0.0, 0.1, generator=gen)
        elif leaf.startswith("b_"):
            t.uniform_(-0.5, 0.5, generator=gen)
        else:  # spectral-norm vectors
            t = torch.nn.functional.normalize(t.normal_(generator=gen), dim=0)
        sd[key] = t
    return sd


def compact_state_dict(layout, seed: int = 0) -> dict[str, torch.Tensor]:
    """Every tensor a view into one shared random storage: the file stays small (~35 MB for the
    full published layout) while keys, shapes and dtypes are exactly the published ones. For tests
    of the loading checks, where the values do not matter."""
    gen = torch.Generator().manual_seed(seed)
    biggest = max(math.prod(shape) for _, shape in layout)
    base = (torch.rand(biggest + 4096, generator=gen) * 2 - 1) * 0.05
    return {key: base[(i * 7919) % 4096 :][: math.prod(shape)].view(shape) for i, (key, shape) in enumerate(layout)}


def _optimizer_state(n_params: int, lr: float = 1e-4) -> dict[str, Any]:
    """An Adam state dict's structure (without per-parameter moments, which nobody reads)."""
    return {"state": {}, "param_groups": [{"lr": lr, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-6,
                                           "amsgrad": False, "params": list(range(n_params))}]}


def write_checkpoint(path: str | Path, regime: str = "low", *, seed: int = 0, args_as: str = "dict",
                     drop: str | None = None, reshape: str | None = None, args_overrides: dict | None = None,
                     compact: bool = False, **layout_kwargs: Any) -> Path:
    """Write a synthetic checkpoint with the published layout; returns the path.

    ``args_as``: ``dict`` (what save_model writes), ``namespace`` (an argparse.Namespace) or
    ``struct`` (an arbitrary pickled class, which a safe loader must refuse). ``drop`` removes one
    state-dict key; ``reshape`` gives one key a wrong shape. ``layout_kwargs`` (latent_channels,
    n_residual_blocks, channel_norm) make smaller variants; the args say so. ``compact`` shares
    one random storage between all tensors (:func:`compact_state_dict`).
    """
    import argparse

    overrides = dict(args_overrides or {})
    for k in ("latent_channels", "n_residual_blocks"):
        if k in layout_kwargs:
            overrides.setdefault(k, layout_kwargs[k])
    if "channel_norm" in layout_kwargs:
        overrides.setdefault("use_channel_norm", layout_kwargs["channel_norm"])
    args = published_args(regime, **overrides)
    layout = published_layout(**layout_kwargs)
    sd = (compact_state_dict if compact else random_state_dict)(layout, seed)
    if drop is not None:
        del sd[drop]
    if reshape is not None:
        t = sd[reshape]
        sd[reshape] = torch.zeros(t.shape[0] + 1, *t.shape[1:])
    disc = {k[len("Discriminator."):]: v for k, v in sd.items() if k.startswith("Discriminator.")}
    n_model = sum(1 for k in sd if not k.startswith("Discriminator."))
    packed_args: Any = {"dict": lambda a: a, "namespace": lambda a: argparse.Namespace(**a),
                        "struct": lambda a: Struct(**a)}[args_as](args)
    ckpt = {
        "model_state_dict": sd,
        "compression_optimizer_state_dict": _optimizer_state(n_model),
        "hyperprior_optimizer_state_dict": _optimizer_state(12),
        "epoch": 5,
        "steps": 1000001,
        "args": packed_args,
        "discriminator_state_dict": disc,  # the same tensors: stored once in the file
        "discriminator_optimizer_state_dict": _optimizer_state(len(disc)),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


def count(layout) -> int:
    return sum(math.prod(shape) for _, shape in layout)
