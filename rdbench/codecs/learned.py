"""The base of every learned codec: weights parameters, the network cache, and weights labels.

:class:`LearnedCodec` caches one network per weights key (a quality, or a checkpoint file several
qualities share), resolves ``checkpoint=PATH`` (``{quality}`` substituted) or ``weights=random``
and checks qualities; the functions below label weights in versions, derive the 4-byte tag each
stream carries, and load state dicts strictly. Networks stay in the codec modules. Importing this
module does not import torch.
"""
from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from rdbench.codecs import bitstream
from rdbench.codecs.base import Codec, CodecError, CodecSpecError, QualityError
from rdbench.codecs.weights import CheckpointError, sha256sum
from rdbench.device import prepare_device

__all__ = [
    "LOAD_ERRORS",
    "LearnedCodec",
    "check_image",
    "checkpoint_errors",
    "checkpoint_identity",
    "describe_checkpoints",
    "first_line",
    "hash_suffix",
    "indices_by_shape",
    "state_fingerprint",
    "weights_tag",
]

#: What building a network from a state dict raises when the tensors do not fit it
#: (missing keys, wrong shapes, widths read off absent tensors).
LOAD_ERRORS: tuple[type[Exception], ...] = (KeyError, RuntimeError, ValueError, IndexError)

ModelT = TypeVar("ModelT")  # what a codec caches per weights key: its network and what goes with it
CodecT = TypeVar("CodecT", bound="LearnedCodec")


def check_image(name: str, image: Any) -> None:
    """A ``ValueError`` naming the codec unless ``image`` is a non-empty uint8 (H, W, 3) array."""
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        got = f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}"
        raise ValueError(f"{name}: images must be uint8 (H, W, 3) arrays, got {got}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name}: empty image {image.shape}")


def indices_by_shape(name: str, images: Sequence[Any]) -> dict[tuple[int, ...], list[int]]:
    """The indices of ``images`` by shape (equal shapes share one batched network pass); each checked."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        check_image(name, image)
        groups.setdefault(image.shape, []).append(i)
    return groups


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def hash_suffix(path: str) -> str:
    """``" sha256 1a2b3c4d"`` (the file's SHA-256 prefix) or ``" (missing)"``: a weights file in a version."""
    return f" sha256 {sha256sum(path)[:8]}" if Path(path).is_file() else " (missing)"


def describe_checkpoints(paths: Iterable[str]) -> str:
    """``checkpoint A sha256 1a2b3c4d, B (missing)``: the weights part of a version string."""
    return "checkpoint " + ", ".join(f"{p}{hash_suffix(p)}" for p in paths)


def checkpoint_identity(path: str) -> tuple[str, str]:
    """(label, identity) of a loaded checkpoint file, both from its SHA-256.

    The label (``checkpoint PATH sha256 1a2b3c4d``) names the weights in ``version``; the
    identity (``sha256:<digest>``) feeds :func:`weights_tag`, so a stream's tag changes with
    the file's content, not with its name.
    """
    digest = sha256sum(path)
    return f"checkpoint {path} sha256 {digest[:8]}", f"sha256:{digest}"


def weights_tag(name: str, identity: str) -> bytes:
    """The 4-byte weights fingerprint written into every stream: SHA-256 of ``name|identity``."""
    return hashlib.sha256(f"{name}|{identity}".encode()).digest()[:4]


def state_fingerprint(name: str, net: Any) -> bytes:
    """4 bytes identifying a network's tensors (names, dtypes, shapes, values), whatever file they came from."""
    h = hashlib.sha256(name.encode())
    for key, value in net.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.digest()[:4]


@contextlib.contextmanager
def checkpoint_errors(
    path: str,
    what: str,
    errors: tuple[type[Exception], ...] = (RuntimeError,),
    error: type[Exception] = CheckpointError,
) -> Iterator[None]:
    """Turn ``errors`` raised inside into ``error("PATH does not hold WHAT weights: <first line>")``.

    Wraps the strict ``load_state_dict`` (or ``from_state_dict``) of a checkpoint, so that a
    wrong file is reported by name with the first line of torch's complaint, not its key list.
    """
    try:
        yield
    except errors as exc:
        raise error(f"{path} does not hold {what} weights: {first_line(exc)}") from exc


class LearnedCodec(Codec, Generic[ModelT]):
    """A codec with ``weights``/``checkpoint``/``seed`` parameters and a cache of loaded networks.

    ``PARAMS`` must declare ``weights`` (with a ``random`` choice) and ``checkpoint``.
    Qualities are the integers of ``DEFAULT_QUALITIES`` (:meth:`_quality`; override
    :meth:`_quality_error` to word the refusal). Subclasses build their models through
    :meth:`_cached` and say in :meth:`_place` how one moves to ``self.device``. A pickled
    codec (Beam ships codecs to workers) carries its configuration only; networks reload lazily.
    """

    family = "learned"

    def __init__(self, **params: Any):
        super().__init__(**params)
        if self.params["checkpoint"] and self.params["weights"] == "random":
            raise CodecSpecError(f"codec {self.name!r}: checkpoint= and weights=random exclude each other")
        self._nets: dict[Hashable, ModelT] = {}  # loaded models by weights key
        self._lock = threading.RLock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_nets"] = {}
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    @property
    def random_weights(self) -> bool:
        """Whether the networks are untrained (``weights=random``)."""
        return self.params["weights"] == "random"

    # -- qualities and checkpoint files ---------------------------------------------------------
    def _quality(self, quality: float) -> int:
        """``quality`` as an integer of ``DEFAULT_QUALITIES``; anything else is a ValueError."""
        try:
            q = int(quality)
            ok = q == quality and q in self.DEFAULT_QUALITIES
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise ValueError(self._quality_error(quality))
        return q

    def check_quality(self, quality: float) -> None:
        """One network per quality: only the integers of ``DEFAULT_QUALITIES`` exist."""
        try:
            self._quality(quality)
        except ValueError as exc:
            raise QualityError(str(exc)) from None

    def quality_range(self) -> str:
        return "one of " + ", ".join(f"{q:g}" for q in self.DEFAULT_QUALITIES)

    def unpack_stream(self, data: bytes) -> tuple["bitstream.Header", list[bytes], int]:
        """A stream's header, payload strings and quality, checked to be this codec's (CodecError if not)."""
        header, strings = bitstream.unpack(data)
        if header.codec != self.name:
            raise CodecError(f"{self.name}: the stream was made by codec {header.codec!r}")
        try:
            return header, strings, self._quality(header.quality)
        except ValueError as exc:
            raise CodecError(f"stream header: {exc}") from exc

    def _quality_error(self, quality: Any) -> str:
        """The message of :meth:`_quality`'s ValueError."""
        accepted = ", ".join(str(q) for q in self.DEFAULT_QUALITIES)
        return f"{self.name}: quality must be one of {accepted}, got {quality!r}"

    def _checkpoint_path(self, quality: int) -> str:
        """The ``checkpoint=`` template with ``{quality}`` replaced."""
        return self.params["checkpoint"].replace("{quality}", str(quality))

    def weights_available(self, qualities: Sequence[float] | None = None) -> bool:
        """Whether every quality's ``checkpoint=`` file is here (or the network is random); no download."""
        if self.random_weights:
            return True
        if not self.params["checkpoint"]:
            return False
        qs = qualities if qualities is not None else self.DEFAULT_QUALITIES
        return all(Path(self._checkpoint_path(self._quality(q))).is_file() for q in qs)

    # -- the model cache --------------------------------------------------------------------------
    def _cached(self, key: Hashable, build: Callable[..., ModelT], *args: Any) -> ModelT:
        """The model cached under ``key``; on first use ``build(*args)``, once, under the lock."""
        model = self._nets.get(key)
        if model is not None:
            return model
        with self._lock:
            if key not in self._nets:
                self._nets[key] = build(*args)
            return self._nets[key]

    def _place(self, model: ModelT) -> None:
        """Put one cached model (its device-side parts) on ``self.device``."""
        raise NotImplementedError

    def prepare(self, quality: float) -> None:
        """Load (and place on the device) the network of ``quality``, through :meth:`_load_model`.

        The harness calls this untimed before the quality's first timed item, so that model
        loading, weight reading and device initialisation stay out of ``encode_s``.
        """
        self._load_model(self._quality(quality))

    def _load_model(self, quality: int) -> ModelT | None:
        """The cached model of ``quality``, built on first use; subclasses name their loader here.

        The default loads nothing: the harness's untimed warm-up encode then loads it.
        """
        return None

    def to(self: CodecT, device: str) -> CodecT:
        """Run on ``device`` (see :func:`rdbench.device.prepare_device`), moving every cached model."""
        device = prepare_device(device)
        with self._lock:
            self.device = device
            for model in self._nets.values():
                self._place(model)
        return self
