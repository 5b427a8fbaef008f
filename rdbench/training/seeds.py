"""Training recipes of the seed systems (``rdbench.codecs.seeds``), registered lazily by
:mod:`rdbench.training.loop`.

- ``balle2018``, ``xiao2019`` — CompressAI ``CompressionModel`` subclasses (scale hyperprior;
  Xiao's 8-layer 3×3 transforms): the CompressAI recipe (R + λ·255²·MSE, auxiliary quantile
  loss on its own optimiser), built with the seed module's ``network(N, M)`` (N=M=192 unless
  ``model_args`` say otherwise). ``NAME:checkpoint=…`` loads the result.
- ``toderici2017`` — the residual-GRU network trained as in Toderici et al. 2017: stochastic
  binarisation (b = +1 with probability (1 + p)/2, p = tanh(·), straight-through gradient),
  additive reconstruction over ``iterations`` steps (``model_args``, default 16), loss = mean
  over iterations of the L1 (or ``norm: "l2"``) norm of each residual, on [−0.5, 0.5] images.
  Rate is fixed by the iteration count (0.125 bpp each), so there is no λ.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence

from rdbench.training.loop import CompressAIRecipe, Recipe, TrainConfig, TrainingError, _eval_metrics, _mean_rows

__all__ = ["Balle2018Recipe", "SimpleRecipe", "Toderici2017Recipe", "Xiao2019Recipe"]


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
