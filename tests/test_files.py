"""rdbench.files: atomic writes (local and fsspec URLs), digests and the advisory lock."""
from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid

import fsspec
import pytest

from rdbench import files


def _siblings(path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "out.bin"
    files.write_bytes_atomic(path, b"first")
    files.write_bytes_atomic(path, b"second")
    assert path.read_bytes() == b"second"
    assert _siblings(path) == ["out.bin"]


def test_failed_block_keeps_the_old_content(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="writer died"):
        with files.atomic_path(path) as tmp:
            tmp.write_bytes(b"half of the new")
            raise RuntimeError("writer died")
    assert path.read_bytes() == b"old"
    assert _siblings(path) == ["model.pth"]


def test_failed_move_keeps_the_old_content(tmp_path, monkeypatch):
    path = tmp_path / "report.html"
    files.write_text_atomic(path, "old")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        files.write_text_atomic(path, "new")
    assert path.read_text() == "old"
    assert _siblings(path) == ["report.html"]


def test_json_options(tmp_path):
    path = tmp_path / "m.json"
    files.write_json_atomic(path, {"b": "é", "a": 1}, indent=1, sort_keys=False, ensure_ascii=False)
    assert path.read_text(encoding="utf-8") == '{\n "b": "é",\n "a": 1\n}\n'
    files.write_json_atomic(path, {"b": "é", "a": 1})  # the defaults: sorted keys, ASCII
    assert path.read_text() == '{\n  "a": 1,\n  "b": "\\u00e9"\n}\n'


def test_memory_url(monkeypatch):
    root = f"memory://rdbench-test-{uuid.uuid4().hex[:8]}"
    url = f"{root}/run/run.json"
    files.write_json_atomic(url, {"x": 1})
    files.write_json_atomic(url, {"x": 2})
    fs, path = fsspec.core.url_to_fs(url)
    assert json.loads(fs.cat(path)) == {"x": 2}
    assert [p.rsplit("/", 1)[1] for p in fs.ls(path.rsplit("/", 1)[0], detail=False)] == ["run.json"]

    def fail(*args, **kwargs):
        raise OSError("store unavailable")

    monkeypatch.setattr(type(fs), "mv", fail)
    with pytest.raises(OSError, match="store unavailable"):
        files.write_json_atomic(url, {"x": 3})
    assert json.loads(fs.cat(path)) == {"x": 2}
    assert [p.rsplit("/", 1)[1] for p in fs.ls(path.rsplit("/", 1)[0], detail=False)] == ["run.json"]
    fs.rm(root, recursive=True)


def test_digests_in_one_pass(tmp_path):
    data = os.urandom(3 << 20)  # several chunks
    path = tmp_path / "f"
    path.write_bytes(data)
    assert files.file_digests(path, ["md5", "sha256", "md5"]) == {
        "md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}
    assert files.sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_file_lock_excludes_other_threads(tmp_path):
    lock = tmp_path / "locks" / "x.lock"
    entered = threading.Event()

    def other():
        with files.file_lock(lock):
            entered.set()

    with files.file_lock(lock):
        t = threading.Thread(target=other)
        t.start()
        assert not entered.wait(0.2)
    assert entered.wait(5)
    t.join()
