"""The Beam job of the set-level metrics: features/ files → FID and KID per set → set_metrics.csv.

Reads top to bottom as the pipeline runs. What travels between workers is patch features and the
per-set accumulators (means, scatter matrices, a bounded KID sample), never images, so the job
scales with the number of sets, not the number of images (see :mod:`rdbench.metrics.setlevel`).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines.beam.evaluate_shard import NAMESPACE
from pipelines.beam.job import RunnerConfig, finish, pipeline_options
from rdbench import runfolder
from rdbench.metrics.setlevel import PatchFeatures, SetStatsCombineFn
from rdbench.metrics.shardfeatures import SetKey, ShardFeatures
from rdbench.reports.set_metrics import SET_METRICS_FILE, set_metrics_csv

_files_read = Metrics.counter(NAMESPACE, "feature_files_read")


def read_set_elements(path: str) -> Iterator[tuple[SetKey, PatchFeatures]]:
    """One features file's ``((dataset, codec, quality), PatchFeatures)`` elements."""
    features = ShardFeatures.from_bytes(runfolder.read_bytes(path), source=path)
    _files_read.inc()
    yield from features.set_elements()


def write_set_metrics(sets: list, run_dir: str) -> int:
    runfolder.write_bytes_atomic(runfolder.join(run_dir, SET_METRICS_FILE), set_metrics_csv(sets))
    return len(sets)


def run_set_metrics_job(run_dir: str, cfg: RunnerConfig, metrics: Sequence[str] = ("fid", "kid")) -> dict[str, int]:
    """Compute ``metrics`` (FID, KID or both) of every (dataset, codec, quality) of ``run_dir`` into
    set_metrics.csv (a metric not asked for is left empty); return the job's counters."""
    runner, options = pipeline_options(cfg)
    with beam.Pipeline(runner=runner, options=options) as p:
        (
            p
            | "List feature files" >> beam.Create(runfolder.feature_files(run_dir))
            | "Spread over workers" >> beam.Reshuffle()
            | "Read patch features" >> beam.FlatMap(read_set_elements)
            | "FID and KID per (dataset, codec, quality)" >> beam.CombinePerKey(SetStatsCombineFn(metrics=metrics))
            | "Gather the sets" >> beam.combiners.ToList()
            | "Write set_metrics.csv" >> beam.Map(write_set_metrics, run_dir)
        )
    return finish(p.result)
