"""Codecs that run an external encoder and decoder binary (BPG, VTM, VVenC, aomenc): the shared base.

An :class:`ExternalCodec` declares the executables it needs by *role* (``encoder``, ``decoder``),
each with the build recipe that provides it and the file names it may have. A role's executable
is looked up, first found wins:

1. the ``bindir=`` parameter (a folder; for the codec's own tools it is the only place looked);
2. ``$RDBENCH_<RECIPE>_DIR`` (``RDBENCH_BPG_DIR``, ``RDBENCH_VTM_DIR``, …);
3. the recipe's build, ``codecs/bin/<recipe>-<version>/``
   (:func:`rdbench.codecs.build.installed_dir`, when that module is importable);
4. ``PATH``.

A missing executable is reported in one line naming what was looked for, where, and the
command that builds it (:func:`rdbench.codecs.build.build_command`): by
:meth:`ExternalCodec.check_runnable` before a run, and as a :class:`ToolNotFoundError` from
``encode``/``decode``. Every call codes in its own scratch folder (``tempfile.mkdtemp`` under
``scratch=``, else the system temp folder: unique, so parallel workers never collide), removed
in a ``finally``. Each tool runs with ``timeout=`` seconds; a non-zero exit, a timeout or a
missing output file raises :class:`~rdbench.codecs.base.CodecError` carrying the tail of the
tool's stderr (it becomes the ``message`` of the item's errors row).

The version (``codec_version`` of every row) is the encoder's own version line plus the short
sha256 of each executable, so two builds of one release are told apart.

Also here: the RGB ↔ YCbCr 4:4:4 conversion that CompressAI's bench applies before VTM, HM and
aomenc (full-range BT.709, float32, truncated to 8 bits), so that these codecs' numbers are
comparable with its published curves.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rdbench.codecs.base import Codec, CodecError, CodecSpecError, Param, QualityError
from rdbench.files import sha256_file

__all__ = [
    "ExternalCodec",
    "QPCodec",
    "Tool",
    "ToolNotFoundError",
    "ToolFailedError",
    "EXTERNAL_PARAMS",
    "qp_param",
    "read_y4m",
    "rgb_to_ycbcr420",
    "planes_to_rgb",
    "ycbcr420_to_rgb",
    "rgb_to_ycbcr",
    "write_planar",
    "ycbcr_to_rgb",
]

#: Characters of a failed tool's stderr (its tail) kept in the error message.
STDERR_TAIL = 600


class ToolNotFoundError(CodecSpecError, CodecError):
    """An external codec's executable (or data file) is not installed where rdbench looks.

    A :class:`CodecSpecError`, so run validation refuses the codec in one line, and a
    :class:`CodecError`, so an item that meets it anyway becomes an errors row.
    """


class ToolFailedError(CodecError):
    """An external tool exited non-zero, timed out, or wrote no output; the message holds its stderr tail."""


@dataclass(frozen=True)
class Tool:
    """One executable a codec runs: the recipe that builds it and the file names it may have."""

    recipe: str
    names: tuple[str, ...]


def _build_module():
    """``rdbench.codecs.build`` if it imports here, else None (the locator then skips step 3)."""
    try:
        from rdbench.codecs import build
    except ImportError:
        return None
    return build


def build_hint(recipe: str) -> str:
    """How to build ``recipe``'s tools, for "not found" messages."""
    build = _build_module()
    if build is not None:
        try:
            return f"build it with: {build.build_command(recipe)}"
        except Exception:  # noqa: BLE001 - an unknown recipe: fall through to the generic hint
            pass
    return f"build it with: luigi --module pipelines BuildCodec --name {recipe} --local-scheduler"


def env_var(recipe: str) -> str:
    """The environment variable naming a folder of ``recipe``'s executables: ``RDBENCH_VTM_DIR``."""
    return f"RDBENCH_{recipe.upper()}_DIR"


def _installed(recipe: str) -> Path | None:
    build = _build_module()
    if build is None:
        return None
    try:
        return build.installed_dir(recipe)
    except Exception:  # noqa: BLE001 - no recipe of that name, an unreadable manifest: not installed
        return None


def _executable(folder: Path, names: Sequence[str]) -> Path | None:
    for name in names:
        path = folder / name
        if path.is_file() and os.access(path, os.X_OK):
            return path.resolve()
    return None


_version_cache: dict[tuple[str, float], str] = {}
_version_lock = threading.Lock()


def _tail(text: bytes | str | None, limit: int = STDERR_TAIL) -> str:
    """The last ``limit`` characters of a tool's output, on one line."""
    if not text:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    one = " | ".join(lines)
    return one if len(one) <= limit else "…" + one[-limit:]


#: Parameters of every external codec; subclasses write ``PARAMS = {**EXTERNAL_PARAMS, …}``.
EXTERNAL_PARAMS: dict[str, Param] = {
    "bindir": Param("", "folder holding the executables (default: $RDBENCH_<NAME>_DIR, "
                        "codecs/bin/<name>-<version>/, PATH)"),
    "timeout": Param(1800.0, "seconds each tool run may take before it is killed", convert=float),
    "scratch": Param("", "folder under which each call makes its temporary folder (default: the system temp folder)"),
}


class ExternalCodec(Codec):
    """Base of the external-binary codecs: locating tools, scratch folders, running them.

    Subclasses set ``RECIPE`` (their build recipe, which names ``$RDBENCH_<RECIPE>_DIR``),
    ``TOOLS`` (role → :class:`Tool`), ``VERSION_ARGS``/``VERSION_PATTERN`` (how the encoder
    prints its version) and implement ``encode``/``decode`` with :meth:`scratch` and :meth:`run`.
    """

    family = "classical"
    #: Slow (VTM: about a minute per Kodak image at 2 cores) and installed separately: a run names them.
    in_default_set = False
    RECIPE: ClassVar[str] = ""
    TOOLS: ClassVar[dict[str, Tool]] = {}
    #: Data files the encoder needs (name → file names), looked up beside the encoder (see :meth:`_find_file`).
    FILES: ClassVar[dict[str, tuple[str, ...]]] = {}
    VERSION_ARGS: ClassVar[tuple[str, ...]] = ("--help",)
    VERSION_PATTERN: ClassVar[str] = r"[Vv]ersion\s+v?(\S+)"
    #: The product name in the version string.
    PRODUCT: ClassVar[str] = ""
    PARAMS: ClassVar[dict[str, Param]] = EXTERNAL_PARAMS

    def __init__(self, **params: Any):
        super().__init__(**params)
        if self.params["timeout"] <= 0:
            raise CodecSpecError(f"codec {self.name!r}: timeout={self.params['timeout']:g} is not allowed; "
                                 "give a number of seconds > 0")
        for key in ("bindir", "scratch"):
            if self.params[key] and not Path(self.params[key]).is_dir():
                raise CodecSpecError(f"codec {self.name!r}: {key}={self.params[key]!r} is not a folder")
        self._paths: dict[str, Path] | None = None
        self._missing: str | None = None
        self._version: str | None = None
        #: Seconds the last run of each role's tool took (the subprocess alone), e.g. ``{"encoder": 61.2}``.
        self.last_tool_s: dict[str, float] = {}

    # -- locating ------------------------------------------------------------------------------
    def _search(self, role: str, tool: Tool) -> tuple[Path | None, list[str]]:
        """The executable of ``role`` and the places looked (for the message when it is absent)."""
        looked: list[str] = []
        own = tool.recipe == self.RECIPE
        if self.params["bindir"]:
            found = _executable(Path(self.params["bindir"]), tool.names)
            if found or own:
                return found, [f"bindir={self.params['bindir']}"]
            looked.append(f"bindir={self.params['bindir']}")
        var = env_var(tool.recipe)
        if os.environ.get(var):
            found = _executable(Path(os.environ[var]), tool.names)
            if found:
                return found, looked
            looked.append(f"${var}={os.environ[var]}")
        else:
            looked.append(f"${var} (unset)")
        folder = _installed(tool.recipe)
        if folder is not None:
            found = _executable(folder, tool.names)
            if found:
                return found, looked
        build = _build_module()
        looked.append(f"{build.bin_root()}/{tool.recipe}-<version>/" if build else f"codecs/bin/{tool.recipe}-<version>/")
        for name in tool.names:
            which = shutil.which(name)
            if which:
                return Path(which).resolve(), looked
        looked.append("PATH")
        return None, looked

    def _find_file(self, encoder: Path, names: Sequence[str]) -> Path | None:
        """A data file beside the encoder, or in ``../cfg/`` (VTM's source tree: ``bin/`` next to ``cfg/``)."""
        for folder in (encoder.parent, encoder.parent.parent / "cfg"):
            for name in names:
                if (folder / name).is_file():
                    return (folder / name).resolve()
        return None

    def _explicit_file(self, key: str) -> str:
        """A subclass's parameter overriding a data file's location ('' when none)."""
        return str(self.params.get(key) or "")

    def _locate(self) -> dict[str, Path]:
        """Every role's executable and every data file; raises :class:`ToolNotFoundError` (cached)."""
        if self._paths is not None:
            return self._paths
        if self._missing is not None:
            raise ToolNotFoundError(self._missing)
        paths: dict[str, Path] = {}
        for role, tool in self.TOOLS.items():
            found, looked = self._search(role, tool)
            if found is None:
                self._missing = (f"codec {self.spec!r}: {' or '.join(tool.names)} ({role}) not found; looked in "
                                 f"{', '.join(looked)}; {build_hint(tool.recipe)} (or give {self.name}:bindir=FOLDER)")
                raise ToolNotFoundError(self._missing)
            paths[role] = found
        for key, names in self.FILES.items():
            explicit = self._explicit_file(key)
            found = Path(explicit).resolve() if explicit else self._find_file(paths["encoder"], names)
            if found is None or not found.is_file():
                where = f"{key}={explicit}" if explicit else f"beside {paths['encoder']}"
                self._missing = (f"codec {self.spec!r}: {' or '.join(names)} not found ({where}); "
                                 f"{build_hint(self.RECIPE)} (or give {self.name}:{key}=FILE)")
                raise ToolNotFoundError(self._missing)
            paths[key] = found
        self._paths = paths
        return paths

    def tool_path(self, role: str) -> Path:
        """The executable (or data file) of ``role``; :class:`ToolNotFoundError` when absent."""
        return self._locate()[role]

    def check_runnable(self) -> None:
        """Raise :class:`ToolNotFoundError` (one line, with the build command) unless every tool is here."""
        self._locate()

    def weights_available(self, qualities: Sequence[float] | None = None) -> bool:
        """Whether the executables are here (the binary codecs' "nothing to download")."""
        try:
            self._locate()
        except ToolNotFoundError:
            return False
        return True

    # -- identity ----------------------------------------------------------------------------
    @property
    def version(self) -> str:
        """``<product> <version> (<exe> sha256 <12 hex>, …)``; ``… (not found)`` without the tools."""
        if self._version is not None:
            return self._version
        try:
            paths = self._locate()
        except ToolNotFoundError:
            return f"{self.PRODUCT or self.name} (not found)"
        key = (str(paths["encoder"]), paths["encoder"].stat().st_mtime)
        with _version_lock:
            if key not in _version_cache:
                _version_cache[key] = self._tool_version(paths["encoder"])
        hashes = ", ".join(f"{p.name} sha256 {sha256_file(p)[:12]}" for role, p in paths.items() if role in self.TOOLS)
        self._version = f"{self.PRODUCT} {_version_cache[key]} ({hashes})"
        return self._version

    def _tool_version(self, encoder: Path) -> str:
        """The version the encoder prints (``VERSION_ARGS``, matched by ``VERSION_PATTERN``)."""
        try:
            out = subprocess.run([str(encoder), *self.VERSION_ARGS], capture_output=True, timeout=30,
                                 stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unknown ({exc})"
        match = re.search(self.VERSION_PATTERN, (out.stdout + out.stderr).decode("utf-8", "replace"))
        return match.group(1) if match else "unknown"

    # -- running -----------------------------------------------------------------------------
    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A fresh temporary folder for one call, always removed afterwards."""
        folder = tempfile.mkdtemp(prefix=f"rdbench-{self.name}-", dir=self.params["scratch"] or None)
        try:
            yield Path(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def run(self, role: str, args: Sequence[Any], cwd: Path, outputs: Sequence[Path] = ()) -> float:
        """Run ``role``'s executable with ``args`` in ``cwd``; returns the seconds it took.

        Raises :class:`ToolFailedError` on a non-zero exit (with its stderr tail), on a timeout,
        or when one of ``outputs`` was not written (or is empty).
        """
        exe = self.tool_path(role)
        timeout = self.params["timeout"]
        start = time.perf_counter()
        try:
            proc = subprocess.run([str(exe), *map(str, args)], cwd=cwd, capture_output=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise ToolFailedError(f"{self.name}: {exe.name} timed out after {timeout:g} s (timeout={timeout:g}); "
                                  f"its last output: {_tail(exc.stderr) or _tail(exc.stdout) or 'none'}") from None
        except OSError as exc:
            raise ToolFailedError(f"{self.name}: {exe} could not be started: {exc}") from None
        elapsed = time.perf_counter() - start
        self.last_tool_s[role] = elapsed
        if proc.returncode != 0:
            detail = _tail(proc.stderr) or _tail(proc.stdout) or "no output"
            raise ToolFailedError(f"{self.name}: {exe.name} exited with status {proc.returncode}: {detail}")
        for path in outputs:
            if not path.is_file() or path.stat().st_size == 0:
                detail = _tail(proc.stderr) or _tail(proc.stdout) or "no output"
                raise ToolFailedError(f"{self.name}: {exe.name} exited 0 but wrote no {path.name}: {detail}")
        return elapsed


def qp_param(qp_range: tuple[int, int], qp_max: int, key: str = "qp") -> Param:
    """The ``qp=`` parameter of a :class:`QPCodec`."""
    low, high = qp_range
    return Param(None, f"run this one quantiser ({low}–{high}) instead of a quality ladder "
                       f"(quality = {qp_max} − {key})", convert=int)


class QPCodec(ExternalCodec):
    """An external codec driven by an integer quantiser: ``quality = QP_MAX − QP`` (higher = more bits).

    ``qp=`` (``cq_level=`` for aomenc, see ``QP_PARAM``) pins the codec to that one quantiser:
    its ladder becomes that single quality and any other quality is refused.
    """

    QP_PARAM: ClassVar[str] = "qp"
    #: quality = QP_MAX − QP.
    QP_MAX: ClassVar[int] = 51
    QP_RANGE: ClassVar[tuple[int, int]] = (0, 51)

    def __init__(self, **params: Any):
        super().__init__(**params)
        qp = self.params.get(self.QP_PARAM)
        low, high = self.QP_RANGE
        if qp is not None and not low <= qp <= high:
            raise CodecSpecError(f"codec {self.name!r}: {self.QP_PARAM}={qp} is outside {low}–{high}")

    def qp(self, quality: float) -> int:
        """The quantiser of ``quality`` (checked)."""
        self.check_quality(quality)
        return self.QP_MAX - int(round(float(quality)))

    def default_qualities(self) -> list[float]:
        pinned = self.params.get(self.QP_PARAM)
        if pinned is not None:
            return [float(self.QP_MAX - pinned)]
        return super().default_qualities()

    def check_quality(self, quality: float) -> None:
        super().check_quality(quality)
        if float(quality) != int(round(float(quality))):
            raise QualityError(f"codec {self.name!r}: quality {quality:g} is not an integer "
                               f"(quality = {self.QP_MAX} − {self.QP_PARAM}); give one of {self.quality_range()}")
        pinned = self.params.get(self.QP_PARAM)
        if pinned is not None and float(quality) != self.QP_MAX - pinned:
            raise QualityError(f"codec {self.spec!r} runs {self.QP_PARAM} {pinned} only (quality "
                               f"{self.QP_MAX - pinned}); drop {self.QP_PARAM}= to run other qualities")


# -- YCbCr 4:4:4 as CompressAI's bench makes it -----------------------------------------------------

#: ITU-R BT.709 luma weights (Kr, Kg, Kb), the ones compressai.transforms.functional uses.
BT709 = (0.2126, 0.7152, 0.0722)
ROUNDING = ("floor", "nearest")


def _to_u8(x: np.ndarray, rounding: str) -> np.ndarray:
    x = np.clip(x, 0, 1) * 255
    return (np.floor(x) if rounding == "floor" else np.rint(x)).astype(np.uint8)


def _rgb_to_ycbcr_float(image: np.ndarray) -> np.ndarray:
    """``uint8 (H, W, 3)`` RGB → float32 ``(3, H, W)`` full-range BT.709 Y, Cb, Cr in [0, 1] (unclipped)."""
    kr, kg, kb = BT709
    rgb = image.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    r, g, b = rgb
    y = kr * r + kg * g + kb * b
    cb = 0.5 * (b - y) / (1 - kb) + 0.5
    cr = 0.5 * (r - y) / (1 - kr) + 0.5
    return np.stack([y, cb, cr])


def _ycbcr_float_to_rgb(planes: np.ndarray, rounding: str) -> np.ndarray:
    """float32 ``(3, H, W)`` Y, Cb, Cr in [0, 1] → ``uint8 (H, W, 3)`` RGB."""
    kr, kg, kb = BT709
    y, cb, cr = planes
    r = y + (2 - 2 * kr) * (cr - 0.5)
    b = y + (2 - 2 * kb) * (cb - 0.5)
    g = (y - kr * r - kb * b) / kg
    return np.ascontiguousarray(_to_u8(np.stack([r, g, b]), rounding).transpose(1, 2, 0))


def rgb_to_ycbcr(image: np.ndarray, rounding: str = "floor") -> np.ndarray:
    """``uint8 (H, W, 3)`` RGB → ``uint8 (3, H, W)`` full-range BT.709 Y, Cb, Cr planes.

    float32 arithmetic in CompressAI's order; ``rounding="floor"`` truncates to 8 bits as its
    bench does (``astype(uint8)``), ``"nearest"`` rounds.
    """
    return _to_u8(_rgb_to_ycbcr_float(image), rounding)


def ycbcr_to_rgb(planes: np.ndarray, rounding: str = "floor") -> np.ndarray:
    """``uint8 (3, H, W)`` full-range BT.709 Y, Cb, Cr → ``uint8 (H, W, 3)`` RGB (the inverse of :func:`rgb_to_ycbcr`)."""
    return _ycbcr_float_to_rgb(planes.astype(np.float32) / np.float32(255), rounding)


def rgb_to_ycbcr420(image: np.ndarray, rounding: str = "floor") -> tuple[np.ndarray, np.ndarray]:
    """``uint8 (H, W, 3)`` RGB (even sides) → 4:2:0: ``uint8`` Y ``(H, W)`` and Cb, Cr ``(2, H/2, W/2)``.

    The conversion of :func:`rgb_to_ycbcr`; chroma is the mean of each 2×2 block (centred siting)
    before the 8-bit rounding.
    """
    planes = _rgb_to_ycbcr_float(image)
    _, height, width = planes.shape
    chroma = planes[1:].reshape(2, height // 2, 2, width // 2, 2).mean(axis=(2, 4), dtype=np.float32)
    return _to_u8(planes[0], rounding), _to_u8(chroma, rounding)


def _upsample2(plane: np.ndarray, axis: int) -> np.ndarray:
    """Double one axis by linear interpolation for centred chroma (weights 3/4, 1/4; edges repeated)."""
    n = plane.shape[axis]
    prev = np.take(plane, np.r_[0, 0:n - 1], axis=axis)
    nxt = np.take(plane, np.r_[1:n, n - 1], axis=axis)
    even, odd = 0.75 * plane + 0.25 * prev, 0.75 * plane + 0.25 * nxt
    return np.stack([even, odd], axis=axis + 1).reshape(*plane.shape[:axis], 2 * n, *plane.shape[axis + 1:])


def ycbcr420_to_rgb(luma: np.ndarray, chroma: np.ndarray, rounding: str = "floor") -> np.ndarray:
    """4:2:0 ``uint8`` Y ``(H, W)`` and Cb, Cr ``(2, H/2, W/2)`` → ``uint8 (H, W, 3)`` RGB (chroma linearly upsampled)."""
    height, width = luma.shape
    c = chroma.astype(np.float32) / np.float32(255)
    c = _upsample2(_upsample2(c, 1), 2)[:, :height, :width]
    planes = np.concatenate([luma[None].astype(np.float32) / np.float32(255), c.astype(np.float32)])
    return _ycbcr_float_to_rgb(planes, rounding)


def write_planar(planes: Sequence[np.ndarray], path: Path) -> None:
    """Write 8-bit planes (a ``(3, H, W)`` array, or Y then the ``(2, h, w)`` chroma) as one raw frame."""
    path.write_bytes(b"".join(np.ascontiguousarray(p, dtype=np.uint8).tobytes() for p in planes))


def read_y4m(path: Path, what: str) -> tuple[str, np.ndarray, np.ndarray]:
    """The first frame of an 8-bit 4:4:4 or 4:2:0 YUV4MPEG2 file: ``(format, Y (H, W), CbCr (2, h, w))``.

    ``format`` is ``"444"`` or ``"420"``. Decoders write Y4M so that the picture size comes from
    the bitstream, not from the caller.
    """
    data = path.read_bytes() if path.is_file() else b""
    header, sep, rest = data.partition(b"\n")
    if not sep or not header.startswith(b"YUV4MPEG2 "):
        raise CodecError(f"{what} wrote no YUV4MPEG2 file ({path.name}: {len(data)} bytes)")
    fields = {f[:1]: f[1:] for f in header.decode("ascii", "replace").split()[1:]}
    colour = fields.get("C", "420jpeg")
    if colour == "444":
        fmt = "444"
    elif colour.startswith("420") and not colour.startswith("420p1"):  # 420, 420jpeg, 420mpeg2, 420paldv
        fmt = "420"
    else:
        raise CodecError(f"{what} wrote Y4M colour space C{colour}, expected C444 or C420 (8 bits)")
    width, height = int(fields["W"]), int(fields["H"])
    cw, ch = (width, height) if fmt == "444" else ((width + 1) // 2, (height + 1) // 2)
    size = width * height + 2 * cw * ch
    frame, sep, pixels = rest.partition(b"\n")
    if not frame.startswith(b"FRAME") or len(pixels) < size:
        raise CodecError(f"{what} wrote a truncated Y4M frame ({len(pixels)} bytes, expected {size})")
    samples = np.frombuffer(pixels, dtype=np.uint8, count=size)
    return fmt, samples[:width * height].reshape(height, width), samples[width * height:].reshape(2, ch, cw)


def planes_to_rgb(fmt: str, luma: np.ndarray, chroma: np.ndarray, rounding: str) -> np.ndarray:
    """Decoded full-range BT.709 planes (:func:`read_y4m`'s result, 4:4:4 or 4:2:0) as ``uint8 (H, W, 3)`` RGB."""
    if fmt == "444":
        return ycbcr_to_rgb(np.concatenate([luma[None], chroma]), rounding)
    return ycbcr420_to_rgb(luma, chroma, rounding)
