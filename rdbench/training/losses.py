"""Training losses, each as its paper defines it; plain functions of tensors.

:func:`bpp` (the rate term), :class:`RateDistortionLoss` (the CompressAI zoo's rate + λ·distortion),
:func:`residual_loss` (Toderici 2017), :func:`importance_rate_loss` (Mentzer 2018), and the GAN
losses :func:`gan_d_loss`, :func:`gan_g_loss`, :func:`feature_matching_loss` (HiFiC, Agustsson
2019). Definitions: docs/training.md, section Losses.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "RateDistortionLoss",
    "bpp",
    "bpp_per_image",
    "feature_matching_loss",
    "gan_d_loss",
    "gan_g_loss",
    "importance_rate_loss",
    "psnr_from_mse",
    "residual_loss",
]

LN2 = math.log(2.0)


def bpp_per_image(likelihoods: Iterable[torch.Tensor], num_pixels: int) -> torch.Tensor:
    """−Σ log2 p per image (summed over every latent of the model) / pixels per image: shape (B,)."""
    total = None
    for lk in likelihoods:
        per = torch.log(lk).flatten(1).sum(1)
        total = per if total is None else total + per
    if total is None:
        raise ValueError("no likelihoods")
    return total / (-LN2 * num_pixels)


def bpp(likelihoods: Iterable[torch.Tensor], num_pixels: int) -> torch.Tensor:
    """The batch's mean bits per pixel (``num_pixels`` per image)."""
    return bpp_per_image(likelihoods, num_pixels).mean()


def psnr_from_mse(mse: float, peak: float = 1.0) -> float:
    """PSNR in dB of a mean squared error (``inf`` for 0)."""
    return float("inf") if mse <= 0 else 10.0 * math.log10(peak * peak / mse)


class RateDistortionLoss:
    """``R + λ·D`` with D = 255²·MSE (``metric="mse"``) or 1 − MS-SSIM (``metric="ms-ssim"``).

    ``__call__(output, target, lmbda=None)`` takes a CompressAI-style output dict
    (``x_hat``, ``likelihoods``) and [0, 1] images; ``lmbda`` (optional) overrides the
    configured λ with a tensor of one λ per image. Returns ``loss``, ``bpp``, ``mse`` and,
    for MS-SSIM, ``ms_ssim`` (all tensors; ``loss`` differentiable).
    """

    METRICS = ("mse", "ms-ssim")

    def __init__(self, lmbda: float = 0.01, metric: str = "mse"):
        if metric not in self.METRICS:
            raise ValueError(f"metric must be one of {self.METRICS}, got {metric!r}")
        self.lmbda = float(lmbda)
        self.metric = metric

    def __call__(self, output: Mapping, target: torch.Tensor, lmbda: torch.Tensor | None = None) -> dict:
        n, _, h, w = target.shape
        rate = bpp_per_image(output["likelihoods"].values(), h * w)  # (B,)
        x_hat = output["x_hat"]
        mse = (x_hat - target).pow(2).flatten(1).mean(1)  # (B,)
        out = {"bpp": rate.mean(), "mse": mse.mean()}
        if self.metric == "mse":
            distortion = 255.0**2 * mse
        else:
            from pytorch_msssim import ms_ssim

            ms = ms_ssim(x_hat, target, data_range=1.0, size_average=False)  # (B,)
            out["ms_ssim"] = ms.mean()
            distortion = 1.0 - ms
        lm = self.lmbda if lmbda is None else lmbda.to(distortion)
        out["loss"] = (rate + lm * distortion).mean()
        return out


def residual_loss(residuals: Sequence[torch.Tensor], norm: str = "l1") -> torch.Tensor:
    """Toderici et al. 2017: mean over iterations of the mean |residual| (L1) or residual² (L2)."""
    if not residuals:
        raise ValueError("no residuals")
    if norm not in ("l1", "l2"):
        raise ValueError(f"norm must be l1 or l2, got {norm!r}")
    terms = [r.abs().mean() if norm == "l1" else r.pow(2).mean() for r in residuals]
    return torch.stack(terms).mean()


def importance_rate_loss(entropy_bits: torch.Tensor, target_bits: float, beta: float = 1.0) -> torch.Tensor:
    """Mentzer et al. 2018's rate term β·max(H − t, 0): no pressure once under the target."""
    return beta * torch.clamp(entropy_bits - target_bits, min=0.0)


def gan_d_loss(real_logits: Sequence[torch.Tensor], fake_logits: Sequence[torch.Tensor], kind: str = "ls") -> torch.Tensor:
    """Discriminator loss summed over the scales of a (multiscale) discriminator.

    ``ls``: E[(D(x) − 1)²] + E[D(x̂)²] (least squares, Mao et al. 2017, used by Agustsson 2019);
    ``ns``: −log σ(D(x)) − log(1 − σ(D(x̂))) (non-saturating, Goodfellow 2014, used by HiFiC).
    """
    total = 0.0
    for real, fake in zip(real_logits, fake_logits, strict=True):
        if kind == "ls":
            total = total + (real - 1).pow(2).mean() + fake.pow(2).mean()
        elif kind == "ns":
            total = total + F.softplus(-real).mean() + F.softplus(fake).mean()
        else:
            raise ValueError(f"GAN loss kind must be ls or ns, got {kind!r}")
    return total


def gan_g_loss(fake_logits: Sequence[torch.Tensor], kind: str = "ls") -> torch.Tensor:
    """Generator loss: ``ls`` E[(D(x̂) − 1)²]; ``ns`` −log σ(D(x̂)); summed over scales."""
    total = 0.0
    for fake in fake_logits:
        if kind == "ls":
            total = total + (fake - 1).pow(2).mean()
        elif kind == "ns":
            total = total + F.softplus(-fake).mean()
        else:
            raise ValueError(f"GAN loss kind must be ls or ns, got {kind!r}")
    return total


def feature_matching_loss(real_features: Sequence[Sequence[torch.Tensor]], fake_features: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """pix2pixHD's feature matching: mean L1 between the discriminator's features of x and x̂,
    over every layer of every scale (real features detached)."""
    total, count = 0.0, 0
    for real_scale, fake_scale in zip(real_features, fake_features, strict=True):
        for r, f in zip(real_scale, fake_scale, strict=True):
            total = total + (f - r.detach()).abs().mean()
            count += 1
    return total / max(count, 1)
