"""One benchmark run, start to finish, in plain Python: prepare → evaluate shards → finish → report.

:func:`run_benchmark` runs everything in this process (notebooks, tests, small runs). The Luigi
tasks call the same steps and hand :attr:`PreparedRun.pending` to a Beam job instead of
:func:`evaluate_shards`:

    prepared = prepare_run(config)         # validate, plan, check weights, guard the run folder
    counters = evaluate_shards(prepared)   # or the Beam job over prepared.pending
    finish_run(prepared, counters, job_s)  # run.json, the completion marker
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rdbench.run import folder
from rdbench.run.config import RunConfig
from rdbench.run.plan import Shard, auto_images_per_shard, pending_shards, plan_digest, plan_shards

__all__ = ["EVALUATED", "PreparedRun", "build_run_report", "evaluate_shards", "finish_run", "plan_run", "prepare_run",
           "run_benchmark"]

log = logging.getLogger(__name__)

#: The file that marks a run's evaluation complete (it holds the plan digest).
EVALUATED = "_EVALUATED"
PLAN = "plan.json"
RUN_JSON = "run.json"


@dataclass
class PreparedRun:
    """A validated run with its plan, ready to evaluate ``pending``."""

    config: RunConfig
    run_dir: str
    run_id: str
    device: str
    shards: list[Shard]
    pending: list[Shard]
    digest: str
    started: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    @property
    def batch_size(self) -> int:
        return self.config.effective_batch_size(self.device)


def plan_run(config: RunConfig, device: str = "cpu") -> list[Shard]:
    """The run's shards: every dataset image × codec ladder, grouped (a pure function of the config)."""
    from rdbench.codecs import get_codec
    from rdbench.datasets import get_dataset

    datasets = [get_dataset(spec, config.data_root).limit(config.limit) for spec in config.datasets]
    ladders = {}
    for spec in config.codec_specs():
        codec = get_codec(spec)
        ladders[codec.spec] = config.qualities.get(codec.name) or codec.default_qualities()
    per_shard = config.images_per_shard or max(config.effective_batch_size(device),
                                                auto_images_per_shard(sum(len(d) for d in datasets)))
    return plan_shards(datasets, ladders, per_shard)


def prepare_run(config: RunConfig) -> PreparedRun:
    """Validate, resolve the device, plan, locate metric weights, and claim the run folder.

    A run folder holding another configuration or plan is refused; the shards already written
    there are skipped.
    Nothing is evaluated here.
    """
    from rdbench.device import resolve_device

    config.validate()  # everything, metric weights included: fail now, not in every worker
    config.use_weights_root()
    device = resolve_device(config.device, uses_torch=config.uses_torch())
    shards = plan_run(config, device)
    run_dir = config.run_dir()
    digest = plan_digest(shards, config.metrics)
    plan_path = folder.join(run_dir, PLAN)
    if folder.exists(plan_path):
        previous = folder.read_json(plan_path)["digest"]
        if previous != digest:
            raise RuntimeError(f"run folder {run_dir} holds a run with a different plan ({previous} != {digest}); "
                               "use another --run-name or delete the folder")
    else:
        folder.write_json_atomic(plan_path, {"digest": digest, "n_shards": len(shards),
                                             "n_items": sum(s.n_items for s in shards),
                                             "configuration": config.defining()})
    pending = pending_shards(shards, folder.completed_shards(run_dir))
    log.info("rdbench: %d shards planned, %d already complete, %d to evaluate in %s",
             len(shards), len(shards) - len(pending), len(pending), run_dir)
    return PreparedRun(config, run_dir, config.run_id(), device, shards, pending, digest)


def evaluate_shards(prepared: PreparedRun, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Evaluate and write every pending shard in this process; returns the run's counters."""
    from rdbench.run.shard import ShardEvaluator

    evaluator = ShardEvaluator(prepared.run_id, prepared.device, prepared.batch_size, prepared.config.metrics)
    counters: dict[str, int] = {}
    for i, shard in enumerate(prepared.pending):
        outcome = evaluator.evaluate(shard)
        outcome.write(prepared.run_dir)
        for name, value in outcome.counters().items():
            counters[name] = counters.get(name, 0) + value
        if progress is not None:
            progress(i + 1, len(prepared.pending))
    return counters


def finish_run(prepared: PreparedRun, counters: dict[str, int], job_s: float) -> dict:
    """Check every shard was written, write run.json and the completion marker; returns run.json."""
    from rdbench.environment import environment_info
    from rdbench.run.shard import timing_method

    run_dir, config = prepared.run_dir, prepared.config
    done = folder.completed_shards(run_dir)
    missing = [s.name for s in prepared.shards if s.name not in done]
    if missing:
        raise RuntimeError(f"the evaluation ended with {len(missing)} shard(s) unwritten: {missing[:5]}")
    specs = config.codec_specs()
    info = {
        "run_id": prepared.run_id,
        "run_dir": run_dir,
        "configuration": config.to_dict() | {"codecs": specs},
        "config_digest": config.digest(),
        "codecs_left_out": config.codecs_left_out(),
        "device": prepared.device,
        "started": prepared.started,
        "finished": datetime.now(timezone.utc).isoformat(),
        "plan": {"digest": prepared.digest, "n_shards": len(prepared.shards),
                 "n_items": sum(s.n_items for s in prepared.shards),
                 "shards_resumed": len(prepared.shards) - len(prepared.pending)},
        "counters": counters,  # this invocation's counters (empty where a Beam runner has none)
        "rows": {"results": folder.count_rows(run_dir, "results"), "errors": folder.count_rows(run_dir, "errors")},
        "beam_job_s": round(job_s, 3),
        "timing": timing_method(prepared.device, counters),  # how encode_s/decode_s were measured
        "environment": environment_info(specs, prepared.device, config.metrics),
    }
    folder.write_json_atomic(folder.join(run_dir, RUN_JSON), info)
    if config.strict and info["rows"]["errors"]:
        raise RuntimeError(f"--strict: {info['rows']['errors']} item(s) failed; see {run_dir}/errors/")
    folder.write_bytes_atomic(folder.join(run_dir, EVALUATED), (prepared.digest + "\n").encode())
    return info


def build_run_report(config: RunConfig) -> None:
    """summary.csv, bd_rate.csv, plots/ and report.html of the run folder (local or remote)."""
    from rdbench.reports import build_report
    from rdbench.reports.set_metrics import SET_METRICS_FILE

    with folder.local_copy(config.run_dir(), ("results", "errors", RUN_JSON, SET_METRICS_FILE)) as local:
        build_report([local], anchor=config.anchor, reference=list(config.reference),
                     reference_dataset=config.reference_dataset)


def run_benchmark(config: RunConfig) -> Path | str:
    """Run a whole benchmark in this process and return the path of its report.html.

    The same steps and files as ``luigi --module pipelines RunBenchmark``, without Luigi or Beam:
    for notebooks, tests and small runs. Catalog datasets must already be prepared under
    ``config.data_root`` (``luigi --module pipelines PrepareDataset``). A run killed midway resumes
    from its written shards.
    """
    prepared = prepare_run(config)
    start = time.perf_counter()
    counters = evaluate_shards(prepared)
    finish_run(prepared, counters, time.perf_counter() - start)
    if config.wants_set_metrics():
        from rdbench.run.setmetrics import compute_set_metrics

        compute_set_metrics(prepared.run_dir, [m for m in config.metrics if m in ("fid", "kid")])
    build_run_report(config)
    return folder.join(prepared.run_dir, "report.html")
