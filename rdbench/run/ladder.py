"""Evaluate one codec on one image over a quality ladder: encode, decode twice, measure.

Each quality succeeds or fails on its own: a failure yields a :class:`Failure` naming the stage
(``encode``, ``decode`` or ``metrics``), never an exception that would lose the other qualities.

Timed regions (``encode_s``, ``decode_s``) are measured with :func:`time.perf_counter`, the device
synchronised before and after each (:func:`rdbench.device.synchronize`). :func:`warm_up` runs what
must not be timed (model loading, first-call initialisation) before a quality's first timed item.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from rdbench.codecs.base import Codec, Encoded
from rdbench.device import synchronize
from rdbench.metrics.registry import DEFAULT_METRICS, METRICS, image_columns, parse_metrics

__all__ = ["WARMUP_SIDE", "Failure", "Measurement", "MetricSet", "WarmUp", "evaluate_batch", "evaluate_ladder",
           "warm_up", "warmup_crop"]

#: The warm-up codes the top-left crop of at most this many pixels square of the item's image:
#: every built-in codec codes it (learned codecs pad it to their multiple of 16, 32 or 64).
WARMUP_SIDE = 64


@dataclass
class Measurement:
    """The figures of one (image, codec, quality); see the results columns in docs/contracts.md."""

    quality: float
    num_bytes: int
    bpp: float
    bpp_estimated: float | None
    encode_s: float
    decode_s: float
    roundtrip_ok: bool
    #: Every per-image metric column → value; None when not asked for or the image is too small.
    values: dict[str, float | None] = field(default_factory=dict)
    features: np.ndarray | None = field(default=None, repr=False)  # FID/KID patch features (set metrics)
    metrics_s: float = 0.0  # time spent computing the metrics (not a results column)
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
    """The metrics a run computes, from the registry; networks load lazily, once per process.

    Metrics not asked for are left null in the results. The set-level metrics (FID, KID) are not
    computed per image: :meth:`set_features` gives the patch features they are later computed from.
    """

    def __init__(self, names: Sequence[str] = DEFAULT_METRICS, device: str = "cpu"):
        self.names = parse_metrics(names)
        self.device = device
        self._functions: dict[str, object] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.names

    @property
    def wants_set_features(self) -> bool:
        """Whether a set-level metric (FID, KID) was asked for."""
        return any(METRICS[name].level == "set" for name in self.names)

    def set_features(self, image: np.ndarray) -> np.ndarray | None:
        """The (n, 2048) Inception features of ``image``'s FID/KID patches; None if not asked for."""
        if not self.wants_set_features:
            return None
        from rdbench.metrics.setlevel import feature_extractor

        return feature_extractor(self.device)(image)

    def image_metrics(self, image: np.ndarray, decoded: np.ndarray) -> dict[str, float | None]:
        """Every per-image metric column of the pair (None for those not asked for)."""
        out: dict[str, float | None] = dict.fromkeys(image_columns())
        for name in self.names:
            if METRICS[name].level != "image":
                continue
            if name not in self._functions:
                self._functions[name] = METRICS[name].load(self.device)
            out.update(self._functions[name](image, decoded))
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
            synchronize(codec.device)
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
            synchronize(codec.device)
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
            values=values,
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


@dataclass
class WarmUp:
    """What :func:`warm_up` did: the qualities it warmed, those it could not, and its seconds."""

    warmed: list[float] = field(default_factory=list)
    failed: dict[float, str] = field(default_factory=dict)  # quality → "stage: ErrorType: message"
    prepare_s: float = 0.0  # in Codec.prepare (model loading)
    coding_s: float = 0.0  # in the warm-up encode and decode

    @property
    def seconds(self) -> float:
        return self.prepare_s + self.coding_s


def warmup_crop(image: np.ndarray) -> np.ndarray:
    """The top-left crop (at most :data:`WARMUP_SIDE` square) that the warm-up codes."""
    return np.ascontiguousarray(image[:WARMUP_SIDE, :WARMUP_SIDE])


def warm_up(codec: Codec, images: Sequence[np.ndarray], qualities: Sequence[float]) -> WarmUp:
    """Get ``codec`` ready to time ``qualities`` on ``images``, untimed; never raises.

    For each quality, :meth:`~rdbench.codecs.base.Codec.prepare` (model loading), then one encode
    and decode of a crop of the images (:func:`warmup_crop`) through the path the timed
    evaluation takes: several images → ``compress_batch``/``decode_batch`` (as
    :func:`evaluate_batch`), a progressive codec → ``compress_ladder``/``decode_ladder`` over the
    qualities at once, else ``compress``/``decode`` (as :func:`evaluate_ladder`). Whatever fails
    is reported in :attr:`WarmUp.failed`, not raised: the items then succeed or fail on their own.
    """
    out = WarmUp()
    crops = [warmup_crop(im) for im in images]
    ready = []
    start = time.perf_counter()
    for q in qualities:
        try:
            codec.prepare(q)
            ready.append(q)
        except Exception as exc:  # noqa: BLE001 - the timed item will meet (and report) it itself
            out.failed[float(q)] = _warmup_error("prepare", exc)
    _synchronize_quietly(codec)
    out.prepare_s = time.perf_counter() - start
    start = time.perf_counter()
    if ready and codec.progressive and len(crops) == 1:
        try:
            streams = [e.data for e in codec.compress_ladder(crops[0], ready)]
            for _ in codec.decode_ladder(streams):
                pass
            out.warmed += [float(q) for q in ready]
        except Exception as exc:  # noqa: BLE001
            out.failed.update((float(q), _warmup_error("coding", exc)) for q in ready)
    else:
        for q in ready:
            try:
                if len(crops) > 1:
                    codec.decode_batch([e.data for e in codec.compress_batch(crops, q)])
                else:
                    codec.decode(codec.compress(crops[0], q).data)
                out.warmed.append(float(q))
            except Exception as exc:  # noqa: BLE001
                out.failed[float(q)] = _warmup_error("coding", exc)
    _synchronize_quietly(codec)
    out.coding_s = time.perf_counter() - start
    return out


def _synchronize_quietly(codec: Codec) -> None:
    """:func:`~rdbench.device.synchronize` the codec's device, ignoring a failure (the warm-up never raises)."""
    try:
        synchronize(codec.device)
    except Exception:  # noqa: BLE001
        pass


def _warmup_error(stage: str, exc: BaseException) -> str:
    return f"{stage}: {type(exc).__name__}: {str(exc) or repr(exc)}"
