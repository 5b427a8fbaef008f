"""RunBenchmark and the tasks it requires.

    luigi --module pipelines RunBenchmark --local-scheduler

RunBenchmark → ReportRun (summary.csv, bd_rate.csv, plots, report.html)
             → EvaluateRun (the Beam job: one Parquet file per shard; run.json)
               → PrepareDataset for every catalog dataset named in --datasets
             → ComputeSetMetrics, when --metrics names fid or kid (a second Beam job:
               set_metrics.csv from the features/ the first one wrote).

EvaluateRun is complete when every shard of the plan is written; a re-run of an interrupted
run evaluates only the missing shards. Parameters and files are the contracts of DESIGN.md.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from datetime import datetime, timezone

import luigi

from pipelines.config import rdbench as rdbench_config
from rdbench import runfolder
from rdbench.environment import environment_info
from rdbench.evaluate import DEFAULT_METRICS, SET_METRICS, MetricSet
from rdbench.workplan import auto_images_per_shard, plan_digest, plan_shards

log = logging.getLogger("luigi-interface")


class BenchmarkParams(luigi.Task):
    """The parameters of a benchmark run, shared by every task of the run (not run itself)."""

    datasets = luigi.ListParameter(default=["sample"], description="dataset specs (JSON list)")
    codecs = luigi.ListParameter(default=[], description="codec specs (JSON list); [] = the default set")
    qualities = luigi.DictParameter(default={}, description="codec NAME → list of qualities")
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
    metrics = luigi.ListParameter(default=list(DEFAULT_METRICS),
                                  description="metrics to compute: psnr_rgb, psnr_y, ms_ssim_rgb, lpips, fid, kid")
    anchor = luigi.Parameter(default="jpeg", description="codec NAME that BD-rates are measured against")
    reference = luigi.ListParameter(default=[], description="published curves to overlay (slugs or 'all')")
    strict = luigi.BoolParameter(default=False, description="fail the run if any item failed")

    # -- derived ---------------------------------------------------------------------------
    def codec_specs(self) -> list[str]:
        # Learned codecs (here and in Beam workers, which inherit the environment) find their
        # weights under [rdbench] weights_root unless RDBENCH_WEIGHTS_ROOT says otherwise.
        os.environ.setdefault("RDBENCH_WEIGHTS_ROOT", os.path.abspath(rdbench_config().weights_root))
        return list(self.codecs) or self._default_codecs()[0]

    def _default_codecs(self) -> tuple[list[str], dict[str, str]]:
        from rdbench.codecs.defaults import default_codec_specs

        return default_codec_specs()

    def resolved_run_name(self) -> str:
        if self.run_name:
            return self.run_name
        config = [list(self.datasets), self.codec_specs(), dict(self.qualities), self.limit]
        if tuple(self.metrics) != DEFAULT_METRICS:
            config.append(sorted(self.metrics))
        config = json.dumps(config, sort_keys=True, default=list)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", "+".join(self.datasets))[:40].strip("-")
        return f"{slug}-{hashlib.sha256(config.encode()).hexdigest()[:8]}"

    def run_dir(self) -> str:
        root = self.output_root or rdbench_config().output_root
        if "://" not in root:  # local: absolute, so Beam worker processes agree on it
            root = os.path.abspath(root)
        return runfolder.join(root, self.resolved_run_name())

    def wants_set_metrics(self) -> bool:
        return bool(set(SET_METRICS) & set(self.metrics))

    def runner_config(self, device: str):
        from pipelines.beam.job import RunnerConfig

        return RunnerConfig(self.runner, self.num_workers, tuple(self.beam_options.split()), self.dask_address,
                            self.effective_batch_size(device), device, tuple(self.metrics))

    def effective_batch_size(self, device: str) -> int:
        return self.batch_size or (8 if device.startswith("cuda") else 1)

    def config_dict(self) -> dict:
        return {name: (list(v) if isinstance(v, tuple) else dict(v) if hasattr(v, "items") else v)
                for name, v in self.param_kwargs.items()}


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
        return RunFile(runfolder.join(self.run_dir(), "_EVALUATED"))

    def plan(self, device: str = "cpu"):
        from rdbench.codecs import get_codec
        from rdbench.datasets import get_dataset

        data_root = rdbench_config().data_root
        datasets = [get_dataset(spec, data_root).limit(self.limit) for spec in self.datasets]
        ladders = {}
        for spec in self.codec_specs():
            codec = get_codec(spec)
            ladders[codec.spec] = self.qualities.get(codec.name) or codec.default_qualities()
        batch = self.effective_batch_size(device)
        per_shard = self.images_per_shard or max(batch, auto_images_per_shard(sum(len(d) for d in datasets)))
        return plan_shards(datasets, ladders, per_shard)

    def run(self):
        from pipelines.beam.job import run_job
        from rdbench.device import resolve_device

        run_dir, run_id = self.run_dir(), self.resolved_run_name()
        device = resolve_device(self.device)
        shards = self.plan(device)
        metrics = tuple(self.metrics)
        MetricSet(metrics)  # validates the names
        if {"lpips", "fid", "kid"} & set(metrics):  # fail now, not in every worker, when weights are missing
            from rdbench.metrics.perceptual import require_metric_weights

            require_metric_weights(metrics)
        digest = plan_digest(shards, metrics)
        plan_path = runfolder.join(run_dir, "plan.json")
        if runfolder.exists(plan_path):
            previous = runfolder.read_json(plan_path)["digest"]
            if previous != digest:
                raise RuntimeError(
                    f"run folder {run_dir} holds a run with a different plan ({previous} != {digest}); "
                    "use another --run-name or delete the folder")
        else:
            runfolder.write_json_atomic(plan_path, {"digest": digest, "n_shards": len(shards),
                                                    "n_items": sum(s.n_items for s in shards)})
        started = datetime.now(timezone.utc).isoformat()
        done = runfolder.completed_shards(run_dir)
        pending = [s for s in shards if s.name not in done]
        log.info("rdbench: %d shards planned, %d already complete, %d to evaluate in %s",
                 len(shards), len(shards) - len(pending), len(pending), run_dir)
        cfg = self.runner_config(device)
        job_start = time.perf_counter()
        counters = self._run_with_progress(lambda: run_job(pending, run_dir, run_id, device, cfg),
                                           run_dir, len(shards))
        job_s = time.perf_counter() - job_start
        missing = [s.name for s in shards if s.name not in runfolder.completed_shards(run_dir)]
        if missing:
            raise RuntimeError(f"Beam job ended with {len(missing)} shard(s) unwritten: {missing[:5]}")
        info = {
            "run_id": run_id,
            "run_dir": run_dir,
            "configuration": self.config_dict() | {"codecs": self.codec_specs()},
            "codecs_left_out": {} if self.codecs else self._default_codecs()[1],
            "device": device,
            "started": started,
            "finished": datetime.now(timezone.utc).isoformat(),
            "plan": {"digest": digest, "n_shards": len(shards), "n_items": sum(s.n_items for s in shards),
                     "shards_resumed": len(shards) - len(pending)},
            "counters": counters,  # this invocation's Beam counters (empty where a runner has none)
            "rows": {"results": runfolder.count_rows(run_dir, "results"),
                     "errors": runfolder.count_rows(run_dir, "errors")},
            "beam_job_s": round(job_s, 3),
            "environment": environment_info(self.codec_specs(), device),
        }
        runfolder.write_json_atomic(runfolder.join(run_dir, "run.json"), info)
        if self.strict and info["rows"]["errors"]:
            raise RuntimeError(f"--strict: {info['rows']['errors']} item(s) failed; see {run_dir}/errors/")
        runfolder.write_bytes_atomic(self.output().path, (digest + "\n").encode())

    def _run_with_progress(self, job, run_dir: str, n_shards: int) -> dict:
        """Run the (synchronous) Beam job in a thread and report shard progress meanwhile."""
        outcome: dict = {}

        def target():
            try:
                outcome["counters"] = job()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the task's thread
                outcome["error"] = exc

        thread = threading.Thread(target=target, name="beam-job", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(timeout=2.0)
            n_done = len(runfolder.completed_shards(run_dir))
            _progress(self, int(100 * n_done / max(n_shards, 1)), f"{n_done}/{n_shards} shards evaluated")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["counters"]


class RunFile(luigi.Target):
    """A file of the run folder on any Beam filesystem (local or object store)."""

    def __init__(self, path: str):
        self.path = path

    def exists(self) -> bool:
        return runfolder.exists(self.path)


class ComputeSetMetrics(BenchmarkParams, luigi.Task):
    """FID and KID per (dataset, codec, quality): a Beam combine over the run's features/ files."""

    def requires(self):
        return self.clone(EvaluateRun)

    def output(self):
        from rdbench.reports.set_metrics import SET_METRICS_FILE

        return RunFile(runfolder.join(self.run_dir(), SET_METRICS_FILE))

    def run(self):
        from pipelines.beam.set_metrics import run_set_metrics_job
        from rdbench.device import resolve_device

        _progress(self, 0, "combining patch features into FID/KID per set")
        start = time.perf_counter()
        asked = [m for m in SET_METRICS if m in self.metrics]
        counters = run_set_metrics_job(self.run_dir(), self.runner_config(resolve_device(self.device)), asked)
        log.info("rdbench: FID/KID of every set from %s feature file(s) in %.1f s",
                 counters.get("feature_files_read", "?"), time.perf_counter() - start)
        _progress(self, 100, "set metrics written")


class ReportRun(BenchmarkParams, luigi.Task):
    """Aggregate a run folder's rows into summary.csv, bd_rate.csv, plots/ and report.html."""

    def requires(self):
        if self.wants_set_metrics():
            return [self.clone(EvaluateRun), self.clone(ComputeSetMetrics)]
        return self.clone(EvaluateRun)

    def output(self):
        return RunFile(runfolder.join(self.run_dir(), "report.html"))

    def run(self):
        from rdbench.reports import build_report

        _progress(self, 0, "building report")
        from rdbench.reports.set_metrics import SET_METRICS_FILE

        with runfolder.local_copy(self.run_dir(), ("results", "errors", "run.json", SET_METRICS_FILE)) as local:
            build_report([local], anchor=self.anchor, reference=list(self.reference))
        _progress(self, 100, "report written")


class RunBenchmark(BenchmarkParams, luigi.WrapperTask):
    """The main job: evaluate datasets × codecs × qualities and write a complete run folder."""

    def requires(self):
        return self.clone(ReportRun)
