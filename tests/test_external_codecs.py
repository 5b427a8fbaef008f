"""External-binary codecs (bpg, vtm, vvenc, aom): locating tools, scratch folders, failures, round trips.

The mechanics (lookup order, build hint, stderr in the error, timeout, scratch cleanup) run
everywhere with small fake executables the tests write. The round trips run only where a codec's
tools are installed (``codecs/bin/``, ``$RDBENCH_<NAME>_DIR`` or PATH; aomenc from Debian's
aom-tools) and skip with the reason otherwise. Fastest settings where a codec has them.
"""
from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from rdbench.codecs import CodecError, CodecSpecError, QualityError, get_codec
from rdbench.codecs.base import BUILTIN, CLASSICAL, EXTERNAL
from rdbench.codecs.external import (
    ToolFailedError,
    ToolNotFoundError,
    read_y4m,
    rgb_to_ycbcr,
    rgb_to_ycbcr420,
    ycbcr420_to_rgb,
    ycbcr_to_rgb,
)
from rdbench.images import load_image
from rdbench.metrics.psnr import psnr

KODAK = Path(__file__).resolve().parents[2] / "shared" / "kodak" / "kodim23.png"
SLEEP = shutil.which("sleep") or "/bin/sleep"


@pytest.fixture(scope="module")
def big() -> np.ndarray:
    """A 768×512 photograph (Kodak when present, else a sample photo tiled to that size)."""
    if KODAK.is_file():
        return load_image(KODAK)
    from rdbench.datasets import get_dataset

    image = load_image(get_dataset("sample").images[0].path)
    reps = (-(-512 // image.shape[0]), -(-768 // image.shape[1]), 1)
    return np.ascontiguousarray(np.tile(image, reps)[:512, :768])


@pytest.fixture(scope="module")
def odd(big) -> np.ndarray:
    return np.ascontiguousarray(big[200:261, 300:397])  # 61×97


def _script(folder: Path, name: str, body: str) -> Path:
    """An executable shell script ``folder/name``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture()
def isolated(monkeypatch, tmp_path):
    """No tool found anywhere: empty PATH lookups, no env folders, an empty codecs bin root."""
    for name in ("BPG", "VTM", "VVENC", "AOM"):
        monkeypatch.delenv(f"RDBENCH_{name}_DIR", raising=False)
    monkeypatch.setenv("RDBENCH_CODECS_BIN", str(tmp_path / "bin-root"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    return tmp_path


# -- the registry and parameters ----------------------------------------------------------------


def test_registry_declares_the_anchors_outside_the_default_set():
    for name in EXTERNAL:
        assert BUILTIN[name][0] == "classical" and name not in CLASSICAL
        codec = get_codec(name)
        assert codec.family == "classical" and not codec.in_default_set
        assert codec.default_qualities() == sorted(codec.default_qualities())
        for q in codec.default_qualities():
            codec.check_quality(q)


def test_quality_maps_to_compressai_quantisers():
    vtm, aom = get_codec("vtm"), get_codec("aom")
    assert [vtm.qp(q) for q in vtm.default_qualities()] == [47, 42, 37, 32, 27, 22, 17, 12]
    assert [aom.qp(q) for q in aom.default_qualities()] == list(range(62, 6, -5))
    assert get_codec("bpg").qp(51) == 0 and vtm.qp(-12) == 63
    with pytest.raises(QualityError, match="not an integer"):
        vtm.check_quality(20.5)
    with pytest.raises(QualityError, match="outside"):
        get_codec("bpg").check_quality(52)


def test_qp_parameter_pins_one_point():
    codec = get_codec("vtm:qp=32")
    assert codec.default_qualities() == [19.0] and codec.qp(19) == 32 and codec.spec == "vtm:qp=32"
    with pytest.raises(QualityError, match="qp 32 only"):
        codec.check_quality(24)
    assert get_codec("aom:cq_level=40").default_qualities() == [23.0]
    with pytest.raises(CodecSpecError, match="qp=70 is outside 0–63"):
        get_codec("vtm:qp=70")
    with pytest.raises(CodecSpecError, match="timeout=0 is not allowed"):
        get_codec("bpg:timeout=0")
    with pytest.raises(CodecSpecError, match="is not a folder"):
        get_codec("bpg:bindir=/no/such/folder")


def test_ycbcr_conversion_is_compressais(big):
    """Bit-exact with compressai.transforms.functional (float32, truncated), where it is installed."""
    torch = pytest.importorskip("torch")
    functional = pytest.importorskip("compressai.transforms.functional")
    rgb = torch.from_numpy(big.transpose(2, 0, 1).copy()).float() / 255
    ref = (np.clip(functional.rgb2ycbcr(rgb).numpy(), 0, 1) * 255).astype(np.uint8)
    assert np.array_equal(rgb_to_ycbcr(big), ref)
    back = functional.ycbcr2rgb(torch.from_numpy(ref.astype(np.float32) / 255)).numpy()
    assert np.array_equal(ycbcr_to_rgb(ref), (back.clip(0, 1).transpose(1, 2, 0) * 255.0).astype(np.uint8))
    assert psnr(big, ycbcr_to_rgb(rgb_to_ycbcr(big, "nearest"), "nearest")) > psnr(big, ycbcr_to_rgb(ref))


# -- locating tools and failing loudly ------------------------------------------------------------


def test_missing_tool_names_where_it_looked_and_the_build_command(isolated):
    codec = get_codec("vtm")
    assert not codec.weights_available() and codec.version == "VTM (not found)"
    with pytest.raises(ToolNotFoundError) as info:
        codec.check_runnable()
    message = str(info.value)
    assert "\n" not in message
    for part in ("EncoderApp", "$RDBENCH_VTM_DIR (unset)", "vtm-<version>", "PATH",
                 "BuildCodec --name vtm", "vtm:bindir=FOLDER"):
        assert part in message, part
    assert isinstance(info.value, CodecSpecError) and isinstance(info.value, CodecError)
    with pytest.raises(ToolNotFoundError, match="BuildCodec --name vtm"):
        codec.encode(np.zeros((8, 8, 3), np.uint8), 20)


def test_lookup_order_bindir_env_path(isolated, monkeypatch):
    env_dir, path_dir, bin_dir = isolated / "env", isolated / "empty-path", isolated / "given"
    for folder in (env_dir, path_dir, bin_dir):
        for tool in ("bpgenc", "bpgdec"):
            _script(folder, tool, f"echo 'BPG Image Encoder version {folder.name}'")
    assert get_codec("bpg").tool_path("encoder") == (path_dir / "bpgenc").resolve()
    monkeypatch.setenv("RDBENCH_BPG_DIR", str(env_dir))
    codec = get_codec("bpg")
    assert codec.tool_path("encoder") == (env_dir / "bpgenc").resolve()
    assert codec.version.startswith("BPG env (bpgenc sha256 ") and "bpgdec sha256" in codec.version
    assert get_codec(f"bpg:bindir={bin_dir}").tool_path("decoder") == (bin_dir / "bpgdec").resolve()
    (bin_dir / "bpgdec").unlink()  # bindir= is the only place looked for the codec's own tools
    with pytest.raises(ToolNotFoundError, match="bindir="):
        get_codec(f"bpg:bindir={bin_dir}").check_runnable()


def test_vtm_cfg_is_found_beside_the_encoder_or_in_the_source_tree(isolated):
    tree = isolated / "VVCSoftware_VTM"
    for tool in ("EncoderAppStatic", "DecoderAppStatic"):
        _script(tree / "bin", tool, "true")
    with pytest.raises(ToolNotFoundError, match="encoder_intra_vtm.cfg not found"):
        get_codec(f"vtm:bindir={tree / 'bin'}").check_runnable()
    (tree / "cfg").mkdir()
    (tree / "cfg" / "encoder_intra_vtm.cfg").write_text("QP : 32\n")
    codec = get_codec(f"vtm:bindir={tree / 'bin'}")
    assert codec.tool_path("cfg") == (tree / "cfg" / "encoder_intra_vtm.cfg").resolve()


def test_tool_failure_carries_its_stderr_and_scratch_is_removed(isolated):
    folder, scratch = isolated / "fake", isolated / "scratch"
    scratch.mkdir()
    _script(folder, "aomenc", "echo 'Error: invalid cq-level for this build' >&2; exit 3")
    _script(folder, "aomdec", "exit 0")
    codec = get_codec(f"aom:bindir={folder},scratch={scratch}")
    with pytest.raises(ToolFailedError, match=r"aomenc exited with status 3: Error: invalid cq-level for this build"):
        codec.encode(np.zeros((16, 16, 3), np.uint8), 20)
    with pytest.raises(ToolFailedError, match="exited 0 but wrote no"):  # aomdec "succeeds" without output
        codec.decode(b"\0" * 32)
    assert list(scratch.iterdir()) == []


def test_timeout_kills_the_tool(isolated):
    folder, scratch = isolated / "slow", isolated / "scratch"
    scratch.mkdir()
    _script(folder, "bpgenc", f"echo started >&2; exec {SLEEP} 30")
    _script(folder, "bpgdec", "exit 0")
    codec = get_codec(f"bpg:bindir={folder},scratch={scratch},timeout=0.5")
    with pytest.raises(ToolFailedError, match=r"bpgenc timed out after 0.5 s \(timeout=0.5\)"):
        codec.encode(np.zeros((16, 16, 3), np.uint8), 20)
    assert list(scratch.iterdir()) == []


def test_read_y4m_checks_the_format(tmp_path):
    good = tmp_path / "a.y4m"
    good.write_bytes(b"YUV4MPEG2 W3 H2 F1:1 Ip C444\nFRAME\n" + bytes(range(18)))
    fmt, luma, chroma = read_y4m(good, "t")
    assert fmt == "444" and luma.shape == (2, 3) and chroma.shape == (2, 2, 3) and chroma[1, 1, 2] == 17
    (tmp_path / "b.y4m").write_bytes(b"YUV4MPEG2 W3 H2 C420jpeg\nFRAME\n" + bytes(10))
    fmt, luma, chroma = read_y4m(tmp_path / "b.y4m", "t")  # odd width: chroma 2×1
    assert fmt == "420" and luma.shape == (2, 3) and chroma.shape == (2, 1, 2)
    (tmp_path / "c.y4m").write_bytes(b"YUV4MPEG2 W3 H2 C422\nFRAME\n" + bytes(12))
    with pytest.raises(CodecError, match="expected C444 or C420"):
        read_y4m(tmp_path / "c.y4m", "t")
    (tmp_path / "d.y4m").write_bytes(b"YUV4MPEG2 W3 H2 C444\nFRAME\n" + bytes(17))
    with pytest.raises(CodecError, match="truncated"):
        read_y4m(tmp_path / "d.y4m", "t")


def test_420_conversion_keeps_flat_colours_and_smooth_images(big):
    flat = np.full((6, 8, 3), (200, 40, 90), np.uint8)
    assert np.abs(ycbcr420_to_rgb(*rgb_to_ycbcr420(flat, "nearest"), "nearest").astype(int) - flat).max() <= 1
    luma, chroma = rgb_to_ycbcr420(big)
    assert luma.shape == (512, 768) and chroma.shape == (2, 256, 384)
    assert 30 < psnr(big, ycbcr420_to_rgb(luma, chroma)) < psnr(big, ycbcr_to_rgb(rgb_to_ycbcr(big)))


# -- round trips where the tools are installed ---------------------------------------------------

FAST = {"bpg": "bpg", "aom": "aom:cpu_used=6", "vtm": "vtm", "vvenc": "vvenc:preset=faster"}


def _installed(spec: str):
    name = spec.split(":")[0]
    if name not in BUILTIN:
        pytest.skip(f"{name} is not a codec of this checkout")
    codec = get_codec(spec)
    try:
        codec.check_runnable()
    except ToolNotFoundError as exc:
        pytest.skip(str(exc))
    return codec


@pytest.mark.parametrize("name", ["bpg", "aom", "vtm", "vvenc"])
def test_round_trip_odd_size(name, odd, tmp_path):
    """97×61 (vvenc, 4:2:0, refuses odd sizes and codes 98×62)."""
    codec = _installed(f"{FAST[name]},scratch={tmp_path}" if ":" in FAST[name] else f"{name}:scratch={tmp_path}")
    if name == "vvenc":
        with pytest.raises(CodecError, match="cannot crop to an odd size; this image is 97×61"):
            codec.encode(odd, 20)
        odd = np.ascontiguousarray(np.pad(odd, ((0, 1), (0, 1), (0, 0)), mode="edge"))
    assert codec.version.split()[1][0].isdigit(), codec.version  # the tool's own version number
    low, high = codec.default_qualities()[1], codec.default_qualities()[-2]
    results = []
    for q in (low, high):
        data = codec.encode(odd, q)
        decoded = codec.decode(data)
        assert decoded.shape == odd.shape and decoded.dtype == np.uint8
        assert np.array_equal(codec.decode(data), decoded)
        results.append((len(data), psnr(odd, decoded)))
    (bytes_low, psnr_low), (bytes_high, psnr_high) = results
    assert bytes_high > bytes_low and psnr_high > psnr_low + 3, results
    assert 20 < psnr_low < 45 and psnr_high > 32, results
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["bpg", "aom", "vtm", "vvenc"])
def test_round_trip_kodak_size(name, big):
    """768×512 at one mid quality (VTM takes ~20 s there at QP 37: it runs only where VTM is installed)."""
    codec = _installed(FAST[name])
    q = codec.default_qualities()[2]
    data = codec.encode(big, q)
    decoded = codec.decode(data)
    assert decoded.shape == big.shape
    bpp = len(data) * 8 / (big.shape[0] * big.shape[1])
    assert 0.05 < bpp < 2.5 and 28 < psnr(big, decoded) < 45, (bpp, psnr(big, decoded))


def test_run_refuses_a_missing_tool_up_front(isolated):
    """A run naming a codec whose tool is missing is refused by validation, in one line."""
    from rdbench.run.config import ConfigError, RunConfig

    config = RunConfig(datasets=("sample",), codecs=("bpg",), output_root=str(isolated / "out"))
    if "check_runnable" not in Path(sys.modules["rdbench.run.config"].__file__).read_text():
        pytest.skip("rdbench/run/config.py does not call Codec.check_runnable yet")
    with pytest.raises(ConfigError, match=r"^--codecs: codec 'bpg': bpgenc \(encoder\) not found.*BuildCodec"):
        config.validate()
    assert not os.path.exists(isolated / "out")
