"""The codec interface, spec parsing, the registry, the default set, and the six classical codecs."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rdbench.codecs import (
    BUILTIN,
    CLASSICAL,
    Codec,
    CodecSpecError,
    available,
    family,
    get_codec,
    parse_spec,
    register,
)
from rdbench.codecs.defaults import default_codec_specs
from rdbench.datasets import get_dataset
from rdbench.images import load_image


@pytest.fixture(scope="module")
def sample_images():
    return {ref.image_id: load_image(ref.path) for ref in get_dataset("sample").images}


@pytest.fixture(scope="module")
def odd_image(sample_images):
    return np.ascontiguousarray(sample_images["astronaut"][100:161, 200:297])  # 61×97


def test_every_classical_codec_is_available():
    assert set(CLASSICAL) <= set(available())


@pytest.mark.parametrize("name", CLASSICAL)
def test_codec_round_trips_sample_and_odd_sizes(name, sample_images, odd_image):
    codec = get_codec(name)
    assert name.split("-")[0] in codec.version.lower() or codec.version  # names its library
    ladder = codec.default_qualities()
    assert len(ladder) >= 5 and ladder == sorted(ladder)
    q = ladder[len(ladder) // 2]
    for image in list(sample_images.values()) + [odd_image]:
        data = codec.encode(image, q)
        assert isinstance(data, bytes) and len(data) > 0
        out = codec.decode(data)
        assert out.shape == image.shape and out.dtype == np.uint8
        mse = np.mean((out.astype(float) - image) ** 2)
        assert 0 < mse < 400, f"{name} reconstruction too far off (mse {mse})"


@pytest.mark.parametrize("name", CLASSICAL)
def test_ladder_spans_useful_rates_and_rate_grows_with_quality(name, sample_images):
    codec = get_codec(name)
    image = sample_images["astronaut"]
    bpps = [len(codec.encode(image, q)) * 8 / image.shape[0] / image.shape[1] for q in codec.default_qualities()]
    assert bpps[0] < 0.35 and bpps[-1] > 1.5, bpps
    assert all(b2 > b1 for b1, b2 in zip(bpps, bpps[1:])), bpps


def test_bitstreams_are_the_formats_own_files(sample_images):
    image = sample_images["chelsea"]
    magic = {"jpeg": b"\xff\xd8", "webp": b"RIFF", "jpeg2000": b"\xff\x4f\xff\x51", "jpegxl": b"\xff\x0a"}
    for name, prefix in magic.items():
        assert get_codec(name).encode(image, get_codec(name).default_qualities()[2]).startswith(prefix), name
    assert b"ftypavif" in get_codec("avif").encode(image, 50)[:32]
    assert b"ftypheic" in get_codec("heic").encode(image, 50)[:32]


def test_spec_parameters_are_validated_with_the_accepted_keys():
    assert get_codec("jpeg:subsampling=444").spec == "jpeg:subsampling=444"
    assert get_codec("jpeg:subsampling=420").spec == "jpeg"
    with pytest.raises(CodecSpecError, match=r"accepted: subsampling \(default '420'\)"):
        get_codec("jpeg:qualtiy=3")
    with pytest.raises(CodecSpecError, match="is not one of: 420, 444"):
        get_codec("jpeg:subsampling=411")
    with pytest.raises(CodecSpecError, match="expected key=value"):
        get_codec("jpeg:444")


def test_unknown_codec_lists_the_known_ones():
    with pytest.raises(CodecSpecError) as info:
        get_codec("jpg")
    assert "unknown codec 'jpg'" in str(info.value) and "jpeg, " in str(info.value)


def test_parse_spec_keeps_paths_with_colons_and_equals():
    assert parse_spec("x:checkpoint=s3://b/q{quality}.pth,metric=mse") == (
        "x", {"checkpoint": "s3://b/q{quality}.pth", "metric": "mse"})


def test_444_subsampling_costs_more_bits(sample_images):
    image = sample_images["coffee"]
    assert len(get_codec("jpeg:subsampling=444").encode(image, 75)) > len(get_codec("jpeg").encode(image, 75))


def test_runtime_registration_and_entry_points(tmp_path, monkeypatch):
    class Identity(Codec):
        name = "identity-test"
        DEFAULT_QUALITIES = (1,)
        version = "identity 1"

        def encode(self, image, quality):
            return image.shape[0].to_bytes(4, "big") + image.shape[1].to_bytes(4, "big") + image.tobytes()

        def decode(self, data):
            h, w = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
            return np.frombuffer(data[8:], np.uint8).reshape(h, w, 3)

    register("identity-test", Identity)
    image = np.zeros((3, 5, 3), np.uint8)
    assert np.array_equal(get_codec("identity-test").decode(get_codec("identity-test").encode(image, 1)), image)

    # A third-party distribution declaring an entry point in the rdbench.codecs group.
    pkg = tmp_path / "thirdparty_codec.py"
    pkg.write_text(textwrap.dedent("""
        from rdbench.codecs.pillow_codecs import JPEG
        class Mine(JPEG):
            name = "mine"
    """))
    dist = tmp_path / "thirdparty_codec-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-codec\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[rdbench.codecs]\nmine = thirdparty_codec:Mine\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "mine" in available()
    assert get_codec("mine").name == "mine"
    # families come from the classes: inherited, undeclared, unknown
    assert family("mine:subsampling=444") == "classical"
    assert family("identity-test") is None and family("no-such-codec") is None


def test_builtin_table_families_are_the_classes_own():
    assert CLASSICAL == ("jpeg", "webp", "jpeg2000", "avif", "heic", "jpegxl")
    for name, (fam, _) in BUILTIN.items():
        codec = get_codec(name)
        assert codec.family == fam == family(f"{name}:x=1"), name


def test_family_imports_no_codec_library():
    """``import rdbench.codecs``, family() of every built-in and the reports' plot styles import
    neither torch nor a codec library."""
    code = (
        "import sys, rdbench.codecs as c; "
        "from rdbench.codecs.base import EXTERNAL; "
        "assert [c.family(n) for n in c.BUILTIN].count('classical') == 6 + len(EXTERNAL); "
        "from rdbench.reports.plots import codec_styles; codec_styles(list(c.BUILTIN)); "
        "print(sorted(m for m in ('torch', 'compressai', 'pillow_heif', 'imagecodecs') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_default_set_is_read_off_the_codec_classes(tmp_path, monkeypatch):
    """The classical codecs, and zoo codecs only with cached weights; rdbench-small only when named."""
    monkeypatch.setenv("RDBENCH_WEIGHTS_ROOT", str(tmp_path / "weights"))
    specs, left_out = default_codec_specs()
    assert specs == list(CLASSICAL)
    assert set(left_out) == {name for name in BUILTIN if get_codec(name).in_default_set} - set(specs)
    assert "bmshj2018-hyperprior" in left_out and "balle2018" not in left_out
    assert "rdbench-small" not in specs and "rdbench-small" not in left_out


def test_plot_styles_follow_the_family():
    from rdbench.reports.plots import codec_styles

    styles = codec_styles(["jpeg:subsampling=444", "mbt2018-mean", "rdbench-small", "not-installed-here"])
    assert styles["jpeg:subsampling=444"]["linestyle"] == "--"
    assert {styles[s]["linestyle"] for s in ("mbt2018-mean", "rdbench-small", "not-installed-here")} == {"-"}
