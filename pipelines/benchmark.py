"""RunBenchmark and the tasks it requires: thin Luigi adapters over :mod:`rdbench.run`.

    luigi --module pipelines RunBenchmark --local-scheduler

RunBenchmark → ReportRun (summary.csv, bd_rate.csv, plots, report.html)
             → EvaluateRun (the Beam job: one Parquet file per shard; run.json)
               → PrepareDataset for every catalog dataset named in --datasets
             → ComputeSetMetrics, when --metrics names fid or kid (a second Beam job:
               set_metrics.csv from the features/ the first one wrote).

Each task turns its parameters into a :class:`~rdbench.run.RunConfig` and calls the run core;
only the Beam job and Luigi's progress reporting live here. EvaluateRun is complete when every
shard of the plan is written; a re-run of an interrupted run evaluates only the missing shards.
"""
from __future__ import annotations

import logging
import time

import luigi

from pipelines.config import rdbench as rdbench_config
from pipelines.console import closing_summary, job_console, run_with_progress, say
from pipelines.params import JSONDictParameter, TextListParameter, refuse
from rdbench.metrics.registry import DEFAULT_METRICS, METRICS
from rdbench.run import ConfigError, RunConfig, finish_run, folder, prepare_run
from rdbench.run.benchmark import EVALUATED, build_run_report

log = logging.getLogger("luigi-interface")


class BenchmarkParams(luigi.Task):
    """The parameters of a benchmark run, shared by every task of the run (not run itself).

    Lists are JSON (``'["jpeg", "webp"]'``) or comma-separated (``jpeg,webp``).
    """

    datasets = TextListParameter(default=["sample"], description="dataset specs (JSON list or comma-separated)")
    codecs = TextListParameter(default=[], description="codec specs (JSON list or comma-separated); [] = the default set")
    qualities = JSONDictParameter(default={}, description="codec NAME → list of qualities (JSON object)")
    output_root = luigi.Parameter(default="", description="where run folders go ([rdbench] output_root)")
    run_name = luigi.Parameter(default="", description="run folder name; derived from the configuration")
    runner = luigi.Parameter(default="FnApiRunner", description="Beam runner")
    num_workers = luigi.IntParameter(default=0, description="local Beam worker processes; 0 = cores (GPUs on CUDA)")
    batch_size = luigi.IntParameter(default=0, description="images per batch for batched codecs; 0 = 8 on CUDA, else 1")
    beam_options = luigi.Parameter(default="", description="extra Beam pipeline options, verbatim")
    dask_address = luigi.Parameter(default="", description="HOST:PORT of a dask.distributed scheduler")
    device = luigi.Parameter(default="auto", description="auto | cpu | cuda | cuda:N")
    limit = luigi.OptionalIntParameter(default=None, description="at most this many images per dataset")
    images_per_shard = luigi.OptionalIntParameter(default=None, description="images per shard; auto")
    metrics = TextListParameter(default=list(DEFAULT_METRICS), description="metrics to compute: " + ", ".join(METRICS))
    anchor = luigi.Parameter(default="jpeg", description="codec NAME that BD-rates are measured against, or ref:SLUG "
                                                              "for a published curve (ref:vtm on Kodak)")
    reference = TextListParameter(default=[], description="published curves to overlay (slugs or 'all')")
    reference_dataset = luigi.Parameter(default="", description="published table for the overlays of a folder: dataset")
    strict = luigi.BoolParameter(default=False, description="fail the run if any item failed")
    verbose = luigi.BoolParameter(default=False, significant=False,
                                  description="show Beam's and the workers' logs on the console (else only in run.log)")

    # -- derived ---------------------------------------------------------------------------
    def config(self) -> RunConfig:
        """The run's configuration; roots not given come from luigi.cfg's [rdbench] section."""
        roots = rdbench_config()
        return RunConfig(
            datasets=self.datasets, codecs=self.codecs, qualities=self.qualities, metrics=self.metrics,
            limit=self.limit, images_per_shard=self.images_per_shard,
            output_root=self.output_root or roots.output_root, run_name=self.run_name,
            data_root=roots.data_root, weights_root=roots.weights_root, device=self.device,
            batch_size=self.batch_size, num_workers=self.num_workers, runner=self.runner,
            beam_options=self.beam_options, dask_address=self.dask_address, anchor=self.anchor,
            reference=self.reference, reference_dataset=self.reference_dataset, strict=self.strict)

    def run_dir(self) -> str:
        return self.config().run_dir()


@BenchmarkParams.event_handler(luigi.Event.FAILURE)
def _point_to_the_log(task: BenchmarkParams, exception: BaseException) -> None:
    """After Luigi's traceback of a failed task: one line saying what failed and where the full log is."""
    from pipelines.console import RUN_LOG

    run_log = folder.join(task.run_dir(), RUN_LOG)
    where = f"; full log: {run_log}" if folder.exists(run_log) else ""
    say(f"rdbench: {task.get_task_family()} failed: {type(exception).__name__}: {exception}{where}")


def _progress(task: luigi.Task, percent: int, message: str) -> None:
    """Report progress; the callbacks exist only when a Luigi worker runs the task."""
    if task.set_progress_percentage is not None:
        task.set_progress_percentage(percent)
    if task.set_status_message is not None:
        task.set_status_message(message)


class EvaluateRun(BenchmarkParams, luigi.Task):
    """Run the Beam job that evaluates every (image, codec, quality) into results/ and errors/."""

    def requires(self):
        from rdbench.datasets import is_local_spec

        catalog = [spec for spec in self.datasets if not is_local_spec(spec)]
        if not catalog:
            return []
        from pipelines.datasets import PrepareDataset

        return [PrepareDataset(name=spec) for spec in catalog]

    def output(self):
        return RunFile(folder.join(self.run_dir(), EVALUATED))

    def run(self):
        from pipelines.beam.job import RunnerConfig, run_job

        prepared = prepare_run(self.config())
        cfg = RunnerConfig.from_config(prepared.config, prepared.device)
        job_start = time.perf_counter()
        with job_console(prepared.run_dir, self.verbose) as console:
            counters = run_with_progress(lambda: run_job(prepared, cfg), prepared.run_dir, prepared.shards,
                                         console, lambda percent, message: _progress(self, percent, message))
        finish_run(prepared, counters, time.perf_counter() - job_start)


class RunFile(luigi.Target):
    """A file of the run folder on any Beam filesystem (local or object store)."""

    def __init__(self, path: str):
        self.path = path

    def exists(self) -> bool:
        return folder.exists(self.path)


class ComputeSetMetrics(BenchmarkParams, luigi.Task):
    """FID and KID per (dataset, codec, quality): a Beam combine over the run's features/ files."""

    def requires(self):
        return self.clone(EvaluateRun)

    def output(self):
        from rdbench.reports.set_metrics import SET_METRICS_FILE

        return RunFile(folder.join(self.run_dir(), SET_METRICS_FILE))

    def run(self):
        from pipelines.beam.job import RunnerConfig
        from pipelines.beam.set_metrics import run_set_metrics_job
        from rdbench.device import resolve_device

        _progress(self, 0, "combining patch features into FID/KID per set")
        start = time.perf_counter()
        config = self.config()
        asked = [m for m in config.metrics if METRICS[m].level == "set"]
        cfg = RunnerConfig.from_config(config, resolve_device(config.device))
        with job_console(config.run_dir(), self.verbose):
            counters = run_set_metrics_job(config.run_dir(), cfg, asked)
        log.info("rdbench: FID/KID of every set from %s feature file(s) in %.1f s",
                 counters.get("feature_files_read", "?"), time.perf_counter() - start)
        _progress(self, 100, "set metrics written")


class ReportRun(BenchmarkParams, luigi.Task):
    """Aggregate a run folder's rows into summary.csv, bd_rate.csv, plots/ and report.html."""

    def requires(self):
        if self.config().wants_set_metrics():
            return [self.clone(EvaluateRun), self.clone(ComputeSetMetrics)]
        return self.clone(EvaluateRun)

    def output(self):
        return RunFile(folder.join(self.run_dir(), "report.html"))

    def run(self):
        _progress(self, 0, "building report")
        build_run_report(self.config())
        _progress(self, 100, "report written")


class RunBenchmark(BenchmarkParams, luigi.WrapperTask):
    """The main job: evaluate datasets × codecs × qualities and write a complete run folder.

    The whole configuration is validated when the task is created, before any work: a bad one is
    refused in one line naming the parameter (from the command line: exit status 2, no traceback).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            config = self.config().validate()
        except ConfigError as exc:
            refuse(exc)
        report = folder.join(config.run_dir(), "report.html")
        if folder.exists(report):
            say(f"rdbench: this configuration's run is already complete; report: {report}")

    def requires(self):
        return self.clone(ReportRun)

    def run(self):
        say(closing_summary(self.run_dir()))
