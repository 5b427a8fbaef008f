"""Training recipes of the seed systems (``rdbench.codecs.seeds``), registered lazily by
:mod:`rdbench.training.loop`.

``balle2018`` and ``xiao2019`` use the CompressAI recipe; ``toderici2017``, ``mentzer2018``,
``agustsson2019`` and ``hific`` each train with their paper's loss (one line each in
docs/training.md, section Recipes).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence

from rdbench.training.loop import CompressAIRecipe, Recipe, TrainConfig, TrainingError, _eval_metrics, _mean_rows

__all__ = ["Agustsson2019Recipe", "Balle2018Recipe", "HiFiCRecipe", "Mentzer2018Recipe", "SimpleRecipe", "Toderici2017Recipe", "Xiao2019Recipe"]


class _SeedHyperpriorRecipe(CompressAIRecipe):
    """A seed network built by ``<module>.network(N, M)`` (default N = M = 192, the seed's)."""

    module = ""

    def __init__(self):
        super().__init__(self.name)

    def default_args(self, cfg: TrainConfig) -> tuple:
        from rdbench.codecs.seeds.balle2018 import SEED_FILTERS

        return (SEED_FILTERS, SEED_FILTERS)

    def build(self, cfg: TrainConfig):
        import importlib

        network = importlib.import_module(self.module).network
        return network(**cfg.model_args) if cfg.model_args else network(*self.default_args(cfg))


class Balle2018Recipe(_SeedHyperpriorRecipe):
    name = "balle2018"
    module = "rdbench.codecs.seeds.balle2018"


class Xiao2019Recipe(_SeedHyperpriorRecipe):
    name = "xiao2019"
    module = "rdbench.codecs.seeds.xiao2019"


class SimpleRecipe(Recipe):
    """One Adam optimiser (``main``), gradient clipping, :meth:`batch_loss` does the rest."""

    def optimizers(self, model, cfg: TrainConfig) -> dict:
        import torch

        return {"main": torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)}

    def train_step(self, model, optimizers: dict, x, cfg: TrainConfig) -> dict[str, float]:
        import torch

        model.train()
        opt = optimizers["main"]
        opt.zero_grad(set_to_none=True)
        terms = self.batch_loss(model, x, cfg)
        if not torch.isfinite(terms["loss"]):
            raise TrainingError(f"non-finite loss {float(terms['loss'])} (lower --lr?)")
        terms["loss"].backward()
        if cfg.clip_max_norm > 0:
            torch.nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], cfg.clip_max_norm)
        opt.step()
        return {k: float(v.detach()) if hasattr(v, "detach") else float(v) for k, v in terms.items()}

    def export(self, model, cfg: TrainConfig) -> dict[str, dict]:
        net = copy.deepcopy(model).cpu().eval()
        return {"checkpoint-final.pth": {k: v.detach().clone() for k, v in net.state_dict().items()}}


class Toderici2017Recipe(SimpleRecipe):
    """Residual GRU, stochastic binariser, mean residual L1 over iterations."""

    name = "toderici2017"

    def _args(self, cfg: TrainConfig) -> dict:
        from rdbench.codecs.seeds.toderici2017 import ITERATIONS

        args = {"iterations": ITERATIONS, "cell": "gru", "norm": "l1", **cfg.model_args}
        if args["norm"] not in ("l1", "l2"):
            raise TrainingError(f"toderici2017: norm must be l1 or l2, got {args['norm']!r}")
        return args

    def build(self, cfg: TrainConfig):
        from rdbench.codecs.seeds.toderici2017 import ResidualGRUNet

        if cfg.crop % 16:
            raise TrainingError("toderici2017: --crop must be a multiple of 16 (the codes are at 1/16 resolution)")
        return ResidualGRUNet(self._args(cfg)["cell"])

    @staticmethod
    def unroll(model, x, iterations: int, stochastic: bool):
        """Residuals after each iteration (x in [−0.5, 0.5]) and the final reconstruction."""
        import torch

        enc_state: list = [None] * 3
        dec_state: list = [None] * 4
        recon = torch.zeros_like(x)
        residual = x
        residuals = []
        for _ in range(iterations):
            e, enc_state = model.encoder(residual, enc_state)
            p = torch.tanh(model.binarizer.conv(e))
            if stochastic:  # E[b] = p; the gradient passes straight through (Toderici et al. 2016)
                hard = torch.where(torch.rand_like(p) < (1 + p) / 2, 1.0, -1.0).to(p.dtype)
            else:
                hard = torch.where(p >= 0, 1.0, -1.0).to(p.dtype)
            b = p + (hard - p).detach()
            out, dec_state = model.decoder(b, dec_state)
            recon = recon + out
            residual = x - recon
            residuals.append(residual)
        return residuals, recon

    def batch_loss(self, model, x, cfg: TrainConfig) -> dict:
        from rdbench.training.losses import residual_loss

        args = self._args(cfg)
        residuals, recon = self.unroll(model, x - 0.5, int(args["iterations"]), stochastic=model.training)
        loss = residual_loss(residuals, args["norm"])
        mse = ((recon + 0.5).clamp(0, 1) - x).pow(2).mean()
        return {"loss": loss, "mse": mse, "psnr": 10 * math.log10(1 / max(float(mse), 1e-12)),
                "bpp": 0.125 * int(args["iterations"])}

    def evaluate(self, model, images: Sequence, cfg: TrainConfig) -> list[dict[str, float]]:
        import torch

        from rdbench.training.losses import residual_loss

        total = int(self._args(cfg)["iterations"])
        rows = []
        model.eval()
        with torch.no_grad():
            for t in sorted({1, max(1, total // 2), total}):
                per = []
                for x in images:
                    residuals, recon = self.unroll(model, x - 0.5, t, stochastic=False)
                    row = _eval_metrics(recon + 0.5, x, 0.125 * t)
                    row["loss"] = float(residual_loss(residuals, self._args(cfg)["norm"]))
                    per.append(row)
                rows.append({**_mean_rows(per), "quality": t})
        model.train()
        return rows


class Mentzer2018Recipe(SimpleRecipe):
    """Mentzer et al. 2018: distortion + β·max(½(H_mask + H_real) − H_target, 0).

    ``model_args``: ``C`` (32), ``H_target`` bits per symbol (1.2, the ``med`` configuration;
    0.4 ``low``, 1.0 ``high`` with C=64), ``beta`` (500), ``distortion`` — ``ms-ssim``
    (the seed's 5000·(1 − MS-SSIM); crops must exceed 160 px) or ``mse`` (``d_weight``·MSE on
    the 0–255 scale, for small crops). The autoencoder and centres minimise that loss; the
    3-D context model minimises its own cross-entropy H_real on a separate Adam optimiser
    (``pc_lr``, 1e-4), as in the seed.
    """

    name = "mentzer2018"

    def _args(self, cfg: TrainConfig) -> dict:
        args = {"C": 32, "H_target": 1.2, "beta": 500.0, "distortion": "ms-ssim", "d_weight": None,
                "pc_lr": 1e-4, **cfg.model_args}
        if args["distortion"] not in ("ms-ssim", "mse"):
            raise TrainingError(f"mentzer2018: distortion must be ms-ssim or mse, got {args['distortion']!r}")
        if args["d_weight"] is None:
            args["d_weight"] = 5000.0 if args["distortion"] == "ms-ssim" else 1.0
        return args

    def build(self, cfg: TrainConfig):
        from rdbench.codecs.seeds.mentzer2018 import Mentzer2018Net

        args = self._args(cfg)
        if cfg.crop % 8:
            raise TrainingError("mentzer2018: --crop must be a multiple of 8")
        if args["distortion"] == "ms-ssim" and cfg.crop <= 160:
            raise TrainingError("mentzer2018: MS-SSIM needs crops larger than 160 px (or model_args distortion=mse)")
        return Mentzer2018Net(int(args["C"]))

    def optimizers(self, model, cfg: TrainConfig) -> dict:
        import torch

        pc = list(model.probclass.parameters())
        ids = {id(p) for p in pc}
        ae = [p for p in model.parameters() if id(p) not in ids]
        return {"main": torch.optim.Adam(ae, lr=cfg.lr), "probclass": torch.optim.Adam(pc, lr=self._args(cfg)["pc_lr"])}

    def batch_loss(self, model, x, cfg: TrainConfig) -> dict:
        import torch

        args = self._args(cfg)
        out = model(x * 255)
        x_hat = out["x_hat"] / 255
        mse = (x_hat - x).pow(2).mean()
        if args["distortion"] == "ms-ssim":
            from pytorch_msssim import ms_ssim

            ms = ms_ssim(x_hat, x, data_range=1.0)
            distortion = args["d_weight"] * (1 - ms)
        else:
            distortion = args["d_weight"] * mse * 255**2
        h_soft = 0.5 * (out["H_mask"] + out["H_real"])
        from rdbench.training.losses import importance_rate_loss

        rate = importance_rate_loss(h_soft, float(args["H_target"]), float(args["beta"]))
        symbols_per_pixel = model.C / 64  # ×8 subsampling
        terms = {"loss": distortion + rate, "pc_loss": out["H_real"], "mse": mse,
                 "bpp": out["H_real"].detach() * symbols_per_pixel, "H_mask": out["H_mask"].detach()}
        if args["distortion"] == "ms-ssim":
            terms["ms_ssim"] = ms
        return terms

    def train_step(self, model, optimizers: dict, x, cfg: TrainConfig) -> dict[str, float]:
        import torch

        model.train()
        main, pc = optimizers["main"], optimizers["probclass"]
        main.zero_grad(set_to_none=True)
        pc.zero_grad(set_to_none=True)
        terms = self.batch_loss(model, x, cfg)
        if not torch.isfinite(terms["loss"]):
            raise TrainingError(f"non-finite loss {float(terms['loss'])} (lower --lr?)")
        ae_params = main.param_groups[0]["params"]
        terms["loss"].backward(inputs=ae_params, retain_graph=True)
        terms["pc_loss"].backward(inputs=pc.param_groups[0]["params"])
        if cfg.clip_max_norm > 0:
            torch.nn.utils.clip_grad_norm_(ae_params, cfg.clip_max_norm)
        main.step()
        pc.step()
        row = {k: float(v.detach()) for k, v in terms.items()}
        row["psnr"] = 10 * math.log10(1 / max(row["mse"], 1e-12))
        return row

    def evaluate(self, model, images: Sequence, cfg: TrainConfig) -> list[dict[str, float]]:
        import torch

        rows = []
        model.eval()
        with torch.no_grad():
            for x in images:
                q = model.quantize(model.encoder(x * 255))
                bits = model.bitcost(q.qbar, q.symbols)
                k = torch.arange(model.C, device=x.device).reshape(1, -1, 1, 1)
                coded = (k < q.nmap.unsqueeze(1)).to(bits.dtype)
                rate = float((bits * coded).sum()) / (x.shape[-2] * x.shape[-1])
                rows.append(_eval_metrics(model.decoder(q.qbar) / 255, x, rate))
        model.train()
        return [_mean_rows(rows)]


def _multiscale_discriminator(scales: int = 3, channels: int = 64, in_channels: int = 3):
    """pix2pixHD's multiscale PatchGAN (Agustsson 2019's discriminator): at each scale (the image,
    then average-pooled 3×3/2 once, twice) conv 4×4/2 → c + LeakyReLU 0.2, three conv 4×4 blocks
    → 2c, 4c, 8c (stride 2, 2, 1) with instance norm + LeakyReLU, conv 4×4 → 1 logit map.
    ``forward`` returns, per scale, the list of every layer's output (the last is the logits)."""
    import torch.nn.functional as F
    from torch import nn

    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            c = channels
            layers = [nn.Sequential(nn.Conv2d(in_channels, c, 4, 2, 2), nn.LeakyReLU(0.2))]
            for i, stride in enumerate((2, 2, 1)):
                cin, cout = c * 2**i, c * 2 ** (i + 1)
                layers.append(nn.Sequential(nn.Conv2d(cin, cout, 4, stride, 2), nn.InstanceNorm2d(cout, affine=True),
                                            nn.LeakyReLU(0.2)))
            layers.append(nn.Conv2d(c * 8, 1, 4, 1, 2))
            self.layers = nn.ModuleList(layers)

        def forward(self, x):
            feats = []
            for layer in self.layers:
                x = layer(x)
                feats.append(x)
            return feats

    class MultiScale(nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = nn.ModuleList(Scale() for _ in range(scales))

        def forward(self, x):
            out = []
            for i, d in enumerate(self.scales):
                if i:
                    x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
                out.append(d(x))
            return out

    return MultiScale()


class Agustsson2019Recipe(SimpleRecipe):
    """Agustsson et al. 2019 (global generative compression), as its public port trains it.

    Encoder → C channels, soft-to-hard quantisation to the centres {−2…2} (soft =
    softmax(−|w − c|)·c, straight-through hard values), generator; a multiscale discriminator
    (:func:`_multiscale_discriminator`). Generator loss: least-squares GAN + 12·MSE on [−1, 1]
    images + 10·feature matching; discriminator: least-squares (``gan: "ns"`` for the
    non-saturating form). Adam with β₁ = 0.5 for both. ``model_args``: ``C`` (8), ``noise`` (0),
    ``blocks`` (9), ``disc_channels`` (64), ``disc_scales`` (3), ``mse_weight`` (12),
    ``fm_weight`` (10), ``gan``. The rate is fixed: C·log2(5)/256 bpp. Exports the
    ``GenerativeCompressionNet`` state dict, which ``agustsson2019:checkpoint=`` loads.
    """

    name = "agustsson2019"

    def _args(self, cfg: TrainConfig) -> dict:
        args = {"C": 8, "noise": 0, "blocks": 9, "disc_channels": 64, "disc_scales": 3, "mse_weight": 12.0,
                "fm_weight": 10.0, "gan": "ls", **cfg.model_args}
        if args["gan"] not in ("ls", "ns"):
            raise TrainingError(f"agustsson2019: gan must be ls or ns, got {args['gan']!r}")
        return args

    def build(self, cfg: TrainConfig):
        from torch import nn

        from rdbench.codecs.seeds.agustsson2019 import GenerativeCompressionNet

        args = self._args(cfg)
        if cfg.crop % 16 or cfg.crop < 32:
            raise TrainingError("agustsson2019: --crop must be a multiple of 16, at least 32")
        model = nn.Module()
        model.net = GenerativeCompressionNet(int(args["C"]), int(args["noise"]), int(args["blocks"]))
        model.disc = _multiscale_discriminator(int(args["disc_scales"]), int(args["disc_channels"]))
        return model

    def optimizers(self, model, cfg: TrainConfig) -> dict:
        import torch

        return {"main": torch.optim.Adam(model.net.parameters(), lr=cfg.lr, betas=(0.5, 0.999)),
                "disc": torch.optim.Adam(model.disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999))}

    @staticmethod
    def reconstruct(net, x2, hard_only: bool = False):
        """x̂ in [−1, 1] from x in [−1, 1] (soft-to-hard quantisation; noise in training)."""
        import torch

        w = net.encoder(x2)
        dist = (w.unsqueeze(-1) - net.centers).abs()
        hard = net.centers[dist.argmin(dim=-1)]
        if hard_only:
            w_bar = hard
        else:
            soft = (torch.softmax(-dist, dim=-1) * net.centers).sum(-1)
            w_bar = soft + (hard - soft).detach()
        if net.noise:
            n, _, h, w_ = w_bar.shape
            w_bar = torch.cat([w_bar, torch.randn(n, net.noise, h, w_, device=w_bar.device)], dim=1)
        return net.generator(w_bar)

    def _g_terms(self, model, x2, x_hat, args) -> dict:
        from rdbench.training.losses import feature_matching_loss, gan_g_loss

        fake = model.disc(x_hat)
        with __import__("torch").no_grad():
            real = model.disc(x2)
        mse = (x_hat - x2).pow(2).mean()
        g_gan = gan_g_loss([f[-1] for f in fake], args["gan"])
        fm = feature_matching_loss([r[:-1] for r in real], [f[:-1] for f in fake])
        loss = g_gan + args["mse_weight"] * mse + args["fm_weight"] * fm
        return {"loss": loss, "g_gan": g_gan, "feature_matching": fm, "mse": mse / 4}  # mse on [0, 1]

    def batch_loss(self, model, x, cfg: TrainConfig) -> dict:
        args = self._args(cfg)
        x2 = x * 2 - 1
        return self._g_terms(model, x2, self.reconstruct(model.net, x2), args)

    def train_step(self, model, optimizers: dict, x, cfg: TrainConfig) -> dict[str, float]:
        import torch

        from rdbench.training.losses import gan_d_loss

        args = self._args(cfg)
        model.train()
        g_opt, d_opt = optimizers["main"], optimizers["disc"]
        x2 = x * 2 - 1
        x_hat = self.reconstruct(model.net, x2)
        # discriminator step on the current reconstruction
        d_opt.zero_grad(set_to_none=True)
        d_loss = gan_d_loss([r[-1] for r in model.disc(x2)], [f[-1] for f in model.disc(x_hat.detach())], args["gan"])
        d_loss.backward()
        d_opt.step()
        # generator step against the updated discriminator
        g_opt.zero_grad(set_to_none=True)
        terms = self._g_terms(model, x2, x_hat, args)
        if not torch.isfinite(terms["loss"]):
            raise TrainingError(f"non-finite loss {float(terms['loss'])} (lower --lr?)")
        terms["loss"].backward(inputs=list(model.net.parameters()))
        if cfg.clip_max_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.net.parameters(), cfg.clip_max_norm)
        g_opt.step()
        row = {k: float(v.detach()) for k, v in terms.items()}
        row.update(d_loss=float(d_loss.detach()), psnr=10 * math.log10(1 / max(row["mse"], 1e-12)),
                   bpp=int(self._args(cfg)["C"]) * math.log2(5) / 256)
        return row

    def evaluate(self, model, images: Sequence, cfg: TrainConfig) -> list[dict[str, float]]:
        import torch

        rate = int(self._args(cfg)["C"]) * math.log2(5) / 256
        model.eval()
        with torch.no_grad():
            torch_state = torch.get_rng_state()  # the generator's noise must not shift training's RNG
            rows = [_eval_metrics((self.reconstruct(model.net, x * 2 - 1, hard_only=True) + 1) / 2, x, rate)
                    for x in images]
            torch.set_rng_state(torch_state)
        model.train()
        return [_mean_rows(rows)]

    def export(self, model, cfg: TrainConfig) -> dict[str, dict]:
        return {"checkpoint-final.pth": {k: v.detach().cpu().clone() for k, v in model.net.state_dict().items()}}


def _hific_discriminator(latent_channels: int, channels: int = 64, context: int = 12, upsample: int = 16):
    """HiFiC's conditional discriminator: the latents ŷ → 3×3 conv → ``context`` channels +
    LeakyReLU 0.2, upsampled ×16 (nearest) and concatenated to the image; four spectrally
    normalised 4×4 stride-2 convolutions → c, 2c, 4c, 8c with LeakyReLU 0.2; a 1×1 conv → logits."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.nn.utils.parametrizations import spectral_norm

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.context = nn.Conv2d(latent_channels, context, 3, padding=1, padding_mode="reflect")
            widths = (3 + context, channels, channels * 2, channels * 4, channels * 8)
            self.convs = nn.ModuleList(spectral_norm(nn.Conv2d(a, b, 4, 2, 1, padding_mode="reflect"))
                                       for a, b in zip(widths[:-1], widths[1:]))
            self.out = spectral_norm(nn.Conv2d(widths[-1], 1, 1))

        def forward(self, x, y_hat):
            c = F.interpolate(F.leaky_relu(self.context(y_hat), 0.2), scale_factor=upsample, mode="nearest")
            h = torch.cat([x, c], dim=1)
            for conv in self.convs:
                h = F.leaky_relu(conv(h), 0.2)
            return self.out(h)

    return Discriminator()


class HiFiCRecipe(SimpleRecipe):
    """HiFiC (Mentzer et al. 2020) as its public PyTorch port trains it.

    Rate: ŷ with a Gaussian (or logistic) conditional from the hyperprior, ẑ under the
    factorized density; additive uniform noise for the likelihoods, straight-through rounding
    for what the generator and hyper-synthesis see. Loss: λ·R with λ = λ_A when the batch's rate
    exceeds the regime's target, else λ_B = 2⁻⁴; + k_M·MSE (0–255 scale, k_M = 0.075·2⁻⁵) +
    k_P·LPIPS (AlexNet v0.1; weights from :mod:`rdbench.metrics.perceptual`) + β·non-saturating
    GAN loss (β = 0.15) against the latent-conditioned discriminator (:func:`_hific_discriminator`).
    ``model_args``: ``regime`` (low/med/high: λ_A 2/1/0.5, target 0.14/0.30/0.45 bpp),
    ``latent_channels`` (220), ``n_residual_blocks`` (9), ``use_channel_norm``, ``likelihood_type``,
    ``lpips_weight`` (1; 0 drops LPIPS), ``gan_weight``, ``disc_channels`` (64).
    Exports ``{"model_state_dict", "args"}`` — the published layout ``hific:checkpoint=`` reads.
    """

    name = "hific"
    REGIMES = {"low": (2.0, 0.14), "med": (1.0, 0.30), "high": (0.5, 0.45)}

    def _args(self, cfg: TrainConfig) -> dict:
        args = {"regime": "med", "latent_channels": 220, "n_residual_blocks": 9, "use_channel_norm": True,
                "likelihood_type": "gaussian", "lpips_weight": 1.0, "gan_weight": 0.15, "k_m": 0.075 * 2**-5,
                "lambda_b": 2**-4, "disc_channels": 64, **cfg.model_args}
        if args["regime"] not in self.REGIMES:
            raise TrainingError(f"hific: regime must be one of {sorted(self.REGIMES)}, got {args['regime']!r}")
        return args

    def _config(self, cfg: TrainConfig):
        from rdbench.codecs.seeds.hific import HiFiCConfig

        a = self._args(cfg)
        return HiFiCConfig(latent_channels=int(a["latent_channels"]), n_residual_blocks=int(a["n_residual_blocks"]),
                           use_channel_norm=bool(a["use_channel_norm"]), likelihood_type=a["likelihood_type"],
                           normalize_input_image=False)

    def build(self, cfg: TrainConfig):
        from torch import nn

        from rdbench.codecs.seeds.hific import build_model

        if cfg.crop % 64 or cfg.crop < 128:
            raise TrainingError("hific: --crop must be a multiple of 64, at least 128 (the hyper-analysis pads by reflection)")
        model = nn.Module()
        model.net = build_model(self._config(cfg))
        model.disc = _hific_discriminator(int(self._args(cfg)["latent_channels"]), int(self._args(cfg)["disc_channels"]))
        self._lpips = None
        return model

    def optimizers(self, model, cfg: TrainConfig) -> dict:
        import torch

        return {"main": torch.optim.Adam(model.net.parameters(), lr=cfg.lr),
                "disc": torch.optim.Adam(model.disc.parameters(), lr=cfg.lr)}

    def _lpips_fn(self, device):
        """A differentiable LPIPS on [0, 1] batches, from :class:`rdbench.metrics.perceptual.LpipsMetric`'s weights."""
        import torch
        import torch.nn.functional as F

        if getattr(self, "_lpips", None) is None:
            from rdbench.metrics.perceptual import LpipsMetric

            try:
                metric = LpipsMetric(device)
            except Exception as exc:
                raise TrainingError(f"hific: LPIPS weights unavailable ({exc}); set model_args lpips_weight=0 "
                                    f"to train without the perceptual term") from exc

            def lpips(a, b):
                def prep(x):
                    return ((x * 2 - 1) - metric._shift) / metric._scale

                total = 0.0
                for fa, fb, lin in zip(metric._layers(prep(a)), metric._layers(prep(b)), metric._lins):
                    ua = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                    ub = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                    total = total + F.conv2d((ua - ub) ** 2, lin).mean()
                return total

            self._lpips = lpips
        return self._lpips

    def _likelihood_y(self, y, mu, sigma, kind: str):
        import torch

        from rdbench.codecs.seeds.hific import LIKELIHOOD_BOUND

        v = (y - mu).abs()
        if kind == "gaussian":
            cdf = lambda t: 0.5 * torch.erfc(-t / math.sqrt(2))  # noqa: E731
        else:
            cdf = torch.sigmoid
        return (cdf((0.5 - v) / sigma) - cdf((-0.5 - v) / sigma)).clamp_min(LIKELIHOOD_BOUND)

    def code(self, net, x, training: bool):
        """(x̂, ŷ, bpp): noisy likelihoods and straight-through rounding in training, rounding in eval."""
        import torch

        def ste_round(t):
            return t + (torch.round(t) - t).detach()

        y = net.Encoder(x)
        z = net.Hyperprior.analysis_net(y)
        z_hat = ste_round(z)
        z_rate = z + torch.empty_like(z).uniform_(-0.5, 0.5) if training else z_hat
        mu, sigma = net.Hyperprior.latent_parameters(z_hat)
        y_hat = ste_round(y - mu) + mu
        y_rate = y + torch.empty_like(y).uniform_(-0.5, 0.5) if training else y_hat
        lik_y = self._likelihood_y(y_rate, mu, sigma, net.config.likelihood_type)
        lik_z = net.Hyperprior.hyperlatent_likelihood.likelihood(z_rate)
        pixels = x.shape[0] * x.shape[-2] * x.shape[-1]
        bpp = -(torch.log2(lik_y).sum() + torch.log2(lik_z).sum()) / pixels
        return net.Generator(y_hat), y_hat, bpp

    def _g_terms(self, model, x, x_hat, y_hat, bpp, cfg) -> dict:
        from rdbench.training.losses import gan_g_loss

        a = self._args(cfg)
        lambda_a, target = self.REGIMES[a["regime"]]
        lam = lambda_a if float(bpp) > target else a["lambda_b"]
        mse = (x_hat - x).pow(2).mean()
        terms = {"bpp": bpp, "mse": mse}
        loss = lam * bpp + a["k_m"] * mse * 255**2
        if a["lpips_weight"] > 0:
            terms["lpips"] = self._lpips_fn(x.device)(x_hat, x)
            loss = loss + a["lpips_weight"] * terms["lpips"]
        if a["gan_weight"] > 0:
            terms["g_gan"] = gan_g_loss([model.disc(x_hat, y_hat.detach())], "ns")
            loss = loss + a["gan_weight"] * terms["g_gan"]
        terms["loss"] = loss
        return terms

    def batch_loss(self, model, x, cfg: TrainConfig) -> dict:
        x_hat, y_hat, bpp = self.code(model.net, x, model.training)
        return self._g_terms(model, x, x_hat, y_hat, bpp, cfg)

    def train_step(self, model, optimizers: dict, x, cfg: TrainConfig) -> dict[str, float]:
        import torch

        from rdbench.training.losses import gan_d_loss

        model.train()
        g_opt, d_opt = optimizers["main"], optimizers["disc"]
        x_hat, y_hat, bpp = self.code(model.net, x, True)
        d_loss = torch.zeros(())
        if self._args(cfg)["gan_weight"] > 0:
            d_opt.zero_grad(set_to_none=True)
            d_loss = gan_d_loss([model.disc(x, y_hat.detach())], [model.disc(x_hat.detach(), y_hat.detach())], "ns")
            d_loss.backward()
            d_opt.step()
        g_opt.zero_grad(set_to_none=True)
        terms = self._g_terms(model, x, x_hat, y_hat, bpp, cfg)
        if not torch.isfinite(terms["loss"]):
            raise TrainingError(f"non-finite loss {float(terms['loss'])} (lower --lr?)")
        terms["loss"].backward(inputs=list(model.net.parameters()))
        if cfg.clip_max_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.net.parameters(), cfg.clip_max_norm)
        g_opt.step()
        row = {k: float(v.detach()) for k, v in terms.items()}
        row.update(d_loss=float(d_loss.detach()), psnr=10 * math.log10(1 / max(row["mse"], 1e-12)))
        return row

    def evaluate(self, model, images: Sequence, cfg: TrainConfig) -> list[dict[str, float]]:
        import torch

        model.eval()
        with torch.no_grad():
            rows = []
            for x in images:
                x_hat, _, bpp = self.code(model.net, x, False)
                rows.append(_eval_metrics(x_hat, x, float(bpp)))
        model.train()
        return [_mean_rows(rows)]

    def export(self, model, cfg: TrainConfig) -> dict[str, dict]:
        c = self._config(cfg)
        args = {"latent_channels": c.latent_channels, "n_residual_blocks": c.n_residual_blocks,
                "use_channel_norm": c.use_channel_norm, "likelihood_type": c.likelihood_type,
                "normalize_input_image": False, "use_latent_mixture_model": False, "sample_noise": False,
                "regime": self._args(cfg)["regime"]}
        sd = {k: v.detach().cpu().clone() for k, v in model.net.state_dict().items()}
        return {"checkpoint-final.pth": {"model_state_dict": sd, "args": args}}
