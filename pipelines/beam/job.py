"""The Beam job: shards → spread over workers → evaluate and write each shard.

Reads top to bottom as the pipeline runs. Results never pass through a grouping step:
each shard is written by the worker that evaluated it, as soon as it is done, which is
what makes a killed job resumable shard by shard.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.beam.evaluate_shard import NAMESPACE, EvaluateShard
from rdbench.metrics.registry import DEFAULT_METRICS
from rdbench.run import PreparedRun, RunConfig

#: Runners selected by a short name; any other value is passed to Beam as ``--runner``.
LOCAL_RUNNER = "FnApiRunner"
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"


@dataclass(frozen=True)
class RunnerConfig:
    runner: str = LOCAL_RUNNER
    num_workers: int = 0  # 0 = one per core, or one per GPU on CUDA
    extra_options: tuple[str, ...] = ()
    dask_address: str = ""
    batch_size: int = 1  # images per batch for batched (GPU) codecs
    device: str = "cpu"
    metrics: tuple[str, ...] = DEFAULT_METRICS
    weights_root: str = ""
    uses_torch: bool = True  # a learned codec or network metric runs (RunConfig.uses_torch)

    @classmethod
    def from_config(cls, config: RunConfig, device: str) -> "RunnerConfig":
        return cls(config.runner, config.num_workers, tuple(config.beam_options.split()), config.dask_address,
                   config.effective_batch_size(device), device, tuple(config.metrics),
                   os.path.abspath(config.weights_root), config.uses_torch())


#: Torch threads per local CPU worker when networks run: their convolutions use 2 threads well
#: (bmshj2018-hyperprior on Kodak: 1.76x from 1 to 2 threads), and fewer processes load fewer
#: copies of torch and the models (benchmarks/bench_learned_workers.py).
TORCH_THREADS_PER_CPU_WORKER = 2


def default_num_workers(device: str = "cpu", uses_torch: bool = True) -> int:
    """Worker processes when ``--num-workers`` is not given.

    One per GPU on CUDA (each loads its models once). On the CPU: one per core for classical
    codecs (single-threaded libraries); with networks, one per :data:`TORCH_THREADS_PER_CPU_WORKER`
    cores (on 2 cores, 1 worker × 2 threads: 31.9 s against 35.6 s for 2 × 1 on 24 Kodak images).
    """
    if device.startswith("cuda"):
        import torch

        return max(1, torch.cuda.device_count()) if device == "cuda" else 1
    cores = os.cpu_count() or 1
    return max(1, cores // TORCH_THREADS_PER_CPU_WORKER) if uses_torch else cores


def threads_per_worker(cfg: RunnerConfig) -> int:
    """Torch threads for each local worker process so that workers × threads ≈ cores."""
    if cfg.runner != LOCAL_RUNNER:
        return 0
    workers = cfg.num_workers or default_num_workers(cfg.device, cfg.uses_torch)
    return max(1, (os.cpu_count() or 1) // workers)


def pipeline_options(cfg: RunnerConfig) -> tuple[object, PipelineOptions]:
    """The runner object (or name) and the options that select and tune it."""
    args = list(cfg.extra_options)
    if cfg.runner == LOCAL_RUNNER:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        workers = cfg.num_workers or default_num_workers(cfg.device, cfg.uses_torch)
        # One worker runs in this process: no worker process to start and import everything.
        mode = "multi_processing" if workers > 1 else "in_memory"
        args = [f"--direct_num_workers={workers}", f"--direct_running_mode={mode}"] + args
        return FnApiRunner(), PipelineOptions(args)
    if cfg.runner in ("DaskRunner", DASK_RUNNER):
        from apache_beam.runners.dask.dask_runner import DaskRunner

        if cfg.dask_address:
            args = [f"--dask_client_address={cfg.dask_address}"] + args
        if not any(a.startswith(("--dask_npartitions", "--dask_partition_size")) for a in args):
            # Dask bags default to ~128 elements per partition; a shard is already a coarse
            # unit of work, so give each its own partition to spread them over the workers.
            args.append("--dask_partition_size=1")
        return DaskRunner(), PipelineOptions(args)
    return cfg.runner, PipelineOptions(args)


def run_job(prepared: PreparedRun, cfg: RunnerConfig) -> dict[str, int]:
    """Evaluate the run's pending shards into its folder; return the job's rdbench counters."""
    runner, options = pipeline_options(cfg)
    evaluate = EvaluateShard(prepared.run_dir, prepared.run_id, cfg.device, cfg.batch_size, threads_per_worker(cfg),
                             cfg.metrics, cfg.weights_root)
    with beam.Pipeline(runner=runner, options=options) as p:
        (
            p
            | "Plan shards" >> beam.Create(list(prepared.pending))
            | "Spread over workers" >> beam.Reshuffle()
            | "Evaluate and write each shard" >> beam.ParDo(evaluate)
        )
    return finish(p.result)


def finish(result) -> dict[str, int]:
    """Release a finished job's runner resources; return its rdbench counters (name → total)."""
    client = getattr(result, "client", None)  # the Dask runner's distributed.Client
    if client is not None:
        client.close()
    try:
        counters = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    except NotImplementedError:  # e.g. the Dask runner collects no metrics yet
        return {}
    totals: dict[str, int] = {}
    for c in counters:
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + (c.committed or c.attempted or 0)
    return totals
