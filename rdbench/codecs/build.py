"""Build external codec binaries (BPG, VTM, VVenC, libaom) from pinned official source archives.

Codec classes that run an external encoder find it with :func:`installed_dir` (or
:func:`installed_executable`) and, when it is missing, tell the user :func:`build_command`.
Everything lives under the *codecs bin root* (``root=`` argument, else ``$RDBENCH_CODECS_BIN``,
else ``codecs/bin`` in the working directory)::

    codecs/bin/<name>-<version>/      the executables, extra files (cfg), build.json, build.log
    codecs/bin/.downloads/            verified source archives, TRUSTED-SHA256SUMS
    codecs/bin/.build/                scratch trees (removed after each build)

:func:`build_codec` checks the build tools (one line naming the apt packages to install),
downloads through :mod:`rdbench.download` (``$RDBENCH_MIRROR``: ``<mirror>/<recipe.filename>``,
``{folder}`` = the recipe name), verifies the pinned sha256 or, where the publisher gives none,
trusts the first download and enforces it afterwards, extracts safely
(:mod:`rdbench.datasets.extract`), runs the recipe's steps (argv lists, no shell) with their
output in ``build.log``, and installs atomically (a temporary folder renamed into place, the
manifest ``build.json`` written inside it first). A build whose manifest exists and whose
executables still hash as recorded is complete and is not redone. Docs: docs/building.md.
"""
from __future__ import annotations

import argparse
import collections
import logging
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rdbench import download
from rdbench.files import file_lock, sha256_file, write_json_atomic

__all__ = [
    "DEFAULT_BIN_ROOT",
    "ENV_BIN_ROOT",
    "MANIFEST_NAME",
    "RECIPES",
    "BuildError",
    "MissingToolsError",
    "Recipe",
    "Step",
    "UnknownRecipeError",
    "bin_root",
    "build_codec",
    "build_command",
    "get_recipe",
    "install_path",
    "installed_dir",
    "installed_executable",
    "is_complete",
    "missing_tools",
    "read_manifest",
    "register_recipe",
]

log = logging.getLogger(__name__)

#: Environment variable naming the codecs bin root (the ``codecs_bin`` parameter wins).
ENV_BIN_ROOT = "RDBENCH_CODECS_BIN"
DEFAULT_BIN_ROOT = "codecs/bin"
MANIFEST_NAME = "build.json"
LOG_NAME = "build.log"
LOG_TAIL = 20

Progress = Callable[[float, str], None]


# --------------------------------------------------------------------------------------------
# What codec classes import
# --------------------------------------------------------------------------------------------


def installed_dir(name: str, version: str | None = None, root: str | os.PathLike | None = None) -> Path | None:
    """The folder holding recipe ``name``'s built executables (``<root>/<name>-<version>/``), or
    None when it has not been built (no ``build.json``, or an executable it lists is missing).

    ``version`` defaults to the pinned one; ``root`` to :func:`bin_root`. Cheap (no hashing).
    Unknown names raise :class:`UnknownRecipeError`.
    """
    recipe = get_recipe(name, version)
    folder = install_path(recipe, root)
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    if not all((folder / exe).is_file() for exe in manifest.get("executables", {})):
        return None
    return folder


def installed_executable(name: str, executable: str, version: str | None = None,
                         root: str | os.PathLike | None = None) -> Path | None:
    """The path of one built executable (``installed_executable("vtm", "EncoderApp")``), or None."""
    folder = installed_dir(name, version, root)
    return folder / executable if folder is not None and (folder / executable).is_file() else None


def build_command(name: str) -> str:
    """The command a user runs to build recipe ``name``, for "not found; build it with: …" messages."""
    get_recipe(name)
    return f"luigi --module pipelines BuildCodec --name {name} --local-scheduler"


def bin_root(root: str | os.PathLike | None = None) -> Path:
    """The codecs bin root: ``root``, else ``$RDBENCH_CODECS_BIN``, else ``codecs/bin``."""
    return Path(root or os.environ.get(ENV_BIN_ROOT) or DEFAULT_BIN_ROOT)


# --------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------


class BuildError(RuntimeError):
    """A codec could not be built; the message says why (and where the log is)."""


class UnknownRecipeError(BuildError, ValueError):
    """No recipe of that name (or version)."""


class MissingToolsError(BuildError):
    """Build tools or headers are missing; the message is one ``apt-get install`` line."""


@dataclass(frozen=True)
class Step:
    """One command of a build: ``argv`` (``{jobs}``, ``{src}`` and ``{build}`` substituted) run in
    ``cwd`` relative to the source tree."""

    argv: tuple[str, ...]
    cwd: str = "."


@dataclass(frozen=True)
class Recipe:
    """How to build one tool from one pinned source archive.

    ``sha256`` None means the publisher gives no checksum: trust on first use. ``filename`` is
    the archive's name in the downloads folder and below a mirror. ``tools`` maps executables
    (``headers``: C headers) to the Debian package that provides them. ``executables`` maps each
    installed name to a glob (relative to the source tree) that finds it after the steps;
    ``files`` likewise for extra files installed next to them (configuration files).
    """

    name: str
    version: str
    url: str
    sha256: str | None
    filename: str
    steps: tuple[Step, ...]
    executables: Mapping[str, str]
    tools: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    notes: str = ""

    @property
    def dirname(self) -> str:
        return f"{self.name}-{self.version}"


_C_TOOLS = {"make": "make", "gcc": "gcc", "g++": "g++"}
_CMAKE_TOOLS = {**_C_TOOLS, "cmake": "cmake"}
_BUILD = "_rdbench_build"  # the cmake build folder inside the source tree


def _cmake_steps(*targets: str, options: tuple[str, ...] = ()) -> tuple[Step, ...]:
    return (Step(("cmake", "-S", ".", "-B", _BUILD, "-DCMAKE_BUILD_TYPE=Release", *options)),
            Step(("cmake", "--build", _BUILD, "--target", *targets, "-j", "{jobs}")))


RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    """Add (or replace) a recipe; tests register their own."""
    RECIPES[recipe.name] = recipe
    return recipe


register_recipe(Recipe(
    name="bpg", version="0.9.8",
    url="https://bellard.org/bpg/libbpg-0.9.8.tar.gz", sha256=None, filename="libbpg-0.9.8.tar.gz",
    # The bundled x265 (8/10/12-bit, built by the Makefile with cmake); no JCTVC, no bpgview, no emcc.
    steps=(Step(("make", "-j{jobs}", "USE_X265=y", "USE_JCTVC=", "USE_JCTVC_HIGH_BIT_DEPTH=", "USE_EMCC=",
                 "USE_BPGVIEW=", "bpgenc", "bpgdec")),),
    executables={"bpgenc": "bpgenc", "bpgdec": "bpgdec"},
    tools={**_CMAKE_TOOLS, "yasm": "yasm"},
    headers={"png.h": "libpng-dev", "jpeglib.h": "libjpeg-dev"},
    notes="bellard.org publishes no checksum: the first download's sha256 is trusted and enforced afterwards."))

register_recipe(Recipe(
    name="vtm", version="23.13",
    url="https://vcgit.hhi.fraunhofer.de/jvet/VVCSoftware_VTM/-/archive/VTM-23.13/VVCSoftware_VTM-VTM-23.13.tar.gz",
    sha256=None, filename="VVCSoftware_VTM-VTM-23.13.tar.gz",
    steps=_cmake_steps("EncoderApp", "DecoderApp"),
    # VTM writes its executables to bin/umake/<compiler>-<version>/<arch>/release/.
    executables={"EncoderApp": "bin/umake/*/*/release/EncoderApp", "DecoderApp": "bin/umake/*/*/release/DecoderApp"},
    tools=_CMAKE_TOOLS,
    files={"encoder_intra_vtm.cfg": "cfg/encoder_intra_vtm.cfg"},
    notes="GitLab generates the archive on request and publishes no checksum: trust on first use."))

register_recipe(Recipe(
    name="vvenc", version="1.14.0",
    url="https://github.com/fraunhoferhhi/vvenc/archive/refs/tags/v1.14.0.tar.gz",
    sha256=None, filename="vvenc-1.14.0.tar.gz",
    steps=_cmake_steps("vvencapp", "vvencFFapp"),
    executables={"vvencapp": "bin/release-*/vvencapp", "vvencFFapp": "bin/release-*/vvencFFapp"},
    tools=_CMAKE_TOOLS,
    notes="An encoder only: VTM's DecoderApp (recipe vtm) decodes its VVC bitstreams. GitHub's tag archives "
          "carry no published checksum: trust on first use."))

register_recipe(Recipe(
    name="aom", version="3.6.0",
    url="https://storage.googleapis.com/aom-releases/libaom-3.6.0.tar.gz",
    # The value of libaom-3.6.0.tar.gz.sha256 beside the archive (the same digest is pinned by the
    # LibreELEC, Chimera Linux and ix build recipes).
    sha256="a4a6c0fab685da743b796662a928fcdf7ae60594edc306efb73e78a17ea6cde6", filename="libaom-3.6.0.tar.gz",
    steps=_cmake_steps("aomenc", "aomdec", options=("-DENABLE_TESTS=0", "-DENABLE_DOCS=0", "-DENABLE_EXAMPLES=1",
                                                    "-DENABLE_TOOLS=0")),
    executables={"aomenc": f"{_BUILD}/aomenc", "aomdec": f"{_BUILD}/aomdec"},
    tools={**_CMAKE_TOOLS, "nasm": "nasm", "perl": "perl"},
    notes="Debian's aom-tools package (aomenc, aomdec on PATH) is an alternative to building this."))


def get_recipe(name: str, version: str | None = None) -> Recipe:
    """The recipe ``name`` (at its pinned ``version``; another version raises)."""
    recipe = RECIPES.get(name)
    if recipe is None:
        raise UnknownRecipeError(f"unknown codec build {name!r}; accepted: {', '.join(sorted(RECIPES))}")
    if version and version != recipe.version:
        raise UnknownRecipeError(f"{name}: no recipe for version {version!r}; accepted: {recipe.version}")
    return recipe


def install_path(recipe: Recipe, root: str | os.PathLike | None = None) -> Path:
    return bin_root(root) / recipe.dirname


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The ``build.json`` in ``folder``, or None when absent or unreadable."""
    import json

    try:
        with open(Path(folder) / MANIFEST_NAME, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_complete(name: str, version: str | None = None, root: str | os.PathLike | None = None) -> bool:
    """True when the build is installed and every executable still hashes as its manifest says."""
    folder = installed_dir(name, version, root)
    if folder is None:
        return False
    manifest = read_manifest(folder) or {}
    recorded = manifest.get("executables", {})
    recipe = get_recipe(name, version)
    if set(recorded) != set(recipe.executables):
        return False
    return all(sha256_file(folder / exe) == entry.get("sha256") for exe, entry in recorded.items())


# --------------------------------------------------------------------------------------------
# Build tools
# --------------------------------------------------------------------------------------------


def _header_found(header: str) -> bool:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return False
    r = subprocess.run([cc, "-E", "-x", "c", "-"], input=f"#include <{header}>\n", capture_output=True, text=True)
    return r.returncode == 0


def missing_tools(recipe: Recipe) -> list[str]:
    """The Debian packages providing the recipe's missing tools and headers (empty: nothing missing)."""
    packages = [pkg for tool, pkg in recipe.tools.items() if shutil.which(tool) is None]
    packages += [pkg for header, pkg in recipe.headers.items() if not _header_found(header)]
    return list(dict.fromkeys(packages))


def check_tools(recipe: Recipe) -> None:
    """Raise :class:`MissingToolsError` (one line, the apt command) when anything is missing."""
    missing = missing_tools(recipe)
    if missing:
        raise MissingToolsError(f"{recipe.name} {recipe.version}: missing build tools; install them with: "
                                f"apt-get install {' '.join(missing)}")


def _first_line(argv: list[str]) -> str | None:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (r.stdout or r.stderr).strip().splitlines()
    return lines[0] if lines else None


# --------------------------------------------------------------------------------------------
# Source archive: download, verify, extract
# --------------------------------------------------------------------------------------------


def _downloads(root: Path) -> Path:
    return root / ".downloads"


def _verify(path: Path, recipe: Recipe, trusted: str | None) -> tuple[str, str]:
    """(sha256, how verified) of a downloaded archive; raises ChecksumMismatchError."""
    if recipe.sha256 is not None:
        sha = download.verify_file(path, {"sha256": recipe.sha256}, name=recipe.filename)["sha256"]
        return sha, "pinned sha256"
    sha = download.verify_file(path, name=recipe.filename)["sha256"]
    if trusted is None:
        return sha, "trust on first use (sha256 recorded at this download)"
    if sha != trusted:
        raise download.ChecksumMismatchError(
            recipe.filename, "sha256 (trusted on first use)", trusted, sha,
            "The publisher gives no checksum; the expected value was recorded at the first download. If the "
            f"upstream archive legitimately changed, delete its line from {path.parent.parent / download.TRUST_FILE} "
            "and run again")
    return sha, "trust on first use (matches the recorded sha256)"


def fetch_source(recipe: Recipe, root: str | os.PathLike | None = None, *, mirror: str | None = None,
                 on_bytes: Callable[[int, int | None], None] | None = None) -> tuple[Path, dict]:
    """Make ``<root>/.downloads/<recipe.filename>`` present and verified; return it and its record."""
    downloads = _downloads(bin_root(root))
    dest = downloads / recipe.filename
    trust_file = downloads / download.TRUST_FILE
    trusted = download.read_trusted(trust_file).get(recipe.filename) if recipe.sha256 is None else None
    raw_url = download.mirror_url(recipe.url, recipe.filename, mirror, folder=recipe.name)
    url = download.split_credentials(raw_url)[0]

    def finish(sha: str, how: str) -> tuple[Path, dict]:
        if recipe.sha256 is None and trusted is None:
            download.record_trusted(trust_file, recipe.filename, sha)
        return dest, {"filename": recipe.filename, "url": recipe.url, "downloaded_from": url, "sha256": sha,
                      "verified_by": how, "size": dest.stat().st_size}

    with file_lock(downloads / ".locks" / f"{recipe.filename}.lock"):
        if dest.is_file():
            try:
                return finish(*_verify(dest, recipe, trusted))
            except download.ChecksumMismatchError as exc:
                log.warning("%s: cached %s failed verification (%s); downloading it again", recipe.name, dest, exc)
                dest.unlink()
        incoming = downloads / ".incoming" / recipe.filename
        log.info("%s: downloading %s from %s", recipe.name, recipe.filename, url)
        download.download(raw_url, incoming, name=recipe.filename, on_bytes=on_bytes)
        try:
            verified = _verify(incoming, recipe, trusted)
        except download.ChecksumMismatchError as exc:
            incoming.unlink(missing_ok=True)
            raise download.ChecksumMismatchError(
                exc.filename, exc.what, exc.expected, exc.actual,
                (exc.detail + ". " if exc.detail else "") + f"Downloaded from {url}; deleted, nothing was built") from None
        os.replace(incoming, dest)
        return finish(*verified)


def extract_source(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` safely into ``dest`` and return the source tree (its single top folder).

    :func:`rdbench.datasets.extract.safe_extract` writes every file itself (no links, no
    modes); the execute bits the archive gives regular files are restored afterwards (only
    those: never setuid, never group/other write), since build scripts need them.
    """
    from rdbench.datasets.extract import safe_extract, safe_member_path

    written = {p.resolve() for p in safe_extract(archive, dest)}
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive, "r:*") as tf:
            for m in tf:
                if m.isfile() and m.mode & 0o111:
                    rel = safe_member_path(m.name, str(archive))
                    path = (dest / rel).resolve() if rel is not None else None
                    if path in written:
                        path.chmod(0o755)
    entries = [p for p in dest.iterdir()]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


# --------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------

_PERCENT = re.compile(r"^\[\s*(\d{1,3})%\]")


def _run_step(argv: list[str], cwd: Path, log_file, on_percent: Callable[[int], None] | None) -> tuple[int, float]:
    """Run one command with its output appended to ``log_file``; (exit status, seconds)."""
    start = time.monotonic()
    log_file.write(f"\n$ (cd {cwd} && {' '.join(argv)})\n")
    log_file.flush()
    env = {**os.environ, "LC_ALL": "C"}
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, text=True, errors="replace", bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        log_file.write(line)
        m = _PERCENT.match(line)
        if m and on_percent is not None:
            on_percent(int(m.group(1)))
    rc = proc.wait()
    log_file.flush()
    return rc, time.monotonic() - start


def _tail(path: Path, n: int = LOG_TAIL) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(collections.deque(f, maxlen=n))


def _find(src: Path, pattern: str, recipe: Recipe, what: str, log_path: Path) -> Path:
    matches = sorted(p for p in src.glob(pattern) if p.is_file())
    if len(matches) != 1:
        found = ", ".join(str(p.relative_to(src)) for p in matches) or "nothing"
        raise BuildError(f"{recipe.name} {recipe.version}: the build finished but {what} {pattern!r} matched {found} "
                         f"(expected one file); log: {log_path}")
    return matches[0]


def _toolchain() -> dict:
    return {tool: _first_line([tool, "--version"]) for tool in ("gcc", "g++", "cmake", "make")
            if shutil.which(tool)} | {var: os.environ[var] for var in ("CC", "CXX", "CFLAGS", "CXXFLAGS", "LDFLAGS")
                                      if var in os.environ}


def build_codec(name: str, version: str | None = None, *, root: str | os.PathLike | None = None,
                jobs: int | None = None, mirror: str | None = None, keep_scratch: bool = False,
                progress: Progress | None = None) -> dict:
    """Build and install recipe ``name`` under ``<root>/<name>-<version>/``; return its manifest.

    Already complete (see :func:`is_complete`): returns the manifest, does nothing. Missing
    tools raise :class:`MissingToolsError` before any download; a failed step raises
    :class:`BuildError` with the log's last lines and its path (``<root>/<name>-<version>.build.log``).
    ``jobs`` defaults to ``os.cpu_count()``.
    """
    recipe = get_recipe(name, version)
    root_path = bin_root(root)
    target = install_path(recipe, root)
    say = progress or (lambda _f, _m: None)
    with file_lock(root_path / ".locks" / f"{recipe.dirname}.lock"):
        if is_complete(recipe.name, recipe.version, root):
            say(1.0, f"{recipe.dirname} already built: {target}")
            return read_manifest(target) or {}
        check_tools(recipe)
        jobs = jobs or os.cpu_count() or 1
        started = time.monotonic()
        created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

        say(0.0, f"{recipe.dirname}: fetching {recipe.filename}")
        archive, source = fetch_source(recipe, root, mirror=mirror)

        scratch = root_path / ".build" / f"{recipe.dirname}-{uuid.uuid4().hex[:8]}"
        log_path = root_path / f"{recipe.dirname}.build.log"
        staging = root_path / f".{recipe.dirname}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            say(0.03, f"{recipe.dirname}: extracting")
            src = extract_source(archive, scratch)
            subst = {"jobs": str(jobs), "src": str(src), "build": str(src / _BUILD)}
            steps_run = []
            n = len(recipe.steps)
            with open(log_path, "w", encoding="utf-8") as log_file:
                log_file.write(f"# {recipe.dirname} from {source['url']} (sha256 {source['sha256']}), {created}\n")
                for i, step in enumerate(recipe.steps):
                    argv = [a.format(**subst) for a in step.argv]
                    lo, hi = 0.05 + 0.9 * i / n, 0.05 + 0.9 * (i + 1) / n
                    label = f"{recipe.dirname}: step {i + 1}/{n}: {' '.join(argv[:3])}"
                    say(lo, label)
                    last = [0.0]

                    def on_percent(pct: int, lo=lo, hi=hi, label=label, last=last) -> None:
                        now = time.monotonic()
                        if now - last[0] >= 2.0:
                            last[0] = now
                            say(lo + (hi - lo) * min(pct, 100) / 100, f"{label} [{pct}%]")

                    rc, seconds = _run_step(argv, src / step.cwd, log_file, on_percent)
                    steps_run.append({"cwd": step.cwd, "argv": argv, "exit": rc, "seconds": round(seconds, 1)})
                    if rc != 0:
                        log_file.close()
                        raise BuildError(f"{recipe.dirname}: step {i + 1}/{n} `{' '.join(argv)}` failed with exit "
                                         f"status {rc}; last {LOG_TAIL} lines of {log_path}:\n{_tail(log_path)}")

            say(0.96, f"{recipe.dirname}: installing into {target}")
            staging.mkdir(parents=True)
            executables = {}
            for exe, pattern in recipe.executables.items():
                found = _find(src, pattern, recipe, "executable", log_path)
                shutil.copy2(found, staging / exe)
                (staging / exe).chmod(0o755)
                executables[exe] = {"built_as": str(found.relative_to(src)), "sha256": sha256_file(staging / exe)}
            files = {}
            for dest_name, pattern in recipe.files.items():
                found = _find(src, pattern, recipe, "file", log_path)
                shutil.copy2(found, staging / dest_name)
                files[dest_name] = {"from": str(found.relative_to(src)), "sha256": sha256_file(staging / dest_name)}
            manifest = {
                "recipe": recipe.name, "version": recipe.version, "url": recipe.url, "source": source,
                "jobs": jobs, "steps": steps_run, "toolchain": _toolchain(),
                "build_seconds": round(time.monotonic() - started, 1), "created": created,
                "host": {"hostname": socket.gethostname(), "platform": platform.platform(),
                         "machine": platform.machine(), "cpu_count": os.cpu_count()},
                "executables": executables, "files": files, "log": LOG_NAME,
            }
            shutil.move(str(log_path), staging / LOG_NAME)
            write_json_atomic(staging / MANIFEST_NAME, manifest)
            _swap_into_place(staging, target)
            say(1.0, f"{recipe.dirname}: built in {manifest['build_seconds']:.0f} s: {target}")
            return manifest
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if not keep_scratch:
                shutil.rmtree(scratch, ignore_errors=True)


def _swap_into_place(staging: Path, target: Path) -> None:
    """Rename the finished folder onto ``target``; an older (incomplete) one is moved aside first."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# python -m rdbench.codecs.build NAME
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rdbench.codecs.build", description=__doc__.splitlines()[0])
    parser.add_argument("name", help=f"one of: {', '.join(sorted(RECIPES))}")
    parser.add_argument("--version", default=None, help="the pinned version (the only one accepted)")
    parser.add_argument("--jobs", type=int, default=None, help="parallel compile jobs (default: cores)")
    parser.add_argument("--codecs-bin", default=None, help=f"install root (default: ${ENV_BIN_ROOT} or {DEFAULT_BIN_ROOT})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        manifest = build_codec(args.name, args.version, root=args.codecs_bin, jobs=args.jobs,
                               progress=lambda f, m: print(f"[{100 * f:3.0f}%] {m}", file=sys.stderr))
    except (BuildError, download.DownloadError) as exc:
        print(f"rdbench: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (MissingToolsError, UnknownRecipeError)) else 1
    print(install_path(get_recipe(manifest["recipe"]), args.codecs_bin).resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
