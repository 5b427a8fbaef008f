"""BuildCodec: a real C program built from a real archive served on 127.0.0.1, through Luigi."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import luigi
import pytest

from rdbench import download
from rdbench.codecs import build
from rdbench.datasets.extract import UnsafeArchiveError
from rdbench.run import ConfigError
from tests._http import serve

pytestmark = pytest.mark.skipif(not all(map(build.shutil.which, ("make", "gcc"))), reason="needs make and gcc")

HELLO_C = b'#include <stdio.h>\n#include "version.h"\nint main(void) { printf("hello %s\\n", VERSION); return 0; }\n'
# gen.sh is executable in the archive: the build only works if extraction restores the bit.
MAKEFILE = b"hello: hello.c version.h\n\t$(CC) -O2 -o hello hello.c\n\nversion.h: gen.sh\n\t./gen.sh > version.h\n"
GEN_SH = b'#!/bin/sh\necho \'#define VERSION "1.0"\'\n'


def make_archive(path: Path, files: dict[str, tuple[bytes, int]], top: str = "hello-1.0") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size, info.mode = len(data), mode
            tf.addfile(info, io.BytesIO(data))
    return path


def hello_files(source: bytes = HELLO_C) -> dict[str, tuple[bytes, int]]:
    return {"hello.c": (source, 0o644), "Makefile": (MAKEFILE, 0o644), "gen.sh": (GEN_SH, 0o755),
            "cfg/hello.cfg": (b"Quality: 1\n", 0o644)}


RECIPE = build.Recipe(
    name="hello-test", version="1.0", url="https://example.invalid/releases/hello-1.0.tar.gz", sha256=None,
    filename="hello-1.0.tar.gz", steps=(build.Step(("make", "-j{jobs}", "hello")),),
    executables={"hello": "hello"}, tools={"make": "make", "gcc": "gcc"}, files={"hello.cfg": "cfg/hello.cfg"})


@pytest.fixture
def site(tmp_path, monkeypatch):
    """The archive served on 127.0.0.1 as the mirror of every publisher; the test recipe registered."""
    served = tmp_path / "served"
    served.mkdir()
    make_archive(served / RECIPE.filename, hello_files())
    monkeypatch.delenv(build.ENV_BIN_ROOT, raising=False)
    build.register_recipe(RECIPE)
    with serve(served) as server:
        monkeypatch.setenv(download.MIRROR_ENV, server.url)
        yield server, tmp_path / "bin"
    build.RECIPES.pop(RECIPE.name, None)


def use(recipe: build.Recipe) -> build.Recipe:
    return build.register_recipe(recipe)


def test_build_through_luigi_then_nothing_to_do(site):
    server, root = site
    task = luigi.build([__import__("pipelines").BuildCodec(name="hello-test", codecs_bin=str(root))],
                       local_scheduler=True, detailed_summary=True)
    assert task.scheduling_succeeded, task.summary_text
    folder = build.installed_dir("hello-test", root=root)
    assert folder == root / "hello-test-1.0"
    exe = build.installed_executable("hello-test", "hello", root=root)
    assert subprocess.run([exe], capture_output=True, text=True, check=True).stdout == "hello 1.0\n"
    assert (folder / "hello.cfg").read_text() == "Quality: 1\n"

    manifest = json.loads((folder / "build.json").read_text())
    archive_sha = build.sha256_file(server.root / RECIPE.filename)
    assert manifest["recipe"] == "hello-test" and manifest["version"] == "1.0"
    assert manifest["url"] == RECIPE.url
    assert manifest["source"]["sha256"] == archive_sha
    assert manifest["source"]["downloaded_from"] == server.url + RECIPE.filename
    assert manifest["source"]["verified_by"] == "trust on first use (sha256 recorded at this download)"
    assert manifest["executables"]["hello"]["sha256"] == build.sha256_file(exe)
    assert manifest["toolchain"]["gcc"].startswith("gcc")
    assert manifest["steps"][0]["argv"] == ["make", f"-j{os.cpu_count()}", "hello"]
    assert manifest["host"]["cpu_count"] == os.cpu_count() and manifest["build_seconds"] >= 0
    assert "-O2 -o hello hello.c" in (folder / "build.log").read_text()
    trusted = download.read_trusted(root / ".downloads" / download.TRUST_FILE)
    assert trusted == {RECIPE.filename: archive_sha}
    assert sorted(p.name for p in root.iterdir()) == [".build", ".downloads", ".locks", "hello-test-1.0"]
    assert list((root / ".build").iterdir()) == []  # scratch removed

    # Complete: a second run neither downloads nor rebuilds.
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    n_requests = len(server.requests)
    assert luigi.build([__import__("pipelines").BuildCodec(name="hello-test", codecs_bin=str(root))],
                       local_scheduler=True)
    assert build.build_codec("hello-test", root=root) == manifest
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes
    assert len(server.requests) == n_requests

    # A modified executable makes it incomplete again.
    exe.write_bytes(b"#!/bin/sh\necho tampered\n")
    assert not build.is_complete("hello-test", root=root)


def test_trust_on_first_use_is_enforced(site):
    server, root = site
    build.build_codec("hello-test", root=root, jobs=1)
    # Upstream changes the archive: the rebuild (no install, no cached archive) is refused.
    build.shutil.rmtree(root / "hello-test-1.0")
    (root / ".downloads" / RECIPE.filename).unlink()
    server.overrides[RECIPE.filename] = make_archive(root.parent / "other.tar.gz",
                                                     hello_files(HELLO_C + b"/* changed */\n")).read_bytes()
    with pytest.raises(download.ChecksumMismatchError, match="trusted on first use.*TRUSTED-SHA256SUMS"):
        build.build_codec("hello-test", root=root, jobs=1)
    assert build.installed_dir("hello-test", root=root) is None
    assert not (root / ".downloads" / RECIPE.filename).exists()


def test_pinned_checksum_mismatch_installs_nothing(site):
    server, root = site
    use(dataclasses.replace(RECIPE, sha256="0" * 64))
    with pytest.raises(download.ChecksumMismatchError, match="sha256 mismatch: expected 0000"):
        build.build_codec("hello-test", root=root)
    assert not (root / "hello-test-1.0").exists()
    assert not (root / ".downloads" / RECIPE.filename).exists()
    assert not (root / ".downloads" / download.TRUST_FILE).exists()


def test_pinned_checksum_match(site):
    server, root = site
    use(dataclasses.replace(RECIPE, sha256=build.sha256_file(server.root / RECIPE.filename)))
    assert build.build_codec("hello-test", root=root)["source"]["verified_by"] == "pinned sha256"


def test_unsafe_member_refused(site, tmp_path):
    server, root = site
    files = {**hello_files(), "../../escaped.c": (b"int x;\n", 0o644)}
    server.overrides[RECIPE.filename] = make_archive(tmp_path / "evil.tar.gz", files).read_bytes()
    with pytest.raises(UnsafeArchiveError, match="outside the target"):
        build.build_codec("hello-test", root=root)
    assert not list(tmp_path.rglob("escaped.c"))
    assert build.installed_dir("hello-test", root=root) is None


def test_missing_tools_refused_naming_the_packages(site):
    server, root = site
    use(dataclasses.replace(RECIPE, tools={"make": "make", "rdbench-no-such-tool": "rdbench-tool-pkg"},
                            headers={"rdbench_no_such_header.h": "librdbench-dev", "stdio.h": "libc6-dev"}))
    with pytest.raises(ConfigError) as exc:
        __import__("pipelines").BuildCodec(name="hello-test", codecs_bin=str(root))
    assert str(exc.value).endswith("install them with: apt-get install rdbench-tool-pkg librdbench-dev")
    assert "\n" not in str(exc.value)
    with pytest.raises(build.MissingToolsError):
        build.build_codec("hello-test", root=root)
    assert server.requests == []  # refused before any download


def test_failed_build_shows_the_log_tail(site):
    server, root = site
    server.overrides[RECIPE.filename] = make_archive(
        root.parent / "broken.tar.gz", hello_files(b"int main(void) { return undeclared_thing; }\n")).read_bytes()
    assert not luigi.build([__import__("pipelines").BuildCodec(name="hello-test", codecs_bin=str(root))],
                           local_scheduler=True)
    with pytest.raises(build.BuildError) as exc:
        build.build_codec("hello-test", root=root)
    message = str(exc.value)
    log_path = root / "hello-test-1.0.build.log"
    assert f"failed with exit status 2; last 20 lines of {log_path}" in message
    assert "undeclared_thing" in message
    assert log_path.is_file()
    assert build.installed_dir("hello-test", root=root) is None
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["hello-test-1.0.build.log"]


def test_refusals_and_helpers(site):
    BuildCodec = __import__("pipelines").BuildCodec
    with pytest.raises(ConfigError, match="--name: unknown codec build 'nope'; accepted: aom, bpg, hello-test, vtm, vvenc"):
        BuildCodec(name="nope")
    with pytest.raises(ConfigError, match="--version: vtm: no recipe for version '1.0'; accepted: 23.13"):
        BuildCodec(name="vtm", version="1.0")
    with pytest.raises(ConfigError, match="--jobs"):
        BuildCodec(name="hello-test", jobs=-1)
    assert build.build_command("vtm") == "luigi --module pipelines BuildCodec --name vtm --local-scheduler"
    assert build.installed_dir("vtm", root=site[1]) is None
    assert build.bin_root() == Path("codecs/bin")


def test_recipes_are_pinned_and_complete():
    for recipe in (build.get_recipe(n) for n in ("bpg", "vtm", "vvenc", "aom")):
        assert recipe.url.startswith("https://") and recipe.filename.endswith(".tar.gz")
        assert recipe.sha256 is None or len(recipe.sha256) == 64
        assert recipe.executables and recipe.steps and "cmake" in recipe.tools
        assert all(isinstance(s.argv, tuple) for s in recipe.steps)


def test_buildcodec_parameters_are_documented():
    from pipelines import BuildCodec
    from tests.test_docs import table_under

    documented = [r[0].strip("`") for r in table_under("`BuildCodec` parameters")]
    assert sorted(documented) == sorted("--" + n.replace("_", "-") for n, _ in BuildCodec.get_params())
    assert {n for n in build.RECIPES if n != RECIPE.name} == {"bpg", "vtm", "vvenc", "aom"}
