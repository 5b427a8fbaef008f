"""Test codecs with a slow model load or slow coding, for the timing and Dask-resilience tests.

A real (lossy, zlib-coded) codec: quality 1 keeps the top 5 bits of each sample, quality 2 the top
6. ``load_s`` seconds of sleep build each quality's "model" (one per quality, cached like a
learned codec's networks); ``code_s`` seconds of sleep go into every encode. ``load=prepare``
loads in :meth:`Codec.prepare`; ``load=first-call`` only on first use (prepare stays the no-op
default). ``fail`` makes the warm-up fail on purpose: ``prepare`` (prepare raises; coding still
loads and works), ``small`` (images with a side of 64 px or less are refused: the warm-up crop).

Worker processes find these codecs by importing this module: :func:`register_all` at import
(in the test process, under ``monkeypatch``), or ``dask_setup`` as a Dask worker preload.
"""
from __future__ import annotations

import struct
import time
import zlib

import numpy as np

from rdbench.codecs.base import Codec, CodecError, Encoded, Param, register
from rdbench.codecs.learned import LearnedCodec

_HEADER = struct.Struct(">HHB")


def _encode(image: np.ndarray, quality: float) -> bytes:
    shift = 3 if quality == 1 else 2
    return _HEADER.pack(image.shape[0], image.shape[1], int(quality)) + zlib.compress((image >> shift).tobytes(), 1)


def _decode(data: bytes) -> np.ndarray:
    h, w, q = _HEADER.unpack_from(data)
    shift = 3 if q == 1 else 2
    samples = np.frombuffer(zlib.decompress(data[_HEADER.size:]), np.uint8).reshape(h, w, 3)
    return ((samples << shift) + (1 << (shift - 1))).astype(np.uint8)


class SlowLoad(LearnedCodec[dict]):
    """One "network" per quality whose load sleeps ``load_s`` seconds."""

    name = "test-slow-load"
    PARAMS = {
        "weights": Param("random", choices=("checkpoint", "random")),
        "checkpoint": Param(""),
        "seed": Param(0, convert=int),
        "load_s": Param(1.0, convert=float),
        "code_s": Param(0.0, convert=float),
        "load": Param("prepare", choices=("prepare", "first-call")),
        "fail": Param("", choices=("", "prepare", "small")),
    }
    DEFAULT_QUALITIES = (1, 2)

    def __init__(self, **params):
        super().__init__(**params)
        self.loads = 0  # how many models were built (the test process's own codecs only)

    @property
    def version(self) -> str:
        return "test-slow-load 1"

    def _build(self, quality: int) -> dict:
        time.sleep(self.params["load_s"])
        self.loads += 1
        return {"quality": quality}

    def _model(self, quality: int) -> dict:
        return self._cached(quality, self._build, quality)

    def _load_model(self, quality: int):
        if self.params["load"] == "prepare":
            return self._model(quality)
        return None

    def _place(self, model) -> None:
        pass

    def prepare(self, quality: float) -> None:
        if self.params["fail"] == "prepare":
            raise RuntimeError("prepare failed on purpose")
        super().prepare(quality)

    def _check(self, image: np.ndarray) -> None:
        if self.params["fail"] == "small" and min(image.shape[:2]) <= 64:
            raise CodecError(f"{self.name}: images of 64 px or less are refused on purpose")

    def compress(self, image: np.ndarray, quality: float) -> Encoded:
        q = self._quality(quality)
        self._check(image)
        self._model(q)
        time.sleep(self.params["code_s"])
        return Encoded(_encode(image, q))

    def decode(self, data: bytes) -> np.ndarray:
        self._model(self._quality(_HEADER.unpack_from(data)[2]))
        return _decode(data)


class SlowLoadProgressive(SlowLoad):
    """The same, as a progressive codec (the ladder encoded and decoded whole)."""

    name = "test-slow-load-progressive"
    progressive = True


class SlowLoadBatched(SlowLoad):
    """The same, as a batched codec (``compress_batch``/``decode_batch`` over equal-shape images)."""

    name = "test-slow-load-batched"
    batched = True
    batch_calls = 0

    def compress_batch(self, images, quality):
        type(self).batch_calls += 1
        return [self.compress(im, quality) for im in images]


class SlowFirstCall(Codec):
    """A plain (not learned) codec whose first encode sleeps ``load_s``: prepare is the default no-op."""

    name = "test-slow-first-call"
    PARAMS = {"load_s": Param(1.0, convert=float)}
    DEFAULT_QUALITIES = (1, 2)
    QUALITY_RANGE = (1, 2)

    def __init__(self, **params):
        super().__init__(**params)
        self._started = False

    @property
    def version(self) -> str:
        return "test-slow-first-call 1"

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        if not self._started:
            time.sleep(self.params["load_s"])
            self._started = True
        return _encode(image, quality)

    def decode(self, data: bytes) -> np.ndarray:
        return _decode(data)


CODECS = (SlowLoad, SlowLoadProgressive, SlowLoadBatched, SlowFirstCall)


def register_all() -> None:
    for cls in CODECS:
        register(cls.name, cls)


def dask_setup(worker=None) -> None:
    """Dask worker preload hook: make the codecs known in the worker process."""
    register_all()
