"""The DoFn that evaluates one shard and writes its Parquet files."""
from __future__ import annotations

import logging
import time

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared

from rdbench.codecs import get_codec
from rdbench.evaluate import error_row, unit_rows
from rdbench.images import load_image
from rdbench import runfolder
from rdbench.workplan import Shard

log = logging.getLogger(__name__)
NAMESPACE = "rdbench"


class _CodecCache(dict):
    """Codecs by spec, one per worker process (weak-referenceable for Beam's Shared)."""


class EvaluateShard(beam.DoFn):
    """Evaluate every (image, codec, quality) of a shard and write results/ and errors/.

    Codecs are built once per worker process and shared across its threads (Beam's
    ``Shared``), so learned models load once. Each failure becomes an errors row for its own
    item; the shard still completes.
    """

    def __init__(self, run_dir: str, run_id: str, device: str):
        self.run_dir, self.run_id, self.device = run_dir, run_id, device
        self._shared = Shared()
        self.items_ok = Metrics.counter(NAMESPACE, "items_ok")
        self.items_failed = Metrics.counter(NAMESPACE, "items_failed")
        self.shards_written = Metrics.counter(NAMESPACE, "shards_written")
        self.shards_skipped = Metrics.counter(NAMESPACE, "shards_skipped")
        self.images_loaded = Metrics.counter(NAMESPACE, "images_loaded")

    def setup(self):
        self._codecs = self._shared.acquire(_CodecCache, tag=f"codecs-{self.device}")

    def _codec(self, spec: str):
        if spec not in self._codecs:
            self._codecs[spec] = get_codec(spec).to(self.device)
        return self._codecs[spec]

    def process(self, shard: Shard):
        if runfolder.exists(runfolder.shard_results_path(self.run_dir, shard.name)):
            self.shards_skipped.inc()  # finished by an earlier attempt of this run
            return
        rows, errors = [], []
        timings: dict[str, float] = {}
        images = {}  # path -> array or the load error, within this shard
        for unit in shard.units:
            if unit.path not in images:
                start = time.perf_counter()
                try:
                    images[unit.path] = load_image(unit.path)
                    self.images_loaded.inc()
                except Exception as exc:  # noqa: BLE001 - every load failure is an errors row
                    images[unit.path] = exc
                timings["load"] = timings.get("load", 0.0) + time.perf_counter() - start
            image = images[unit.path]
            if isinstance(image, Exception):
                errors += [error_row(unit, "load", type(image).__name__, str(image), self.run_id, q)
                           for q in unit.qualities]
                continue
            try:
                codec = self._codec(unit.codec)
            except Exception as exc:  # noqa: BLE001 - e.g. weights missing on this worker
                errors += [error_row(unit, "encode", type(exc).__name__, str(exc), self.run_id, q)
                           for q in unit.qualities]
                continue
            unit_ok, unit_errors = unit_rows(unit, codec, image, self.run_id, timings)
            rows += unit_ok
            errors += unit_errors
        start = time.perf_counter()
        runfolder.write_shard(self.run_dir, shard.name, rows, errors)
        timings["write"] = time.perf_counter() - start
        for phase, seconds in timings.items():  # Beam counters are integers: milliseconds
            Metrics.counter(NAMESPACE, f"time_{phase}_ms").inc(int(round(seconds * 1000)))
        self.items_ok.inc(len(rows))
        self.items_failed.inc(len(errors))
        for e in errors:
            Metrics.counter(NAMESPACE, f"errors_{e['stage']}").inc()
        self.shards_written.inc()
        yield shard.name, len(rows), len(errors)
