"""The codec interface, codec specs, and the registry that maps names to codecs.

A *codec spec* is the string a user writes: ``NAME`` or ``NAME:key=value,key=value``
(``jpeg:subsampling=444``, ``bmshj2018-hyperprior:checkpoint=codecs/x/q{quality}.pth.tar``).
:func:`get_codec` turns it into a :class:`Codec` instance, validating the parameters
against what the codec declares.

Codecs are found in three places, in this order: codecs registered at run time with
:func:`register`, the built-in table :data:`BUILTIN` (imported lazily, so ``import rdbench.codecs``
pulls in no codec library), and the ``rdbench.codecs`` entry-point group of installed
distributions (``name = "package.module:factory"``, where the factory takes the parameters as
keyword arguments and returns a :class:`Codec`).

What a codec *is* lives on its class: its :attr:`~Codec.family` (``classical`` or ``learned``:
:func:`family` answers it for a spec, e.g. for plot styles) and whether a run without
``--codecs`` includes it (:attr:`~Codec.in_default_set`, see :mod:`rdbench.codecs.defaults`).

The interface is deliberately small, with optional richer methods a codec overrides when it
can do better than the default:

- :meth:`Codec.encode` / :meth:`Codec.decode` — one image, one quality (the contract).
- :meth:`Codec.compress` — like ``encode`` but also returns the model's own rate estimate
  (learned codecs: −Σ log2 p of the same forward pass).
- :meth:`Codec.compress_ladder` — all qualities of one image; progressive codecs (one encode
  giving every rate) override it to encode once.
- :meth:`Codec.decode_ladder` — the streams of one image's ladder; progressive codecs (each
  rate's stream a prefix of the next) override it to decode the longest stream once, yielding
  every rate's image on the way.
- :meth:`Codec.compress_batch` / :meth:`Codec.decode_batch` — several images at one quality,
  for batched GPU paths; the defaults loop.
- :meth:`Codec.prepare` — load what a quality needs before it is timed (learned codecs: the
  network); the default does nothing.
"""
from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, Literal

import numpy as np

__all__ = [
    "BUILTIN",
    "CLASSICAL",
    "EXTERNAL",
    "Codec",
    "CodecError",
    "CodecSpecError",
    "Encoded",
    "QualityError",
    "display_name",
    "Family",
    "Param",
    "available",
    "family",
    "get_codec",
    "known",
    "parse_spec",
    "register",
]

ENTRY_POINT_GROUP = "rdbench.codecs"

#: ``classical``: a standard format's library (dashed in plots); ``learned``: a trained network (solid).
Family = Literal["classical", "learned"]


class CodecError(Exception):
    """A codec failed on a particular input (encode or decode)."""


class CodecSpecError(ValueError):
    """A codec spec names an unknown codec or carries an invalid parameter."""


class QualityError(CodecSpecError):
    """A quality outside the codec's declared range."""


@dataclass(frozen=True)
class Encoded:
    """A self-contained bitstream plus the codec's own rate estimate, if it has one."""

    data: bytes
    estimated_bits: float | None = None


@dataclass(frozen=True)
class Param:
    """A codec parameter: its default, accepted values (``choices``) and converter."""

    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    convert: Callable[[str], Any] = str

    def parse(self, codec: str, key: str, raw: str) -> Any:
        try:
            value = self.convert(raw)
        except (TypeError, ValueError) as exc:
            raise CodecSpecError(f"codec {codec!r}: parameter {key}={raw!r} is invalid ({exc})") from exc
        if self.choices is not None and value not in self.choices:
            accepted = ", ".join(str(c) for c in self.choices)
            raise CodecSpecError(f"codec {codec!r}: {key}={raw!r} is not one of: {accepted}")
        return value


class Codec:
    """Base class of every codec. Images are ``uint8 (H, W, 3)`` RGB arrays.

    Subclasses set ``name``, ``family``, ``PARAMS`` and ``DEFAULT_QUALITIES`` and implement
    ``encode``, ``decode`` and ``version``. ``quality`` is always a number, higher meaning more bits.
    """

    name: ClassVar[str] = ""
    #: What kind of codec this is (None: not declared; reports draw it as learned).
    family: ClassVar[Family | None] = None
    #: Whether a run without ``--codecs`` includes this codec, where it can run without
    #: downloading anything (its module imports and :meth:`weights_available`).
    in_default_set: ClassVar[bool] = False
    #: Parameters accepted in the spec, by key.
    PARAMS: ClassVar[dict[str, Param]] = {}
    DEFAULT_QUALITIES: ClassVar[tuple[float, ...]] = ()
    #: The qualities the codec accepts, inclusive (None: not declared, anything goes). Codecs
    #: with a discrete set (learned models, one per quality) override :meth:`check_quality`.
    QUALITY_RANGE: ClassVar[tuple[float, float] | None] = None
    #: True for codecs whose one encode yields every rate of the ladder (e.g. residual-GRU).
    progressive: ClassVar[bool] = False
    #: True for codecs that gain from batching images (GPU models).
    batched: ClassVar[bool] = False

    def __init__(self, **params: Any):
        accepted = self.accepted_params()
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise CodecSpecError(_unknown_params_message(self.name, unknown, accepted))
        self.params: dict[str, Any] = {k: p.default for k, p in accepted.items()}
        self.params.update(params)
        self.device = "cpu"

    @classmethod
    def accepted_params(cls) -> dict[str, Param]:
        """The codec's own parameters plus those every codec accepts (``label``)."""
        return {**COMMON_PARAMS, **cls.PARAMS}

    # -- identity ----------------------------------------------------------------------
    @property
    def version(self) -> str:
        """The underlying library and its version, e.g. ``libjpeg-turbo 3.1.0 (Pillow 12.0.0)``."""
        raise NotImplementedError

    def version_for(self, quality: float) -> str:
        """The version string of one quality (codecs with per-quality weights name the file)."""
        return self.version

    @property
    def spec(self) -> str:
        """The canonical spec string: the name plus non-default parameters, sorted."""
        accepted = self.accepted_params()
        changed = {k: v for k, v in self.params.items() if v != accepted[k].default}
        if not changed:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in sorted(changed.items()))

    @property
    def label(self) -> str:
        """The name legends and tables show: ``label=`` if given, else the shortened spec."""
        return display_name(self.spec)

    def default_qualities(self) -> list[float]:
        return [float(q) for q in self.DEFAULT_QUALITIES]

    def quality_range(self) -> str:
        """The accepted qualities in words, for messages."""
        if self.QUALITY_RANGE is None:
            return "any number"
        low, high = self.QUALITY_RANGE
        return f"{low:g} to {high:g}"

    def check_quality(self, quality: float) -> None:
        """Raise :class:`QualityError` naming the codec and its range unless ``quality`` is accepted."""
        if self.QUALITY_RANGE is None:
            return
        low, high = self.QUALITY_RANGE
        if not low <= float(quality) <= high:
            raise QualityError(f"codec {self.name!r}: quality {quality:g} is outside its range "
                               f"{self.quality_range()}")

    def weights_available(self, qualities: Sequence[float] | None = None) -> bool:
        """Whether every quality (default: the ladder) can run here without a download.

        True for codecs without weights; learned codecs check their files.
        """
        return True

    def check_runnable(self) -> None:
        """Raise :class:`CodecSpecError` (one line: what is missing and how to get it) when this codec
        cannot run here at all, e.g. an external encoder that is not installed; the default does nothing.

        Meant for validation before any work (external codecs: :mod:`rdbench.codecs.external`).
        """

    def to(self, device: str) -> "Codec":
        """Move the codec to a torch device; classical codecs stay on the CPU."""
        return self

    def prepare(self, quality: float) -> None:
        """Load what coding at ``quality`` needs (a network, weights, tables); the default does nothing.

        The harness calls it, untimed, once per worker before the first timed item of each
        (codec, quality), then encodes and decodes a small crop untimed, so that ``encode_s`` and
        ``decode_s`` measure steady-state coding (docs/contracts.md, run.json ``timing``). What
        it leaves undone happens in that untimed warm-up instead. An exception here is ignored
        by the harness: the item then succeeds or fails on its own.
        """

    # -- the contract --------------------------------------------------------------------
    def encode(self, image: np.ndarray, quality: float) -> bytes:
        return self.compress(image, quality).data

    def decode(self, data: bytes) -> np.ndarray:
        raise NotImplementedError

    # -- richer paths, with defaults -------------------------------------------------------
    def compress(self, image: np.ndarray, quality: float) -> Encoded:
        """Encode and report the codec's own rate estimate (None for classical codecs)."""
        if type(self).encode is Codec.encode:
            raise NotImplementedError(f"{type(self).__name__} must implement encode or compress")
        return Encoded(self.encode(image, quality))

    def compress_ladder(self, image: np.ndarray, qualities: Sequence[float]) -> list[Encoded]:
        """All qualities of one image; progressive codecs override this to encode once."""
        return [self.compress(image, q) for q in qualities]

    def decode_ladder(self, streams: Sequence[bytes]) -> Iterator[tuple[int, np.ndarray]]:
        """Decode the streams of one image's quality ladder: yields ``(index, image)`` per stream.

        Images may come in any order, each as soon as it is ready. A progressive codec overrides
        this to decode its longest stream once and yield each rate's image when the decoder
        reaches it, so the time until an image is yielded is what decoding that rate's own
        stream costs (the harness times it so). The default decodes each stream on its own.
        """
        for i, data in enumerate(streams):
            yield i, self.decode(data)

    def compress_batch(self, images: Sequence[np.ndarray], quality: float) -> list[Encoded]:
        return [self.compress(im, quality) for im in images]

    def decode_batch(self, streams: Sequence[bytes]) -> list[np.ndarray]:
        return [self.decode(s) for s in streams]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"


# -- spec parsing ------------------------------------------------------------------------


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``NAME:key=value,key=value`` into the name and raw string parameters.

    Values may contain ``=`` and ``:`` (paths, URLs); parameters are separated by commas.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise CodecSpecError(f"empty codec spec {spec!r}")
    name, _, rest = spec.strip().partition(":")
    params: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CodecSpecError(f"codec spec {spec!r}: expected key=value, got {item!r}")
        if key.strip() in params:
            raise CodecSpecError(f"codec spec {spec!r}: parameter {key.strip()!r} given twice")
        params[key.strip()] = value.strip()
    return name.strip(), params


#: Parameters every codec accepts, besides its own.
COMMON_PARAMS: dict[str, Param] = {
    "label": Param("", "the name shown in legends and tables (default: the spec, shortened)"),
}
#: Specs longer than this are shortened in legends and tables.
MAX_DISPLAY = 40


def display_name(spec: str) -> str:
    """What legends and tables call a codec spec: its ``label=``, else the spec, shortened.

    Shortening keeps the name and every parameter but replaces path-like values by their last
    component (``checkpoint=/long/path/q{quality}.pth.tar`` → ``checkpoint=…/q{quality}.pth.tar``).
    """
    try:
        name, params = parse_spec(spec)
    except CodecSpecError:
        return str(spec)
    if params.get("label"):
        return params["label"]
    if len(spec) <= MAX_DISPLAY:
        return spec
    short = {k: ("…/" + v.rstrip("/").rsplit("/", 1)[-1] if "/" in v else v) for k, v in params.items()}
    return name + ":" + ",".join(f"{k}={v}" for k, v in short.items())


def _unknown_params_message(name: str, unknown: Iterable[str], accepted: dict[str, Param]) -> str:
    own = {k: p for k, p in accepted.items() if k not in COMMON_PARAMS}
    listing = ", ".join(f"{k} (default {p.default!r})" for k, p in sorted(own.items())) or "none"
    return (f"codec {name!r} does not accept parameter(s) {', '.join(unknown)}; accepted: {listing} "
            f"(and {', '.join(COMMON_PARAMS)}, which every codec takes)")


# -- registry ------------------------------------------------------------------------------

#: Built-in codecs: name → (family, "module:Class"), the class imported on first use. The family
#: is the class's own ``family``, written here as well so that :func:`family` answers without
#: importing codec libraries (tests/test_codecs.py checks that the two agree). The order is
#: that of the default codec set.
BUILTIN: dict[str, tuple[Family, str]] = {
    "jpeg": ("classical", "rdbench.codecs.pillow_codecs:JPEG"),
    "webp": ("classical", "rdbench.codecs.pillow_codecs:WebP"),
    "jpeg2000": ("classical", "rdbench.codecs.pillow_codecs:JPEG2000"),
    "avif": ("classical", "rdbench.codecs.pillow_codecs:AVIF"),
    "heic": ("classical", "rdbench.codecs.heic:HEIC"),
    "jpegxl": ("classical", "rdbench.codecs.jpegxl:JPEGXL"),
    "rdbench-small": ("learned", "rdbench.codecs.rdbench_small:RDBenchSmall"),
    "bmshj2018-factorized": ("learned", "rdbench.codecs.compressai_zoo:BMSHJ2018Factorized"),
    "bmshj2018-hyperprior": ("learned", "rdbench.codecs.compressai_zoo:BMSHJ2018Hyperprior"),
    "mbt2018-mean": ("learned", "rdbench.codecs.compressai_zoo:MBT2018Mean"),
    "mbt2018": ("learned", "rdbench.codecs.compressai_zoo:MBT2018"),
    "cheng2020-anchor": ("learned", "rdbench.codecs.compressai_zoo:Cheng2020Anchor"),
    "cheng2020-attn": ("learned", "rdbench.codecs.compressai_zoo:Cheng2020Attn"),
    "toderici2017": ("learned", "rdbench.codecs.seeds.toderici2017:Toderici2017"),
    "agustsson2019": ("learned", "rdbench.codecs.seeds.agustsson2019:Agustsson2019"),
    "hific": ("learned", "rdbench.codecs.seeds.hific:HiFiC"),
    "balle2018": ("learned", "rdbench.codecs.seeds.balle2018:Balle2018"),
    "xiao2019": ("learned", "rdbench.codecs.seeds.xiao2019:Xiao2019"),
    "mentzer2018": ("learned", "rdbench.codecs.seeds.mentzer2018:Mentzer2018"),
    "bpg": ("classical", "rdbench.codecs.bpg:BPG"),
    "vtm": ("classical", "rdbench.codecs.vtm:VTM"),
    "vvenc": ("classical", "rdbench.codecs.vvenc:VVenC"),
    "aom": ("classical", "rdbench.codecs.aom:AOM"),
}
#: The built-in codecs that run external binaries (rdbench/codecs/external.py), installed separately.
EXTERNAL = ("bpg", "vtm", "vvenc", "aom")
#: The built-in classical codecs that run in-process (Python libraries), those of the default set.
CLASSICAL = tuple(name for name, (fam, _) in BUILTIN.items() if fam == "classical" and name not in EXTERNAL)

_registered: dict[str, Callable[..., Codec]] = {}
_lock = threading.Lock()


def register(name: str, factory: Callable[..., Codec] | str | None = None):
    """Register a codec factory under ``name``; usable as a decorator.

    ``factory`` may be a callable or a lazy ``"module:attribute"`` string.
    """

    def _add(f):
        with _lock:
            _registered[name] = f
        return f

    return _add(factory) if factory is not None else _add


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _resolve(target: str) -> Callable[..., Codec]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _factory(name: str) -> Callable[..., Codec]:
    if name in _registered:
        f = _registered[name]
        return _resolve(f) if isinstance(f, str) else f
    if name in BUILTIN:
        return _resolve(BUILTIN[name][1])
    eps = _entry_points()
    if name in eps:
        return eps[name].load()
    raise CodecSpecError(f"unknown codec {name!r}; known codecs: {', '.join(known())}")


def known() -> list[str]:
    """Every codec name rdbench knows, whether or not its library imports here."""
    return sorted(set(BUILTIN) | set(_registered) | set(_entry_points()))


def family(spec: str) -> Family | None:
    """The family of the codec a spec names: ``"classical"``, ``"learned"``, or None if unknown.

    A built-in codec answers from :data:`BUILTIN` without importing anything; another is looked
    up as :func:`get_codec` would (its module imported) and answers with its ``family``. None
    when the name is unknown here, its module does not import, or it declares no family.
    """
    name, _ = parse_spec(spec)
    if name in BUILTIN and name not in _registered:
        return BUILTIN[name][0]
    try:
        factory = _factory(name)
    except (CodecSpecError, ImportError, AttributeError):
        return None
    return getattr(factory, "family", None)


def available() -> list[str]:
    """The codec names whose implementation (and its library) can be imported here."""
    names = []
    for name in known():
        try:
            _factory(name)
        except ImportError:
            continue
        names.append(name)
    return names


def get_codec(spec: str) -> Codec:
    """Build the codec a spec describes, e.g. ``get_codec("jpeg:subsampling=444")``."""
    name, raw = parse_spec(spec)
    factory = _factory(name)
    label = raw.pop("label", "")
    accepted: dict[str, Param] = getattr(factory, "PARAMS", None) or {}
    if accepted or raw:
        unknown = sorted(set(raw) - set(accepted))
        if unknown:
            raise CodecSpecError(_unknown_params_message(name, unknown, accepted))
        params = {k: accepted[k].parse(name, k, v) for k, v in raw.items()}
    else:
        params = {}
    codec = factory(**params)
    if label:  # set here, so that factories of third-party codecs need not know the parameter
        codec.params["label"] = label
    return codec
