"""The Beam job of the set-level metrics: features/ files → FID and KID per set → set_metrics.csv.

Reads top to bottom as the pipeline runs. What travels between workers is patch features and the
per-set accumulators (means, scatter matrices, a bounded KID sample), never images, so the job
scales with the number of sets, not the number of images. The steps are :mod:`rdbench.run.setmetrics`'s.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines.beam.evaluate_shard import NAMESPACE
from pipelines.beam.job import RunnerConfig, finish, pipeline_options
from rdbench.metrics.setlevel import KID_MAX_PATCHES, KID_SEED, KID_SUBSET_SIZE, KID_SUBSETS, PatchFeatures, SetStats
from rdbench.run import folder
from rdbench.run.setmetrics import read_set_elements, write_set_metrics

_files_read = Metrics.counter(NAMESPACE, "feature_files_read")


class SetStatsCombineFn(beam.CombineFn):
    """``CombinePerKey(SetStatsCombineFn(metrics))`` over ``(set key, PatchFeatures)`` → the set's figures.

    The accumulator is :class:`~rdbench.metrics.setlevel.SetStats`; the output its
    :meth:`~rdbench.metrics.setlevel.SetStats.result` with only ``metrics`` (fid, kid) computed.
    """

    def __init__(self, *, metrics: Iterable[str] = ("fid", "kid"), kid_subsets: int = KID_SUBSETS,
                 kid_subset_size: int = KID_SUBSET_SIZE, kid_max_patches: int = KID_MAX_PATCHES, seed: int = KID_SEED):
        self.metrics = frozenset(metrics)
        self.kid_subsets, self.kid_subset_size = int(kid_subsets), int(kid_subset_size)
        self.kid_max_patches, self.seed = int(kid_max_patches), int(seed)

    def create_accumulator(self) -> SetStats:
        return SetStats(self.kid_max_patches, self.seed)

    def add_input(self, accumulator: SetStats, element: PatchFeatures) -> SetStats:
        return accumulator.add(element.key, element.real, element.fake)

    def merge_accumulators(self, accumulators: Iterable[SetStats]) -> SetStats:
        accumulators = iter(accumulators)
        merged = next(accumulators, None)
        if merged is None:
            return self.create_accumulator()
        for other in accumulators:  # Beam allows mutating (only) the first accumulator
            merged.merge(other)
        return merged

    def compact(self, accumulator: SetStats) -> SetStats:
        return accumulator.compact()

    def extract_output(self, accumulator: SetStats) -> dict:
        return accumulator.result(subsets=self.kid_subsets, subset_size=self.kid_subset_size, seed=self.seed,
                                  fid="fid" in self.metrics, kid="kid" in self.metrics)


def read_counted(path: str) -> Iterator:
    _files_read.inc()
    yield from read_set_elements(path)


def run_set_metrics_job(run_dir: str, cfg: RunnerConfig, metrics: Sequence[str] = ("fid", "kid")) -> dict[str, int]:
    """Compute ``metrics`` (FID, KID or both) of every (dataset, codec, quality) of ``run_dir`` into
    set_metrics.csv (a metric not asked for is left empty); return the job's counters."""
    runner, options = pipeline_options(cfg)
    with beam.Pipeline(runner=runner, options=options) as p:
        (
            p
            | "List feature files" >> beam.Create(folder.feature_files(run_dir))
            | "Spread over workers" >> beam.Reshuffle()
            | "Read patch features" >> beam.FlatMap(read_counted)
            | "FID and KID per (dataset, codec, quality)" >> beam.CombinePerKey(SetStatsCombineFn(metrics=metrics))
            | "Gather the sets" >> beam.combiners.ToList()
            | "Write set_metrics.csv" >> beam.Map(lambda sets: write_set_metrics(run_dir, sets))
        )
    return finish(p.result)
