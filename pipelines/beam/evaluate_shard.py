"""The DoFn that evaluates one shard and writes its Parquet files."""
from __future__ import annotations

import logging
import os
import time

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared

from rdbench.codecs import get_codec
from rdbench.evaluate import DEFAULT_METRICS, MetricSet, error_row, evaluate_batch, unit_rows
from rdbench.images import load_image
from rdbench.metrics.shardfeatures import ShardFeatures
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

    def __init__(self, run_dir: str, run_id: str, device: str, batch_size: int = 1, threads: int = 0,
                 metrics: tuple[str, ...] = DEFAULT_METRICS):
        self.run_dir, self.run_id, self.device, self.batch_size = run_dir, run_id, device, batch_size
        self.metric_names = metrics
        self.threads = threads  # torch threads per worker process; 0 = leave torch's default
        self._shared = Shared()
        self.items_ok = Metrics.counter(NAMESPACE, "items_ok")
        self.items_failed = Metrics.counter(NAMESPACE, "items_failed")
        self.shards_written = Metrics.counter(NAMESPACE, "shards_written")
        self.shards_skipped = Metrics.counter(NAMESPACE, "shards_skipped")
        self.images_loaded = Metrics.counter(NAMESPACE, "images_loaded")

    def setup(self):
        if self.threads:  # N worker processes on N cores: one thread each, not N² threads
            import torch

            torch.set_num_threads(self.threads)
        self._codecs = self._shared.acquire(_CodecCache, tag=f"codecs-{self.device}")
        self._metrics = MetricSet(self.metric_names, worker_device(self.device))

    def _codec(self, spec: str):
        if spec not in self._codecs:
            self._codecs[spec] = get_codec(spec).to(worker_device(self.device))
        return self._codecs[spec]

    def process(self, shard: Shard):
        if runfolder.exists(runfolder.shard_results_path(self.run_dir, shard.name)):
            self.shards_skipped.inc()  # finished by an earlier attempt of this run
            return
        timings: dict[str, float] = {}
        rows, errors = [], []
        # FID/KID patch features of the originals and reconstructions, when the run wants them.
        features = ShardFeatures() if self._metrics.wants_set_features else None
        ready = []  # (unit, codec, image) for the units whose image and codec loaded
        images = {}  # (dataset, path) -> array or the error that stopped it, within this shard
        for unit in shard.units:
            if (unit.dataset, unit.path) not in images:
                images[(unit.dataset, unit.path)] = self._load(unit, features, timings)
            image = images[(unit.dataset, unit.path)]
            if isinstance(image, Exception):
                stage = "metrics" if isinstance(image, _FeaturesError) else "load"
                error_type = type(image.__cause__ if stage == "metrics" else image).__name__
                errors += [error_row(unit, stage, error_type, str(image), self.run_id, q)
                           for q in unit.qualities]
                continue
            try:
                ready.append((unit, self._codec(unit.codec), image))
            except Exception as exc:  # noqa: BLE001 - e.g. weights missing on this worker
                errors += [error_row(unit, "encode", type(exc).__name__, str(exc), self.run_id, q)
                           for q in unit.qualities]
        for batch in batches(ready, self.batch_size):
            unit, codec, image = batch[0]
            measured = (evaluate_batch(codec, [im for _, _, im in batch], unit.qualities, self._metrics)
                        if len(batch) > 1 else [None])
            for (unit, codec, image), measurements in zip(batch, measured):
                unit_ok, unit_errors = unit_rows(unit, codec, image, self.run_id, timings, measurements,
                                                 self._metrics, features)
                rows += unit_ok
                errors += unit_errors
        start = time.perf_counter()
        runfolder.write_shard(self.run_dir, shard.name, rows, errors,
                              None if features is None else features.to_bytes())
        timings["write"] = time.perf_counter() - start
        for phase, seconds in timings.items():  # Beam counters are integers: milliseconds
            Metrics.counter(NAMESPACE, f"time_{phase}_ms").inc(int(round(seconds * 1000)))
        self.items_ok.inc(len(rows))
        self.items_failed.inc(len(errors))
        for e in errors:
            Metrics.counter(NAMESPACE, f"errors_{e['stage']}").inc()
        self.shards_written.inc()
        yield shard.name, len(rows), len(errors)

    def _load(self, unit, features: ShardFeatures | None, timings: dict[str, float]) -> np.ndarray | Exception:
        """The unit's image (and, for FID/KID, its patch features), or the exception that stopped it."""
        start = time.perf_counter()
        try:
            image = load_image(unit.path)
            self.images_loaded.inc()
        except Exception as exc:  # noqa: BLE001 - every load failure is an errors row
            return exc
        finally:
            timings["load"] = timings.get("load", 0.0) + time.perf_counter() - start
        if features is not None:
            start = time.perf_counter()
            try:
                features.add_original(unit.dataset, unit.image_id, self._metrics.set_features(image))
            except Exception as exc:  # noqa: BLE001 - the image's items fail at the metrics stage
                error = _FeaturesError(f"{unit.path}: FID/KID features of the original failed: {exc}")
                error.__cause__ = exc
                return error
            finally:
                timings["metrics"] = timings.get("metrics", 0.0) + time.perf_counter() - start
        return image


class _FeaturesError(Exception):
    """The original image's FID/KID features could not be computed (its items fail as ``metrics``)."""


def batches(ready: list, batch_size: int) -> list[list]:
    """Group (unit, codec, image) triples for batched codecs: same codec, ladder and image shape.

    Everything else (and every batch of one) goes through the per-image path.
    """
    groups: dict[tuple, list] = {}
    out = []
    for item in ready:
        unit, codec, image = item
        if batch_size > 1 and codec.batched:
            groups.setdefault((unit.codec, unit.qualities, image.shape), []).append(item)
        else:
            out.append([item])
    for members in groups.values():
        out += [members[i : i + batch_size] for i in range(0, len(members), batch_size)]
    return out


def worker_device(device: str) -> str:
    """With several GPUs and plain ``cuda``, spread worker processes over them by pid."""
    if device != "cuda":
        return device
    import torch

    count = torch.cuda.device_count()
    return f"cuda:{os.getpid() % count}" if count > 1 else device
