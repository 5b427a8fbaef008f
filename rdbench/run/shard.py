"""Evaluate one shard into results rows, errors rows and (for FID/KID) patch features, and write it.

:class:`ShardEvaluator` is what every runner calls per shard: the Beam DoFn, the in-process
:func:`~rdbench.run.core.run_benchmark`, a notebook. It holds what a worker process keeps between
shards (codecs with their loaded models, metric networks). Every failure becomes an errors row
for its own item, at the stage where it happened; the shard still completes.

Before the first timed item of each (codec, quality) an evaluator warms the codec up, untimed
(:func:`~rdbench.run.ladder.warm_up`): model loading and first-call costs stay out of
``encode_s``/``decode_s`` and are counted in ``time_warmup_ms``; :func:`timing_method` states the
whole method, for run.json.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rdbench.codecs import Codec, get_codec
from rdbench.images import load_image
from rdbench.metrics.registry import DEFAULT_METRICS
from rdbench.run import folder
from rdbench.run.ladder import (
    WARMUP_SIDE,
    Failure,
    Measurement,
    MetricSet,
    evaluate_batch,
    evaluate_ladder,
    warm_up,
)
from rdbench.run.plan import Shard, WorkUnit

if TYPE_CHECKING:  # FID/KID features need torch: imported only when a run asks for them
    from rdbench.metrics.shardfeatures import ShardFeatures

__all__ = ["MAX_WARMUP_TRIES", "ShardEvaluator", "ShardOutcome", "batches", "error_row", "timing_method", "unit_rows",
           "worker_device"]

log = logging.getLogger(__name__)

#: A (codec, quality) whose warm-up failed is warmed up again before its next item, this many times at most.
MAX_WARMUP_TRIES = 3


@dataclass
class ShardOutcome:
    """What evaluating one shard produced: rows for results/ and errors/, features, phase seconds."""

    name: str
    rows: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    features: "ShardFeatures | None" = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase: load, encode, …, warmup
    images_loaded: int = 0
    warmups: int = 0  # (codec, quality) pairs warmed up in this shard
    warmups_failed: int = 0  # warm-ups that failed (their items were still evaluated)
    torch_threads: int | None = None  # torch's intra-op threads in this worker (None: torch not imported)

    def counters(self) -> dict[str, int]:
        """The shard's contribution to the run's counters (Beam counters are integers: ms).

        ``time_warmup_ms`` is all the time kept out of ``encode_s``/``decode_s`` (building codecs,
        ``Codec.prepare``, warm-up coding); ``time_prepare_ms`` its loading part.
        ``shards_torch_threads_N`` counts the shards evaluated with N torch threads.
        """
        out = {"items_ok": len(self.rows), "items_failed": len(self.errors), "shards_written": 1,
               "images_loaded": self.images_loaded}
        out |= {"warmups": self.warmups, "warmups_failed": self.warmups_failed, "time_warmup_ms": 0,
                "time_prepare_ms": 0}
        if self.torch_threads is not None:
            out[f"shards_torch_threads_{self.torch_threads}"] = 1
        for phase, seconds in self.timings.items():
            out[f"time_{phase}_ms"] = int(round(seconds * 1000))
        for e in self.errors:
            out[f"errors_{e['stage']}"] = out.get(f"errors_{e['stage']}", 0) + 1
        return out

    def write(self, run_dir: str) -> None:
        """Write the shard's files (features, errors, then results, which marks it complete)."""
        start = time.perf_counter()
        folder.write_shard(run_dir, self.name, self.rows, self.errors,
                           None if self.features is None else self.features.to_bytes())
        self.timings["write"] = time.perf_counter() - start


class ShardEvaluator:
    """Evaluates shards on one worker: codecs are built once per spec, metric networks once.

    ``codecs`` may be a mapping shared between evaluators of one process (Beam shares it across a
    worker's threads), so that learned models load once per process. Each evaluator warms every
    (codec, quality) up once, untimed, before its first item (see :func:`timing_method`).
    """

    def __init__(self, run_id: str, device: str = "cpu", batch_size: int = 1,
                 metrics: Sequence[str] = DEFAULT_METRICS, codecs: MutableMapping[str, Codec] | None = None):
        self.run_id, self.batch_size = run_id, batch_size
        self.device = worker_device(device)
        self.metrics = MetricSet(metrics, self.device)
        self.codecs: MutableMapping[str, Codec] = {} if codecs is None else codecs
        self._warm: set[tuple[str, float]] = set()  # (codec spec, quality) warmed up here
        self._warmup_tries: dict[tuple[str, float], int] = {}

    def codec(self, spec: str, timings: dict[str, float] | None = None) -> Codec:
        """The codec of ``spec``, built on first use (the seconds added to ``timings`` prepare and warmup)."""
        if spec not in self.codecs:
            start = time.perf_counter()
            try:
                self.codecs[spec] = get_codec(spec).to(self.device)
            finally:
                if timings is not None:
                    seconds = time.perf_counter() - start
                    for phase in ("prepare", "warmup"):
                        timings[phase] = timings.get(phase, 0.0) + seconds
        return self.codecs[spec]

    def warm_up(self, spec: str, codec: Codec, images: Sequence[np.ndarray], qualities: Sequence[float],
                out: ShardOutcome) -> None:
        """Warm up the qualities of ``spec`` not yet warm here, untimed (a failure is logged, never raised)."""
        cold = [q for q in qualities if (spec, float(q)) not in self._warm
                and self._warmup_tries.get((spec, float(q)), 0) < MAX_WARMUP_TRIES]
        if not cold:
            return
        done = warm_up(codec, images, cold)
        for phase, seconds in (("prepare", done.prepare_s), ("warmup", done.seconds)):
            out.timings[phase] = out.timings.get(phase, 0.0) + seconds
        for q in cold:
            self._warmup_tries[(spec, float(q))] = self._warmup_tries.get((spec, float(q)), 0) + 1
        self._warm.update((spec, q) for q in done.warmed)
        out.warmups += len(done.warmed)
        out.warmups_failed += len(done.failed)
        for q, error in done.failed.items():
            log.warning("rdbench: warm-up of %s at quality %g failed (its items are evaluated anyway): %s",
                        spec, q, error)

    def evaluate(self, shard: Shard) -> ShardOutcome:
        """Every (image, codec, quality) of ``shard``: one results or errors row each."""
        out = ShardOutcome(shard.name)
        if self.metrics.wants_set_features:
            from rdbench.metrics.shardfeatures import ShardFeatures

            out.features = ShardFeatures()
        ready = []  # (unit, codec, image) for the units whose image and codec loaded
        images: dict[tuple[str, str], np.ndarray | Exception] = {}  # one load per image and shard
        for unit in shard.units:
            key = (unit.dataset, unit.path)
            if key not in images:
                images[key] = self._load(unit, out)
            image = images[key]
            if isinstance(image, Exception):
                stage = "metrics" if isinstance(image, _FeaturesError) else "load"
                error_type = type(image.__cause__ if stage == "metrics" else image).__name__
                out.errors += [error_row(unit, stage, error_type, str(image), self.run_id, q) for q in unit.qualities]
                continue
            try:
                ready.append((unit, self.codec(unit.codec, out.timings), image))
            except Exception as exc:  # noqa: BLE001 - e.g. weights missing on this worker
                out.errors += [error_row(unit, "encode", type(exc).__name__, str(exc), self.run_id, q)
                               for q in unit.qualities]
        for batch in batches(ready, self.batch_size):
            unit, codec, _ = batch[0]
            self.warm_up(unit.codec, codec, [im for _, _, im in batch], unit.qualities, out)
            measured = (evaluate_batch(codec, [im for _, _, im in batch], unit.qualities, self.metrics)
                        if len(batch) > 1 else [None])
            for (unit, codec, image), measurements in zip(batch, measured):
                rows, errors = unit_rows(unit, codec, image, self.run_id, out.timings, measurements,
                                         self.metrics, out.features)
                out.rows += rows
                out.errors += errors
        if "torch" in sys.modules:  # codecs and metrics that use torch imported it
            out.torch_threads = sys.modules["torch"].get_num_threads()
        return out

    def _load(self, unit: WorkUnit, out: ShardOutcome) -> np.ndarray | Exception:
        """The unit's image (and, for FID/KID, its patch features), or the exception that stopped it."""
        start = time.perf_counter()
        try:
            image = load_image(unit.path)
            out.images_loaded += 1
        except Exception as exc:  # noqa: BLE001 - every load failure is an errors row
            return exc
        finally:
            out.timings["load"] = out.timings.get("load", 0.0) + time.perf_counter() - start
        if out.features is not None:
            start = time.perf_counter()
            try:
                out.features.add_original(unit.dataset, unit.image_id, self.metrics.set_features(image))
            except Exception as exc:  # noqa: BLE001 - the image's items fail at the metrics stage
                error = _FeaturesError(f"{unit.path}: FID/KID features of the original failed: {exc}")
                error.__cause__ = exc
                return error
            finally:
                out.timings["metrics"] = out.timings.get("metrics", 0.0) + time.perf_counter() - start
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


def unit_rows(
    unit: WorkUnit, codec: Codec, image: np.ndarray, run_id: str, timings: dict[str, float] | None = None,
    measurements: Sequence[Measurement | Failure] | None = None, metrics: MetricSet | None = None,
    features: "ShardFeatures | None" = None,
) -> tuple[list[dict], list[dict]]:
    """Evaluate one work unit (or take its ``measurements``); return results and errors rows.

    ``timings``, when given, accumulates seconds spent per phase (encode, decode, verify,
    metrics). ``features``, when given, receives each successful reconstruction's FID/KID patch
    features (its original's must already be there).
    """
    height, width = image.shape[:2]
    key = {"dataset": unit.dataset, "image_id": unit.image_id, "codec": unit.codec}
    rows, errors = [], []
    if measurements is None:
        measurements = list(evaluate_ladder(codec, image, unit.qualities, metrics=metrics))
    for m in measurements:
        if isinstance(m, Failure):
            errors.append(error_row(unit, m.stage, m.error_type, m.message, run_id, m.quality))
            continue
        if timings is not None:
            for phase, seconds in (("encode", m.encode_s), ("decode", m.decode_s), ("verify", m.verify_s),
                                   ("metrics", m.metrics_s)):
                timings[phase] = timings.get(phase, 0.0) + seconds
        if features is not None and m.features is not None:
            features.add_reconstruction(unit.dataset, unit.image_id, unit.codec, m.quality, m.features)
        rows.append({
            **key,
            "codec_version": codec.version_for(m.quality),
            "quality": m.quality,
            "height": height,
            "width": width,
            "num_bytes": m.num_bytes,
            "bpp": m.bpp,
            "bpp_estimated": m.bpp_estimated,
            **m.values,
            "encode_s": m.encode_s,
            "decode_s": m.decode_s,
            "device": codec.device,
            "roundtrip_ok": m.roundtrip_ok,
            "run_id": run_id,
        })
    return rows, errors


def error_row(unit: WorkUnit, stage: str, error_type: str, message: str, run_id: str,
              quality: float | None = None) -> dict:
    """An errors row; ``quality`` is None for failures that precede any quality (load)."""
    return {
        "dataset": unit.dataset,
        "image_id": unit.image_id,
        "codec": unit.codec,
        "quality": quality,
        "stage": stage,
        "error_type": error_type,
        "message": message,
        "run_id": run_id,
    }


def timing_method(device: str, counters: Mapping[str, int] | None = None) -> dict:
    """How ``encode_s`` and ``decode_s`` were measured: run.json's ``timing`` section.

    ``counters`` (the run's, where the runner collects them) add the observed torch threads per
    worker and the warm-up seconds; where a runner collects none, those are null.
    """
    counters = counters or {}
    threads = sorted(int(k.rsplit("_", 1)[1]) for k in counters if k.startswith("shards_torch_threads_"))
    warmup_ms, prepare_ms = counters.get("time_warmup_ms"), counters.get("time_prepare_ms")
    return {
        "clock": "time.perf_counter (monotonic wall clock), in seconds",
        "device_synchronisation": (
            "rdbench.device.synchronize(codec.device) before and after every timed encode and decode: "
            f"torch.cuda.synchronize on CUDA, nothing to wait for on the CPU (this run: {device})"),
        "encode_s": ("Codec.compress of one image at one quality (a batch's compress_batch: its time shared "
                     "equally; a progressive codec's one compress_ladder: charged to every rate)"),
        "decode_s": ("the first of two decodes (the second checks the round trip and is not in results); "
                     "a progressive codec's ladder decode: the time until that rate's image was ready"),
        "warmup": (
            "untimed, once per worker (ShardEvaluator) and (codec, quality), before that pair's first timed item: "
            "building the codec, Codec.prepare(quality) (learned codecs load the network and place it on "
            f"the device), then one encode and decode of the item's top-left crop of at most "
            f"{WARMUP_SIDE}x{WARMUP_SIDE} pixels through the same path (per image, whole ladder for "
            "progressive codecs, batch for batched ones). A failed warm-up is logged and ignored: the "
            f"item succeeds or fails on its own, and the warm-up is tried again before the pair's next "
            f"item ({MAX_WARMUP_TRIES} tries at most)"),
        "torch_threads_per_worker": threads or None,
        "warmup_s": None if warmup_ms is None else round(warmup_ms / 1000, 3),
        "prepare_s": None if prepare_ms is None else round(prepare_ms / 1000, 3),
    }
