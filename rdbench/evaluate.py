"""Evaluate one codec on one image over a quality ladder: encode, decode, measure.

This is the unit of work behind every results row. Each quality succeeds or fails on its
own: a failure yields a :class:`Failure` naming the stage (``encode``, ``decode`` or
``metrics``), never an exception that would lose the other qualities.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rdbench.codecs.base import Codec, Encoded
from rdbench.device import synchronize
from rdbench.metrics import ImageTooSmallError, ms_ssim, ms_ssim_db, psnr, psnr_y

#: Metrics a run computes unless told otherwise (``--metrics``).
DEFAULT_METRICS = ("psnr_rgb", "psnr_y", "ms_ssim_rgb")
#: Per-image metrics (results columns) and set-level ones (summary columns).
IMAGE_METRICS = ("psnr_rgb", "psnr_y", "ms_ssim_rgb", "lpips")
SET_METRICS = ("fid", "kid")

if TYPE_CHECKING:
    from rdbench.metrics.shardfeatures import ShardFeatures
    from rdbench.workplan import WorkUnit

__all__ = ["DEFAULT_METRICS", "MetricSet", "Measurement", "Failure", "evaluate_batch", "evaluate_ladder", "unit_rows", "error_row"]


@dataclass
class Measurement:
    """The figures of one (image, codec, quality); see the results columns in DESIGN.md."""

    quality: float
    num_bytes: int
    bpp: float
    bpp_estimated: float | None
    psnr_rgb: float | None  # metrics are None when not asked for (see MetricSet)
    psnr_y: float | None
    ms_ssim_rgb: float | None  # also None when the image is below MS-SSIM's 5-scale minimum
    ms_ssim_db: float | None
    encode_s: float
    decode_s: float
    roundtrip_ok: bool
    lpips: float | None = None
    features: np.ndarray | None = field(default=None, repr=False)  # FID/KID patch features (set metrics)
    metrics_s: float = 0.0  # time spent computing PSNR/MS-SSIM (not a results column)
    verify_s: float = 0.0  # time of the second, verifying decode (not a results column)
    data: bytes = field(default=b"", repr=False)  # kept only with keep_outputs
    decoded: np.ndarray | None = field(default=None, repr=False)


@dataclass
class Failure:
    """Why one quality of the ladder produced no measurement."""

    quality: float
    stage: str  # encode | decode | metrics
    error_type: str
    message: str


class MetricSet:
    """Which metrics to compute; perceptual networks load lazily, once per process.

    Metrics not asked for are left null in the results. MS-SSIM is null for images below its
    5-scale minimum and LPIPS for images below AlexNet's (PSNR is always defined). The set-level
    metrics (FID, KID) are not computed per image: :meth:`set_features` gives the patch features
    they are later computed from.
    """

    def __init__(self, names: Sequence[str] = DEFAULT_METRICS, device: str = "cpu"):
        unknown = sorted(set(names) - set(IMAGE_METRICS) - set(SET_METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: "
                             f"{', '.join(IMAGE_METRICS + SET_METRICS)}")
        self.names = tuple(names)
        self.device = device

    def __contains__(self, name: str) -> bool:
        return name in self.names

    @property
    def wants_set_features(self) -> bool:
        """Whether a set-level metric (FID, KID) was asked for."""
        return any(name in self for name in SET_METRICS)

    def set_features(self, image: np.ndarray) -> np.ndarray | None:
        """The (n, 2048) Inception features of ``image``'s FID/KID patches; None if not asked for."""
        if not self.wants_set_features:
            return None
        from rdbench.metrics.setlevel import feature_extractor

        return feature_extractor(self.device)(image)

    def image_metrics(self, image: np.ndarray, decoded: np.ndarray) -> dict[str, float | None]:
        out: dict[str, float | None] = dict.fromkeys(("psnr_rgb", "psnr_y", "ms_ssim_rgb", "ms_ssim_db", "lpips"))
        if "psnr_rgb" in self:
            out["psnr_rgb"] = psnr(image, decoded)
        if "psnr_y" in self:
            out["psnr_y"] = psnr_y(image, decoded)
        if "ms_ssim_rgb" in self:
            try:
                out["ms_ssim_rgb"] = ms_ssim(image, decoded)
                out["ms_ssim_db"] = ms_ssim_db(out["ms_ssim_rgb"])
            except ImageTooSmallError:
                pass
        if "lpips" in self:
            from rdbench.metrics.perceptual import lpips_metric

            try:
                out["lpips"] = lpips_metric(self.device)(image, decoded)
            except ImageTooSmallError:
                pass
        return out


def _failure(quality: float, stage: str, exc: BaseException) -> Failure:
    return Failure(float(quality), stage, type(exc).__name__, str(exc) or repr(exc))


def _encode_ladder(codec: Codec, image: np.ndarray, qualities: Sequence[float]) -> Iterator[tuple[float, Encoded | Failure, float]]:
    """Yield (quality, encoded or failure, encode seconds) for each quality."""
    if codec.progressive:
        # One encode gives every rate; each row reports the time of that single encode.
        synchronize(codec.device)
        start = time.perf_counter()
        try:
            encoded = codec.compress_ladder(image, qualities)
        except Exception as exc:  # noqa: BLE001 - any codec failure becomes an error row
            for q in qualities:
                yield q, _failure(q, "encode", exc), 0.0
            return
        elapsed = time.perf_counter() - start
        for q, enc in zip(qualities, encoded):
            yield q, enc, elapsed
        return
    for q in qualities:
        synchronize(codec.device)
        start = time.perf_counter()
        try:
            enc = codec.compress(image, q)
        except Exception as exc:  # noqa: BLE001
            yield q, _failure(q, "encode", exc), 0.0
            continue
        yield q, enc, time.perf_counter() - start


def _measure(
    codec: Codec, image: np.ndarray, quality: float, enc: Encoded, encode_s: float,
    decoded: np.ndarray, decode_s: float, verified: np.ndarray, verify_s: float, metrics: MetricSet,
) -> Measurement | Failure:
    """Check a decoded image and compute the metrics of one (image, quality)."""
    if decoded.shape != image.shape or decoded.dtype != np.uint8:
        return _failure(quality, "decode",
                        ValueError(f"decoded {decoded.dtype} {decoded.shape}, expected uint8 {image.shape}"))
    pixels = image.shape[0] * image.shape[1]
    start = time.perf_counter()
    try:
        values = metrics.image_metrics(image, decoded)
        features = metrics.set_features(decoded)
        return Measurement(
            quality=float(quality),
            num_bytes=len(enc.data),
            bpp=len(enc.data) * 8.0 / pixels,
            bpp_estimated=None if enc.estimated_bits is None else enc.estimated_bits / pixels,
            **values,
            features=features,
            encode_s=encode_s,
            decode_s=decode_s,
            roundtrip_ok=bool(np.array_equal(decoded, verified)),
            metrics_s=time.perf_counter() - start,
            verify_s=verify_s,
        )
    except Exception as exc:  # noqa: BLE001
        return _failure(quality, "metrics", exc)


def _timed(codec: Codec, fn, *args):
    """Run ``fn(*args)`` and return (result, seconds), synchronising the device around it."""
    synchronize(codec.device)
    start = time.perf_counter()
    result = fn(*args)
    synchronize(codec.device)
    return result, time.perf_counter() - start


def evaluate_ladder(
    codec: Codec, image: np.ndarray, qualities: Sequence[float], *, keep_outputs: bool = False,
    metrics: MetricSet | None = None,
) -> Iterator[Measurement | Failure]:
    """Encode ``image`` at each quality, decode twice, and measure; one result per quality.

    bpp counts every byte of the bitstream. ``roundtrip_ok`` says whether a second,
    independent decode of the same bytes gives the same pixels (it catches
    non-deterministic entropy decoding). MS-SSIM is None for images smaller than its
    5-scale minimum (161 px on the short side); PSNR is still reported. Progressive codecs
    decode the whole ladder in one pass (:meth:`~rdbench.codecs.base.Codec.decode_ladder`),
    twice, each rate charged the time until its image was ready.
    """
    metrics = metrics or MetricSet()
    encoded = _encode_ladder(codec, image, qualities)
    ladder: dict[int, tuple] = {}  # stream index → ((decoded, s), (verified, s)) from whole-ladder passes
    if codec.progressive:
        encoded = list(encoded)
        streams = [enc.data for _, enc, _ in encoded if not isinstance(enc, Failure)]
        first, second = _decode_ladder_timed(codec, streams), _decode_ladder_timed(codec, streams)
        ladder = {i: (first[i], second[i]) for i in first.keys() & second.keys()}
    n_streams = 0
    for quality, enc, encode_s in encoded:
        if isinstance(enc, Failure):
            yield enc
            continue
        passes = ladder.get(n_streams)
        n_streams += 1
        try:
            if passes:
                (decoded, decode_s), (verified, verify_s) = passes
            else:  # one rate at a time (also how a progressive codec's failed ladder pass is retried)
                decoded, decode_s = _timed(codec, codec.decode, enc.data)
                verified, verify_s = _timed(codec, codec.decode, enc.data)
        except Exception as exc:  # noqa: BLE001
            yield _failure(quality, "decode", exc)
            continue
        m = _measure(codec, image, quality, enc, encode_s, decoded, decode_s, verified, verify_s, metrics)
        if keep_outputs and isinstance(m, Measurement):
            m.data, m.decoded = enc.data, decoded
        yield m


def _decode_ladder_timed(codec: Codec, streams: Sequence[bytes]) -> dict[int, tuple[np.ndarray, float]]:
    """(image, seconds) by stream index from one ``decode_ladder`` pass; what it yielded before a failure.

    A progressive codec's own ladder decoder is charged, per rate, the time from the start of
    the pass until that rate's image was ready: what decoding that rate's stream alone costs.
    Otherwise each image is charged the time since the previous one.
    """
    cumulative = codec.progressive and type(codec).decode_ladder is not Codec.decode_ladder
    out: dict[int, tuple[np.ndarray, float]] = {}
    synchronize(codec.device)
    start = last = time.perf_counter()
    try:
        for i, decoded in codec.decode_ladder(streams):
            synchronize(codec.device)
            now = time.perf_counter()
            out[i] = (decoded, now - (start if cumulative else last))
            last = now
    except Exception:  # noqa: BLE001 - the rates it did not yield are decoded one by one
        pass
    return out


def evaluate_batch(
    codec: Codec, images: Sequence[np.ndarray], qualities: Sequence[float], metrics: MetricSet | None = None
) -> list[list[Measurement | Failure]]:
    """Like :func:`evaluate_ladder` for several equal-shape images at once (GPU batching).

    Each quality encodes and decodes the whole batch in one call; each image is charged its
    share of the batch time. If a batch call fails, that quality falls back to one image at a
    time, so a failure is always reported for its own image, never for the batch.
    """
    out: list[list[Measurement | Failure]] = [[] for _ in images]
    for q in qualities:
        try:
            encoded, encode_s = _timed(codec, codec.compress_batch, images, q)
            decoded, decode_s = _timed(codec, codec.decode_batch, [e.data for e in encoded])
            verified, verify_s = _timed(codec, codec.decode_batch, [e.data for e in encoded])
        except Exception:  # noqa: BLE001 - retried image by image to find the culprit
            for i, image in enumerate(images):
                out[i].extend(evaluate_ladder(codec, image, [q], metrics=metrics))
            continue
        n = len(images)
        for i, image in enumerate(images):
            out[i].append(_measure(codec, image, q, encoded[i], encode_s / n, decoded[i], decode_s / n,
                                   verified[i], verify_s / n, metrics or MetricSet()))
    return out


def unit_rows(
    unit: "WorkUnit", codec: Codec, image: np.ndarray, run_id: str, timings: dict[str, float] | None = None,
    measurements: Sequence[Measurement | Failure] | None = None, metrics: MetricSet | None = None,
    features: "ShardFeatures | None" = None,
) -> tuple[list[dict], list[dict]]:
    """Evaluate one work unit (or take its ``measurements``); return results and errors rows.

    ``timings``, when given, accumulates seconds spent per phase (encode, decode, verify,
    metrics) for the run's time breakdown. ``features``, when given, receives each successful
    reconstruction's FID/KID patch features (its original's must already be there).
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
        rows.append(
            {
                **key,
                "codec_version": codec.version_for(m.quality),
                "quality": m.quality,
                "height": height,
                "width": width,
                "num_bytes": m.num_bytes,
                "bpp": m.bpp,
                "bpp_estimated": m.bpp_estimated,
                "psnr_rgb": m.psnr_rgb,
                "psnr_y": m.psnr_y,
                "ms_ssim_rgb": m.ms_ssim_rgb,
                "ms_ssim_db": m.ms_ssim_db,
                "lpips": m.lpips,
                "encode_s": m.encode_s,
                "decode_s": m.decode_s,
                "device": codec.device,
                "roundtrip_ok": m.roundtrip_ok,
                "run_id": run_id,
            }
        )
    return rows, errors


def error_row(
    unit: "WorkUnit", stage: str, error_type: str, message: str, run_id: str, quality: float | None = None
) -> dict:
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
