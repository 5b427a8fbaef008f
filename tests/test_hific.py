"""The ``hific`` codec: the published checkpoints' layout, safe loading, real bitstreams.

The published files (2 GB each) are not here; :mod:`hific_checkpoint` writes files with exactly
their layout (keys, shapes, the args dict, optimizer and discriminator entries) and random values.
The full-size synthetic ``low`` checkpoint is written and loaded once for the module (~740 MB in
a temporary folder); the refusal tests use files whose tensors share one small storage.
"""
from __future__ import annotations

import argparse

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("compressai")

try:
    from tests import hific_checkpoint as hc
except ImportError:  # tests/ is not a package here
    import hific_checkpoint as hc

from rdbench.codecs import get_codec, known  # noqa: E402
from rdbench.codecs.bitstream import unpack  # noqa: E402
from rdbench.codecs.seeds import hific  # noqa: E402
from rdbench.codecs.weights import CheckpointError  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("RDBENCH_WEIGHTS_ROOT", str(tmp_path / "weights"))
    monkeypatch.setenv("RDBENCH_WEIGHTS_DOWNLOAD", "0")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 128×128 crop of a real photograph (skimage's astronaut: face, helmet, flag)."""
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut()[40:168, 160:288])


@pytest.fixture(scope="module")
def published_low(tmp_path_factory):
    """A codec loaded from a full-size synthetic ``hific_low.pt`` (built once per module)."""
    folder = tmp_path_factory.mktemp("hific")
    hc.write_checkpoint(folder / "hific_low.pt", "low", seed=1)
    codec = get_codec(f"hific:checkpoint={folder}/hific_{{quality}}.pt")
    codec._load(1)
    yield codec, folder
    codec._nets.clear()


# -- the module tree against the published layout (no weights needed) ---------------------------------


@pytest.mark.parametrize("channel_norm", [True, False])
def test_module_tree_has_the_published_keys_and_shapes(channel_norm):
    cfg = hific.HiFiCConfig(use_channel_norm=channel_norm)
    mine = {k: tuple(v.shape) for k, v in hific.build_model(cfg, device="meta").state_dict().items()}
    published = dict(hc.published_layout(channel_norm=channel_norm, discriminator=False))
    assert mine == published


def test_parameter_counts():
    counts = hific.parameter_counts()
    assert counts == {"Encoder": 7_423_420, "Generator": 156_774_683, "Hyperprior": 17_277_560, "total": 181_475_663}
    assert hc.count(hc.discriminator_layout()) == 2_801_485  # the published ~184.3 M include it
    assert counts["total"] == hc.count(hc.published_layout(discriminator=False))


def test_registry_spec_and_quality_file_names(tmp_path):
    assert "hific" in known()
    codec = get_codec("hific:checkpoint=codecs/hific/hific_{quality}.pt")
    assert codec.default_qualities() == [1.0, 2.0, 3.0] and codec.batched
    assert [codec._checkpoint_path(q) for q in (1, 2, 3)] == [f"codecs/hific/hific_{t}.pt" for t in ("low", "med", "hi")]
    assert get_codec("hific:checkpoint=x/{regime}-{index}.pt")._checkpoint_path(3) == "x/high-3.pt"
    assert "UNTRAINED" in get_codec("hific:weights=random,seed=2").version
    with pytest.raises(ValueError):
        codec.compress(np.zeros((16, 16, 3), np.uint8), 4)


def test_published_weights_are_looked_up_under_the_weights_root(tmp_path, photo):
    codec = get_codec(f"hific:weights_root={tmp_path}")
    assert not codec.weights_available()
    assert f"{tmp_path}/hific/hific_{{low,med,hi}}.pt" in codec.version and "4026003" in codec.version
    with pytest.raises(CheckpointError, match=r"zenodo\.org/record/4026003.*hific_med\.pt|hific_med\.pt.*zenodo"):
        codec.compress(photo, 2)


# -- loading the synthetic published checkpoint and coding a photograph -----------------------------


def test_synthetic_published_checkpoint_round_trip(published_low, photo):
    from collections import defaultdict

    codec, folder = published_low
    assert codec.weights_available([1]) and not codec.weights_available()
    loaded = codec._load(1)
    assert loaded.net.config == hific.HiFiCConfig(normalize_input_image=True)  # rebuilt from its args
    assert "sha256" in loaded.label and "regime 'low'" in loaded.label

    codec.stage_times = defaultdict(float)
    try:
        enc = codec.compress(photo, 1)
        odd = np.ascontiguousarray(photo[:45, :70])  # not a multiple of 16; latent padded to 8×8
        enc_odd = codec.compress(odd, 1)
        out, out_odd = codec.decode_batch([enc.data, enc_odd.data])
        assert set(codec.stage_times) == {"analysis", "hyperprior", "entropy_coding", "synthesis"}
    finally:
        codec.stage_times = None
    header, strings = unpack(enc.data)
    assert (header.codec, header.quality, header.height, header.width) == ("hific", 1.0, 128, 128)
    assert header.shape == (2, 2) and len(strings) == 2 and all(strings)  # z: 128/64, two strings
    assert enc.estimated_bits > 0 and len(enc.data) * 8 < 24 * 128 * 128
    assert out.shape == photo.shape and out.dtype == np.uint8 and out_odd.shape == odd.shape
    assert out.std() > 0  # not a constant image
    assert np.array_equal(codec.decode(enc.data), out)  # a second decode of the same bytes agrees
    assert codec.compress(photo, 1).data == enc.data  # encoding is deterministic too


# -- refusals ---------------------------------------------------------------------------------------


def test_missing_key_is_named(tmp_path, photo):
    key = "Generator.resblock_3.norm2.gamma"
    hc.write_checkpoint(tmp_path / "hific_low.pt", compact=True, drop=key)
    codec = get_codec(f"hific:checkpoint={tmp_path}/hific_{{quality}}.pt")
    with pytest.raises(CheckpointError, match=rf"missing key\(s\): {key}"):
        codec.compress(photo, 1)


def test_wrong_shape_is_named(tmp_path):
    key = "Hyperprior.synthesis_std.conv3.bias"
    path = hc.write_checkpoint(tmp_path / "bad.pt", compact=True, reshape=key)
    state_dict, config, _ = hific.load_checkpoint(path)
    with pytest.raises(CheckpointError, match=rf"wrong shape\(s\): {key} \(expected \[220\], found \[221\]\)"):
        hific.model_from_checkpoint(state_dict, config, source=str(path))


def test_unexpected_pickled_type_is_refused_and_named(tmp_path, photo):
    hc.write_checkpoint(tmp_path / "hific_low.pt", compact=True, args_as="struct")
    codec = get_codec(f"hific:checkpoint={tmp_path}/hific_{{quality}}.pt")
    with pytest.raises(CheckpointError, match=r"pickled object of type \S*hific_checkpoint\.Struct"):
        codec.compress(photo, 1)


def test_unexpected_keys_and_unsupported_args_are_refused(tmp_path):
    path = hc.write_checkpoint(tmp_path / "a.pt", compact=True)
    state_dict, config, _ = hific.load_checkpoint(path)
    state_dict["Encoder.extra.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\): Encoder\.extra\.weight"):
        hific.model_from_checkpoint(state_dict, config)
    with pytest.raises(CheckpointError, match="use_latent_mixture_model"):
        hific.config_from_args({"use_latent_mixture_model": True})
    with pytest.raises(CheckpointError, match="likelihood_type"):
        hific.config_from_args({"likelihood_type": "laplace"})


def test_namespace_args_and_a_variant_architecture_round_trip(tmp_path, photo):
    """args as an argparse.Namespace (allowed, nothing else); the architecture comes from the args:
    16 latent channels, one residual block, instance norm, logistic likelihood, DataParallel keys."""
    path = hc.write_checkpoint(tmp_path / "hific_med.pt", "med", compact=True, args_as="namespace",
                               latent_channels=16, n_residual_blocks=1, channel_norm=False)
    obj = torch.load(path, weights_only=False)
    assert isinstance(obj["args"], argparse.Namespace)
    obj["model_state_dict"] = {f"module.{k}": v for k, v in obj["model_state_dict"].items()}
    torch.save(obj, path)
    codec = get_codec(f"hific:checkpoint={tmp_path}/hific_{{quality}}.pt")
    small = np.ascontiguousarray(photo[:64, :96])
    enc = codec.compress(small, 2)
    cfg = codec._load(2).net.config
    assert cfg == hific.HiFiCConfig(16, 1, False, "logistic", False)
    out = codec.decode(enc.data)
    assert out.shape == small.shape and np.array_equal(out, codec.decode(enc.data))
