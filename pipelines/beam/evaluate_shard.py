"""The DoFn that evaluates one shard and writes its files: an adapter over :class:`rdbench.run.shard.ShardEvaluator`."""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared

from rdbench.metrics.registry import DEFAULT_METRICS
from rdbench.run import folder
from rdbench.run.plan import Shard
from rdbench.run.shard import ShardEvaluator

NAMESPACE = "rdbench"


class _CodecCache(dict):
    """Codecs by spec, one per worker process (weak-referenceable for Beam's Shared)."""


class EvaluateShard(beam.DoFn):
    """Evaluate a shard, write results/ and errors/, and count what happened in Beam counters.

    Codecs are built once per worker process and shared across its threads (Beam's ``Shared``),
    so learned models load once. A shard already written (by an earlier attempt) is skipped.
    """

    def __init__(self, run_dir: str, run_id: str, device: str, batch_size: int = 1, threads: int = 0,
                 metrics: Sequence[str] = DEFAULT_METRICS, weights_root: str = ""):
        self.run_dir, self.run_id, self.device, self.batch_size = run_dir, run_id, device, batch_size
        self.metric_names = tuple(metrics)
        self.threads = threads  # torch threads per worker process; 0 = leave torch's default
        self.weights_root = weights_root
        self._shared = Shared()
        self.shards_skipped = Metrics.counter(NAMESPACE, "shards_skipped")

    def setup(self):
        if self.threads:  # N worker processes on N cores: one thread each, not N² threads
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(self.threads)
            else:  # torch reads these when (if ever) a learned codec or metric imports it: no import here
                for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                    os.environ[var] = str(self.threads)
        if self.weights_root:  # a worker on another machine does not inherit the launcher's environment
            from rdbench.codecs.weights import ENV_ROOT

            os.environ.setdefault(ENV_ROOT, self.weights_root)
        codecs = self._shared.acquire(_CodecCache, tag=f"codecs-{self.device}")
        self._evaluator = ShardEvaluator(self.run_id, self.device, self.batch_size, self.metric_names, codecs)

    def process(self, shard: Shard):
        if folder.exists(folder.shard_results_path(self.run_dir, shard.name)):
            self.shards_skipped.inc()  # finished by an earlier attempt of this run
            return
        outcome = self._evaluator.evaluate(shard)
        outcome.write(self.run_dir)
        for name, value in outcome.counters().items():
            Metrics.counter(NAMESPACE, name).inc(value)
        yield shard.name, len(outcome.rows), len(outcome.errors)
