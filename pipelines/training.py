"""``TrainCodec``: train a learned architecture (thin Luigi front end of :mod:`rdbench.training`).

    luigi --module pipelines.training TrainCodec --local-scheduler \\
        --codec bmshj2018-factorized --dataset folder:photos --lmbda 0.0067 --steps 20000

The run folder (``--output-dir``, default ``<weights root>/<codec>/<run>/`` where ``<run>`` is
derived from every parameter that shapes the trajectory except ``--steps``) receives
``checkpoint-last.pth``, ``checkpoint-final.pth``, ``config.json`` and ``log.csv``. The task is
complete when ``config.json`` says the run finished at least ``--steps`` steps; re-running
with a larger ``--steps`` continues from ``checkpoint-last.pth``, and so does re-running
after a crash or kill.
"""
from __future__ import annotations

import os

import luigi

from pipelines.config import rdbench

__all__ = ["TrainCodec"]


def _report(task: luigi.Task, percent: float | None = None, message: str | None = None) -> None:
    """Progress for the scheduler's UI; the callbacks are None outside a Luigi worker."""
    if percent is not None and task.set_progress_percentage is not None:
        task.set_progress_percentage(percent)
    if message is not None and task.set_status_message is not None:
        task.set_status_message(message)


class TrainCodec(luigi.Task):
    """Train one codec architecture with one λ (or a λ ladder, for variable-rate recipes)."""

    codec = luigi.Parameter(description="architecture to train (rdbench.training.recipes())")
    dataset = luigi.Parameter(description="training images: a dataset spec (folder:PATH, glob:PATTERN, catalog name)")
    lmbda = luigi.FloatParameter(default=0.0130, description="rate-distortion trade-off λ (loss = R + λ·D)")
    lmbdas = luigi.ListParameter(default=[], description="one λ per quality level, for variable-rate recipes (rdbench-small)")
    metric = luigi.ChoiceParameter(choices=["mse", "ms-ssim"], default="mse", description="distortion: 255²·MSE or 1 − MS-SSIM")
    steps = luigi.IntParameter(default=10000, description="total steps; a larger value continues a finished run")
    batch_size = luigi.IntParameter(default=8)
    crop = luigi.IntParameter(default=256, description="side of the random square training crops")
    seed = luigi.IntParameter(default=0)
    device = luigi.Parameter(default="auto", significant=False, description="auto, cpu, cuda or cuda:N")
    output_dir = luigi.Parameter(default="", description="run folder (default <weights root>/<codec>/<run>/)")
    lr = luigi.FloatParameter(default=1e-4, description="Adam learning rate of the network")
    aux_lr = luigi.FloatParameter(default=1e-3, description="Adam learning rate of the entropy models' auxiliary loss")
    lr_milestones = luigi.ListParameter(default=[], description="steps after which the learning rate is multiplied by --lr-gamma")
    lr_gamma = luigi.FloatParameter(default=0.1)
    entropy_lr = luigi.FloatParameter(default=0.0, description="learning rate of the entropy models' densities (0 = --lr)")
    clip_max_norm = luigi.FloatParameter(default=1.0, description="gradient-norm clipping (0 = off)")
    model_args = luigi.DictParameter(default={}, description='architecture arguments, e.g. {"N": 64, "M": 96}')
    eval_dataset = luigi.Parameter(default="", description="held-out images (default: some held out of --dataset)")
    eval_images = luigi.IntParameter(default=8, description="how many held-out images")
    eval_crop = luigi.IntParameter(default=256, description="held-out images are centre-cropped to at most this size")
    log_every = luigi.IntParameter(default=100, significant=False, description="steps per train row of log.csv")
    eval_every = luigi.IntParameter(default=1000, significant=False, description="steps between held-out evaluations")
    checkpoint_every = luigi.IntParameter(default=500, significant=False, description="steps between checkpoint-last.pth writes")
    threads = luigi.IntParameter(default=0, significant=False, description="torch CPU threads (0 = torch's default)")

    def config(self):
        from rdbench.training import TrainConfig, default_run_name

        kwargs = dict(
            codec=self.codec, dataset=self.dataset, lmbda=self.lmbda, lmbdas=tuple(self.lmbdas), metric=self.metric,
            steps=self.steps, batch_size=self.batch_size, crop=self.crop, seed=self.seed, device=self.device,
            lr=self.lr, aux_lr=self.aux_lr, lr_milestones=tuple(self.lr_milestones), lr_gamma=self.lr_gamma, entropy_lr=self.entropy_lr,
            clip_max_norm=self.clip_max_norm, model_args=dict(self.model_args), eval_dataset=self.eval_dataset,
            eval_images=self.eval_images, eval_crop=self.eval_crop, log_every=self.log_every,
            eval_every=self.eval_every, checkpoint_every=self.checkpoint_every, threads=self.threads,
            data_root=rdbench().data_root,
        )
        cfg = TrainConfig(output_dir=self.output_dir or "-", **kwargs)
        if not self.output_dir:
            cfg.output_dir = os.path.join(rdbench().weights_root, self.codec, default_run_name(cfg))
        return cfg

    def output(self):
        return luigi.LocalTarget(os.path.join(self.config().output_dir, "checkpoint-final.pth"))

    def complete(self) -> bool:
        from rdbench.training import read_progress

        cfg = self.config()
        doc = read_progress(cfg.output_dir)
        return bool(
            doc and doc.get("status") == "done" and int(doc.get("completed_step", -1)) >= self.steps
            and os.path.exists(os.path.join(cfg.output_dir, "checkpoint-final.pth"))
        )

    def run(self):
        from rdbench.training import train

        cfg = self.config()
        _report(self, 0.0, f"training {cfg.codec} → {cfg.output_dir}")
        result = train(
            cfg,
            progress=lambda p: _report(self, percent=p),
            status=lambda m: _report(self, message=m),
        )
        _report(self, 100.0, f"done: {result['step']} steps; load with {result.get('codec_spec', '')}")
