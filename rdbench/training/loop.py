"""The training loop: recipes per architecture family, resumable checkpoints, logs.

A :class:`Recipe` says how one family builds, steps, evaluates and exports its network; the loop
around it is family-agnostic, and families plug in with :func:`register_recipe`. Built in:
:class:`CompressAIRecipe` (the zoo) and :class:`GainedFactorizedRecipe` (``rdbench-small``).
Checkpoints hold every RNG state and batches depend only on (seed, step), so a resumed run follows
an uninterrupted run's trajectory exactly. Outputs and recipes: docs/training.md.
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import importlib
import json
import logging
import math
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rdbench.device import resolve_device
from rdbench.files import atomic_path, write_json_atomic

__all__ = [
    "CompressAIRecipe",
    "GainedFactorizedRecipe",
    "LOG_COLUMNS",
    "Recipe",
    "TrainConfig",
    "TrainingError",
    "default_run_name",
    "get_recipe",
    "read_progress",
    "recipes",
    "register_recipe",
    "train",
]

log = logging.getLogger(__name__)

LOG_COLUMNS = ("step", "kind", "quality", "lmbda", "loss", "bpp", "mse", "psnr", "ms_ssim", "aux_loss", "lr", "elapsed_s")
#: CompressAI's zoo λ ladders (quality 1..8), used to pick a default network size for a λ.
ZOO_LMBDAS = {
    "mse": (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800),
    "ms-ssim": (2.40, 4.58, 8.73, 16.64, 31.73, 60.50, 115.37, 220.00),
}


class TrainingError(RuntimeError):
    """Training cannot start or continue (bad configuration, incompatible checkpoint, NaN loss)."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (``TrainCodec``'s parameters)."""

    codec: str
    dataset: str
    output_dir: str
    lmbda: float = 0.0130
    #: The λ of each quality level, for variable-rate recipes (rdbench-small); () = the recipe's default.
    lmbdas: tuple[float, ...] = ()
    metric: str = "mse"
    steps: int = 1000
    batch_size: int = 8
    crop: int = 256
    seed: int = 0
    device: str = "auto"
    lr: float = 1e-4
    aux_lr: float = 1e-3
    #: Steps after which the learning rate is multiplied by ``lr_gamma`` (absolute, so a
    #: continued run keeps its schedule).
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    #: Learning rate of the entropy bottlenecks' density parameters (0 = ``lr``). In short
    #: trainings the factorized densities, at ``lr``, lag far behind the latents they model
    #: (the rate estimate stays near its initial value); a larger rate here fixes that.
    entropy_lr: float = 0.0
    clip_max_norm: float = 1.0
    log_every: int = 100
    eval_every: int = 1000
    checkpoint_every: int = 500
    #: Held-out images: this dataset's first ``eval_images``, or (empty) ``eval_images`` held out of ``dataset``.
    eval_dataset: str = ""
    eval_images: int = 8
    eval_crop: int = 256
    #: Architecture arguments (e.g. {"N": 64, "M": 96}); empty = the recipe's default for λ.
    model_args: dict = field(default_factory=dict)
    #: torch CPU threads (0 = torch's default).
    threads: int = 0
    data_root: str = "datasets"

    #: Fields a resumed run must share with the checkpoint (the rest may change between runs).
    IDENTITY = ("codec", "dataset", "lmbda", "lmbdas", "metric", "batch_size", "crop", "seed", "model_args",
                "eval_dataset", "eval_images", "eval_crop")

    def __post_init__(self):
        self.lmbdas = tuple(float(v) for v in self.lmbdas)
        self.lr_milestones = tuple(sorted(int(v) for v in self.lr_milestones))
        self.model_args = dict(self.model_args)
        if self.steps < 0 or self.batch_size < 1 or self.crop < 16:
            raise TrainingError(f"invalid steps/batch_size/crop: {self.steps}/{self.batch_size}/{self.crop}")
        if self.metric not in ZOO_LMBDAS:
            raise TrainingError(f"metric must be one of {sorted(ZOO_LMBDAS)}, got {self.metric!r}")
        for name in ("log_every", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be ≥ 1")

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["lmbdas"] = list(self.lmbdas)
        d["lr_milestones"] = list(self.lr_milestones)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def identity(self) -> dict:
        d = self.to_json()
        return {k: d[k] for k in self.IDENTITY}

    def lr_factor(self, step: int) -> float:
        return self.lr_gamma ** sum(1 for m in self.lr_milestones if step > m)

    def lr_at(self, step: int) -> float:
        return self.lr * self.lr_factor(step)


def default_run_name(cfg: TrainConfig) -> str:
    """``<metric>-lmbda<λ>-seed<s>-<hash>``: the hash covers every identity field, not ``steps``,
    so re-running with more steps lands in (and continues) the same folder."""
    digest = hashlib.sha256(json.dumps(cfg.identity(), sort_keys=True).encode()).hexdigest()[:8]
    lm = "-".join(f"{v:g}" for v in cfg.lmbdas) if cfg.lmbdas else f"{cfg.lmbda:g}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{cfg.metric}-lmbda{lm}-seed{cfg.seed}-{digest}")


# -- recipes --------------------------------------------------------------------------------


class Recipe:
    """How one architecture family trains. Subclass and :func:`register_recipe` it."""

    name: str = ""

    def build(self, cfg: TrainConfig):
        """The untrained network (the loop seeds torch first)."""
        raise NotImplementedError

    def optimizers(self, model, cfg: TrainConfig) -> dict:
        """Named optimisers; the one called ``main`` follows the learning-rate schedule."""
        raise NotImplementedError

    def batch_loss(self, model, x, cfg: TrainConfig) -> dict:
        """The family's training objective on a [0, 1] batch (``loss`` differentiable, plus terms)."""
        raise NotImplementedError

    def train_step(self, model, optimizers: dict, x, cfg: TrainConfig) -> dict[str, float]:
        """One step on a [0, 1] batch ``x``: forward, loss, backward, optimiser steps. Returns
        scalar metrics (at least ``loss``)."""
        raise NotImplementedError

    def evaluate(self, model, images: Sequence, cfg: TrainConfig) -> list[dict[str, float]]:
        """Metrics on held-out images (each (1, 3, H, W) in [0, 1]): one row per quality level."""
        raise NotImplementedError

    def export(self, model, cfg: TrainConfig) -> dict[str, dict]:
        """File name → plain state dict; must include ``checkpoint-final.pth``."""
        raise NotImplementedError

    def codec_spec(self, cfg: TrainConfig, final_path: str) -> str:
        """The codec spec that loads ``checkpoint-final.pth``."""
        return f"{cfg.codec}:checkpoint={final_path}"


_RECIPES: dict[str, Recipe | Callable[[], Recipe] | str] = {}


def register_recipe(name: str, recipe: "Recipe | Callable[[], Recipe] | str") -> None:
    """Register a family's recipe: an instance, a factory, or a lazy ``"module:attribute"``."""
    _RECIPES[name] = recipe


def recipes() -> list[str]:
    """The codec names that can be trained."""
    return sorted(_RECIPES)


def get_recipe(name: str) -> Recipe:
    try:
        entry = _RECIPES[name]
    except KeyError:
        raise TrainingError(f"no training recipe for codec {name!r}; trainable: {', '.join(recipes())}") from None
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
    return entry if isinstance(entry, Recipe) else entry()


def _split_params(model):
    """CompressAI's split: entropy-bottleneck ``quantiles`` go to the auxiliary optimiser."""
    main, aux = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (aux if name.endswith(".quantiles") else main).append(p)
    return main, aux


def _eval_metrics(x_hat, x, rate: float) -> dict[str, float]:
    """bpp, MSE, PSNR and (for images ≥ 161 px) MS-SSIM of one clamped reconstruction."""
    from rdbench.training.losses import psnr_from_mse

    x_hat = x_hat.clamp(0, 1)
    mse = float((x_hat - x).pow(2).mean())
    row = {"bpp": rate, "mse": mse, "psnr": psnr_from_mse(mse)}
    if min(x.shape[-2:]) > 160:
        from pytorch_msssim import ms_ssim

        row["ms_ssim"] = float(ms_ssim(x_hat.float(), x.float(), data_range=1.0))
    return row


def _mean_rows(rows: list[dict]) -> dict[str, float]:
    keys = set().union(*rows) if rows else set()
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}


class CompressAIRecipe(Recipe):
    """A CompressAI zoo architecture: R + λ·D, auxiliary quantile loss on its own optimiser."""

    def __init__(self, name: str):
        self.name = name

    def _arch(self):
        from compressai.zoo.image import model_architectures

        return model_architectures[self.name]

    def default_args(self, cfg: TrainConfig) -> tuple:
        """The zoo's (N, M) of the quality whose λ is nearest (in log) to the configured one."""
        from compressai.zoo.image import cfgs

        ladder = ZOO_LMBDAS[cfg.metric]
        q = 1 + min(range(len(ladder)), key=lambda i: abs(math.log(ladder[i]) - math.log(cfg.lmbda)))
        qs = cfgs[self.name]
        return qs[min(q, max(qs))]

    def build(self, cfg: TrainConfig):
        arch = self._arch()
        return arch(**cfg.model_args) if cfg.model_args else arch(*self.default_args(cfg))

    def optimizers(self, model, cfg: TrainConfig) -> dict:
        """CompressAI's two Adam optimisers; with ``entropy_lr`` the entropy bottlenecks' density
        parameters form a second parameter group of ``main`` at that rate (``base_lr`` of each
        group is what the schedule scales)."""
        import torch

        main, aux = _split_params(model)
        if cfg.entropy_lr > 0:
            density = {id(p) for n, p in model.named_parameters()
                       if ".quantiles" not in n and n.startswith(("entropy_bottleneck.", "entropy_bottlenecks."))}
            groups = [{"params": [p for p in main if id(p) not in density], "lr": cfg.lr, "base_lr": cfg.lr},
                      {"params": [p for p in main if id(p) in density], "lr": cfg.entropy_lr, "base_lr": cfg.entropy_lr}]
            main_opt = torch.optim.Adam(groups)
        else:
            main_opt = torch.optim.Adam(main, lr=cfg.lr)
        return {"main": main_opt, "aux": torch.optim.Adam(aux, lr=cfg.aux_lr)}

    def loss_fn(self, cfg: TrainConfig):
        from rdbench.training.losses import RateDistortionLoss

        return RateDistortionLoss(cfg.lmbda, cfg.metric)

    def forward(self, model, x, cfg: TrainConfig):
        """The network's output and the per-image λ (None = the configured one)."""
        return model(x), None

    def batch_loss(self, model, x, cfg: TrainConfig) -> dict:
        out, lmbda = self.forward(model, x, cfg)
        return self.loss_fn(cfg)(out, x, lmbda)

    def train_step(self, model, optimizers: dict, x, cfg: TrainConfig) -> dict[str, float]:
        import torch

        model.train()
        main, aux = optimizers["main"], optimizers["aux"]
        main.zero_grad(set_to_none=True)
        aux.zero_grad(set_to_none=True)
        terms = self.batch_loss(model, x, cfg)
        loss = terms["loss"]
        if not torch.isfinite(loss):
            raise TrainingError(f"non-finite loss {float(loss)} (lower --lr?)")
        loss.backward()
        if cfg.clip_max_norm > 0:
            torch.nn.utils.clip_grad_norm_([p for g in main.param_groups for p in g["params"]], cfg.clip_max_norm)
        main.step()
        aux_loss = model.aux_loss()
        aux_loss.backward()
        aux.step()
        row = {k: float(v.detach()) for k, v in terms.items()}
        row["psnr"] = 10 * math.log10(1 / max(row["mse"], 1e-12))
        row["aux_loss"] = float(aux_loss.detach())
        return row

    def _eval_one(self, model, x, cfg: TrainConfig, level: int | None) -> dict[str, float]:
        from rdbench.training.losses import bpp

        out = model(x) if level is None else model(x, self._levels(x, level))
        row = _eval_metrics(out["x_hat"], x, float(bpp(out["likelihoods"].values(), x.shape[-2] * x.shape[-1])))
        return row

    @staticmethod
    def _levels(x, level: int):
        import torch

        return torch.full((x.shape[0],), level, dtype=torch.long, device=x.device)

    def _loss_of(self, row: dict, lmbda: float, cfg: TrainConfig) -> float:
        if cfg.metric == "mse":
            return row["bpp"] + lmbda * 255**2 * row["mse"]
        return row["bpp"] + lmbda * (1 - row.get("ms_ssim", float("nan")))

    def evaluate(self, model, images: Sequence, cfg: TrainConfig) -> list[dict[str, float]]:
        import torch

        model.eval()
        with torch.no_grad():
            row = _mean_rows([self._eval_one(model, x, cfg, None) for x in images])
        model.train()
        row["loss"] = self._loss_of(row, cfg.lmbda, cfg)
        row["lmbda"] = cfg.lmbda
        return [row]

    def export(self, model, cfg: TrainConfig) -> dict[str, dict]:
        net = copy.deepcopy(model).cpu().eval()
        # The entropy bottlenecks' tail quantiles are set by bisection on the learned densities
        # (exact, where the auxiliary loss only approaches them), then the CDF tables the range
        # coder needs are built; both travel with the weights.
        net.update(force=True, update_quantiles=True)
        return {"checkpoint-final.pth": {k: v.detach().clone() for k, v in net.state_dict().items()}}


class GainedFactorizedRecipe(CompressAIRecipe):
    """``rdbench-small``: one factorized-prior network with gain units, one λ per quality level.

    Image i of a batch trains level ``i mod K`` with its λ (so every level gets a gradient every
    step when the batch size is a multiple of K); the loss is the batch mean of
    R_i + λ_{k(i)}·255²·MSE_i. Exports the gained state dict (all levels, what
    ``rdbench-small:checkpoint=`` loads) and each level folded into a plain ``FactorizedPrior``
    (``checkpoint-final-q{k}.pth``, loadable by ``bmshj2018-factorized:checkpoint=…q{quality}.pth``).
    """

    def __init__(self, name: str = "rdbench-small"):
        super().__init__(name)

    def lmbdas(self, cfg: TrainConfig) -> tuple[float, ...]:
        from rdbench.codecs.rdbench_small import LMBDAS

        return cfg.lmbdas or LMBDAS

    def build(self, cfg: TrainConfig):
        from rdbench.codecs.rdbench_small import M_CHANNELS, N_CHANNELS, make_model

        if cfg.metric != "mse":
            raise TrainingError("rdbench-small trains for MSE only")
        args = {"N": N_CHANNELS, "M": M_CHANNELS, **cfg.model_args}
        return make_model(int(args["N"]), int(args["M"]), self.lmbdas(cfg))

    def forward(self, model, x, cfg: TrainConfig):
        import torch

        k = len(self.lmbdas(cfg))
        levels = torch.arange(x.shape[0], device=x.device) % k
        lmbda = torch.tensor(self.lmbdas(cfg), dtype=x.dtype, device=x.device)[levels]
        return model(x, levels), lmbda

    def evaluate(self, model, images: Sequence, cfg: TrainConfig) -> list[dict[str, float]]:
        import torch

        rows = []
        model.eval()
        with torch.no_grad():
            for level, lm in enumerate(self.lmbdas(cfg)):
                row = _mean_rows([self._eval_one(model, x, cfg, level) for x in images])
                row.update(quality=level + 1, lmbda=lm, loss=self._loss_of(row, lm, cfg))
                rows.append(row)
        model.train()
        return rows

    def export(self, model, cfg: TrainConfig) -> dict[str, dict]:
        from rdbench.codecs.rdbench_small import fold

        files = super().export(model, cfg)
        gained = files["checkpoint-final.pth"]
        for level in range(len(self.lmbdas(cfg))):
            files[f"checkpoint-final-q{level + 1}.pth"] = fold(gained, level)
        return files


for _name in ("bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor", "cheng2020-attn"):
    register_recipe(_name, lambda _n=_name: CompressAIRecipe(_n))
register_recipe("rdbench-small", GainedFactorizedRecipe)
for _name, _cls in (("balle2018", "Balle2018Recipe"), ("xiao2019", "Xiao2019Recipe"), ("toderici2017", "Toderici2017Recipe"),
                    ("mentzer2018", "Mentzer2018Recipe"), ("agustsson2019", "Agustsson2019Recipe"),
                    ("hific", "HiFiCRecipe")):
    register_recipe(_name, f"rdbench.training.seeds:{_cls}")


# -- state (de)serialisation ------------------------------------------------------------------


def _rng_state() -> dict:
    import torch

    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss_next": py_state[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_save(obj, path: Path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class _Log:
    """``log.csv`` (rows past a resumed step are dropped) plus TensorBoard when importable."""

    def __init__(self, out: Path, resume_step: int):
        self.path = out / "log.csv"
        kept: list[dict] = []
        if self.path.exists() and resume_step > 0:
            with open(self.path, newline="") as f:
                kept = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= resume_step]
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, LOG_COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows(kept)
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"), purge_step=resume_step + 1 if resume_step else None)
        except Exception:  # tensorboard not installed: the CSV is the log
            self.tb = None

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, LOG_COLUMNS, extrasaction="ignore").writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
        if self.tb is not None:
            tag = row["kind"] + (f"/q{row['quality']}" if row.get("quality") not in (None, "") else "")
            for k in ("loss", "bpp", "psnr", "ms_ssim", "aux_loss", "lr"):
                if isinstance(row.get(k), float):
                    self.tb.add_scalar(f"{tag}/{k}", row[k], row["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _load_sets(cfg: TrainConfig):
    from rdbench.datasets import get_dataset
    from rdbench.training.data import load_images, split_holdout

    ds = get_dataset(cfg.dataset, cfg.data_root)
    paths = [r.path for r in ds.images]
    if not paths:
        raise TrainingError(f"dataset {cfg.dataset!r} has no images")
    if cfg.eval_dataset:
        train_paths = paths
        eval_paths = [r.path for r in get_dataset(cfg.eval_dataset, cfg.data_root).images[: cfg.eval_images]]
    else:
        train_idx, held_idx = split_holdout(len(paths), cfg.eval_images)
        train_paths, eval_paths = [paths[i] for i in train_idx], [paths[i] for i in held_idx]
    return load_images(train_paths), load_images(eval_paths)


def _write_config(out: Path, cfg: TrainConfig, completed: int, status: str, extra: dict | None = None) -> None:
    doc = {"config": cfg.to_json(), "completed_step": completed, "status": status, **(extra or {})}
    write_json_atomic(out / "config.json", doc)


def read_progress(output_dir: str | os.PathLike) -> dict | None:
    """``config.json`` of a run folder (None if absent or unreadable)."""
    try:
        return json.loads((Path(output_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None


def train(
    cfg: TrainConfig,
    progress: Callable[[float], Any] | None = None,
    status: Callable[[str], Any] | None = None,
    should_stop: Callable[[int], bool] | None = None,
) -> dict:
    """Train (or continue training) to ``cfg.steps``; returns a summary dict.

    ``progress(percent)`` and ``status(message)`` are called as training advances (both may be
    None). ``should_stop(step)`` returning True ends the run after that step *without* a final
    checkpoint, as a killed process would (tests use it).
    """
    import torch

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    try:
        device = resolve_device(cfg.device or "auto")
    except (RuntimeError, ValueError) as exc:
        raise TrainingError(str(exc)) from None
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    recipe = get_recipe(cfg.codec)
    train_images, eval_images = _load_sets(cfg)
    from rdbench.training.data import CropSampler, eval_crops

    sampler = CropSampler(train_images, cfg.crop, cfg.batch_size, cfg.seed)
    eval_set = [
        torch.from_numpy(im).permute(2, 0, 1).float().div(255).unsqueeze(0).contiguous().to(device)
        for im in eval_crops(eval_images, cfg.eval_crop)
    ]

    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    torch.manual_seed(cfg.seed)
    model = recipe.build(cfg).to(device)
    optimizers = recipe.optimizers(model, cfg)
    start, acc = 0, {}
    last_path = out / "checkpoint-last.pth"
    if last_path.exists():
        try:
            state = torch.load(last_path, map_location=device, weights_only=True)
        except Exception as exc:
            raise TrainingError(f"cannot read {last_path}: {type(exc).__name__}: {exc}") from exc
        saved = TrainConfig.from_json(json.loads(state["config"]))
        if saved.identity() != cfg.identity():
            diff = {k: (v, cfg.identity()[k]) for k, v in saved.identity().items() if cfg.identity()[k] != v}
            raise TrainingError(f"{last_path} was trained with another configuration (checkpoint vs now: {diff}); "
                                f"use another --output-dir")
        model.load_state_dict(state["model"])
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        _set_rng_state(state["rng"])
        start = int(state["step"])
        if int(state["sampler"]["position"]) != start:
            raise TrainingError(f"{last_path}: sampler position {state['sampler']['position']} != step {start}")
        acc = {k: float(v) for k, v in state.get("log_acc", {}).items()}
        log.info("resuming %s from step %d", out, start)
    final_path = out / "checkpoint-final.pth"
    spec = recipe.codec_spec(cfg, str(final_path))
    if start >= cfg.steps and final_path.exists():
        _write_config(out, cfg, start, "done", {"codec_spec": spec})
        return {"step": start, "output_dir": str(out), "codec_spec": spec, "resumed_from": start}

    _write_config(out, cfg, start, "running")
    logger = _Log(out, start)
    t0 = time.monotonic()
    elapsed0 = float(acc.pop("_elapsed_s", 0.0))
    report_every = max(1, cfg.steps // 200)

    def save_last(step: int) -> None:
        _atomic_save(
            {
                "step": step,
                "model": model.state_dict(),
                "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
                "rng": _rng_state(),
                "sampler": {"position": step, "seed": cfg.seed},
                "log_acc": {**acc, "_elapsed_s": elapsed0 + time.monotonic() - t0},
                "config": json.dumps(cfg.to_json(), sort_keys=True),
            },
            last_path,
        )

    try:
        for step in range(start + 1, cfg.steps + 1):
            lr = cfg.lr_at(step)
            for group in optimizers["main"].param_groups:
                group["lr"] = group.get("base_lr", cfg.lr) * cfg.lr_factor(step)
            # contiguous NCHW: a permuted (channels-last) batch crashes some CPU convolution
            # backward kernels (heap corruption with cheng2020's, torch 2.14)
            x = torch.from_numpy(sampler.batch(step)).to(device).permute(0, 3, 1, 2).float().div(255).contiguous()
            metrics = recipe.train_step(model, optimizers, x, cfg)
            for k, v in metrics.items():
                acc[k] = acc.get(k, 0.0) + v
            acc["_n"] = acc.get("_n", 0.0) + 1
            elapsed = elapsed0 + time.monotonic() - t0
            if step % cfg.log_every == 0 or step == cfg.steps:
                n = acc.pop("_n")
                row = {k: v / n for k, v in acc.items()}
                logger.write({**row, "step": step, "kind": "train", "lr": lr, "elapsed_s": elapsed,
                              "lmbda": "" if isinstance(recipe, GainedFactorizedRecipe) else cfg.lmbda})
                acc.clear()
                log.info("step %d/%d loss %.4f bpp %.4f psnr %.2f", step, cfg.steps, row.get("loss", float("nan")),
                         row.get("bpp", float("nan")), row.get("psnr", float("nan")))
            if eval_set and (step % cfg.eval_every == 0 or step == cfg.steps):
                for row in recipe.evaluate(model, eval_set, cfg):
                    logger.write({**row, "step": step, "kind": "eval", "lr": lr, "elapsed_s": elapsed})
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save_last(step)
                _write_config(out, cfg, step, "running")
            if step % report_every == 0 or step == cfg.steps:
                msg = f"step {step}/{cfg.steps} loss {metrics.get('loss', float('nan')):.4f}"
                if "bpp" in metrics:
                    msg += f" bpp {metrics['bpp']:.3f} psnr {metrics.get('psnr', float('nan')):.2f} dB"
                if progress is not None:
                    progress(round(100.0 * step / max(cfg.steps, 1), 1))
                if status is not None:
                    status(msg)
            if should_stop is not None and should_stop(step):
                return {"step": step, "output_dir": str(out), "stopped": True, "resumed_from": start}
    finally:
        logger.close()

    files = recipe.export(model, cfg)
    for name, sd in files.items():
        _atomic_save(sd, out / name)
    wall = elapsed0 + time.monotonic() - t0
    _write_config(out, cfg, cfg.steps, "done", {"codec_spec": spec, "train_seconds": round(wall, 1),
                                                "files": sorted(files)})
    return {"step": cfg.steps, "output_dir": str(out), "codec_spec": spec, "resumed_from": start,
            "train_seconds": wall}
