"""``balle2018`` and ``xiao2019``: the seed's architectures, round trips, checkpoints, refusals.

No weights exist for either (the seed shipped none): the tests use untrained networks
(``weights=random``) and state dicts they save themselves.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("compressai")

from rdbench.codecs import CodecError, CodecSpecError, get_codec, known  # noqa: E402
from rdbench.codecs.bitstream import unpack  # noqa: E402
from rdbench.codecs.seeds import balle2018, xiao2019  # noqa: E402
from rdbench.codecs.weights import CheckpointError  # noqa: E402

NAMES = ("balle2018", "xiao2019")
MODULES = {"balle2018": balle2018, "xiao2019": xiao2019}


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 64×128 crop of a real photograph (skimage's astronaut: the face)."""
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut()[72:136, 160:288])


def _convs(seq):
    return [m for m in seq if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]


def test_architectures_follow_the_seed():
    from compressai.layers import GDN

    balle, xiao = balle2018.network(), xiao2019.network()
    for net in (balle, xiao):
        assert (net.N, net.M) == (192, 192)
        h_a, h_s = _convs(net.h_a), _convs(net.h_s)
        assert [c.kernel_size[0] for c in h_a] == [3, 5, 5] and h_a[-1].bias is None  # no bias on the last
        assert isinstance(net.h_s[-1], torch.nn.Conv2d)  # σ straight from a conv, no ReLU
        assert [c.stride[0] for c in h_s] == [2, 2, 1]
    assert [c.kernel_size[0] for c in _convs(balle.g_a)] == [5, 5, 5, 5]
    g_a, g_s = _convs(xiao.g_a), _convs(xiao.g_s)
    assert [c.kernel_size[0] for c in g_a + g_s] == [3] * 16
    assert [c.stride[0] for c in g_a] == [1, 2] * 4 and [c.stride[0] for c in g_s] == [1, 2] * 4
    assert [type(c) for c in g_s] == [torch.nn.Conv2d, torch.nn.ConvTranspose2d] * 4
    assert g_s[-1].out_channels == 3
    gdn = [m for m in xiao.g_a if isinstance(m, GDN)], [m for m in xiao.g_s if isinstance(m, GDN)]
    assert len(gdn[0]) == 7 and not any(m.inverse for m in gdn[0])
    assert len(gdn[1]) == 7 and all(m.inverse for m in gdn[1])
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for net in (balle, xiao):
            out = net(x)
            assert out["x_hat"].shape == x.shape and set(out["likelihoods"]) == {"y", "z"}


@pytest.mark.parametrize("name", NAMES)
def test_random_weights_round_trip(name, photo):
    codec = get_codec(f"{name}:weights=random")
    assert name in known() and codec.batched and codec.default_qualities() == [float(q) for q in range(1, 9)]
    assert "UNTRAINED" in codec.version and codec.weights_available()
    enc = codec.compress(photo, 4)
    header, strings = unpack(enc.data)
    assert (header.codec, header.height, header.width, header.shape) == (name, 64, 128, (1, 2))
    assert len(strings) == 2 and enc.estimated_bits > 0
    odd = np.ascontiguousarray(photo[:37, :91])
    out, out_odd = codec.decode_batch([enc.data, codec.compress(odd, 1).data])
    assert out.shape == photo.shape and out.dtype == np.uint8 and out_odd.shape == odd.shape
    independent = get_codec(f"{name}:weights=random")  # a second, independent decoder
    assert np.array_equal(independent.decode(enc.data), out)
    assert independent.compress(photo, 4).data == enc.data


@pytest.mark.parametrize("name", NAMES)
def test_saved_state_dict_round_trip(name, tmp_path, photo):
    torch.manual_seed(7)
    net = MODULES[name].network()
    torch.save(net.state_dict(), tmp_path / "q3.pth")
    torch.save({"state_dict": net.state_dict(), "epoch": 3}, tmp_path / "q5.pth")  # a training checkpoint
    codec = get_codec(f"{name}:checkpoint={tmp_path}/q{{quality}}.pth")
    assert codec.weights_available([3, 5]) and not codec.weights_available()
    assert "sha256" in codec.version and "(missing)" in codec.version
    enc = codec.compress(photo, 3)
    out = codec.decode(enc.data)
    assert out.shape == photo.shape and np.array_equal(out, codec.decode(enc.data))
    for q in (3, 5):  # the loaded networks hold the saved weights, whichever way they were saved
        loaded = codec._load(q).net.state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in net.named_parameters())
    # streams name their weights: another checkpoint cannot decode them
    torch.manual_seed(8)
    torch.save(MODULES[name].network().state_dict(), tmp_path / "other3.pth")
    with pytest.raises(CodecError, match="other weights"):
        get_codec(f"{name}:checkpoint={tmp_path}/other{{quality}}.pth").decode(enc.data)


def test_checkpoint_of_the_wrong_architecture_is_refused(tmp_path, photo):
    torch.save(xiao2019.network().state_dict(), tmp_path / "xiao.pth")
    with pytest.raises(CheckpointError, match="does not hold balle2018"):
        get_codec(f"balle2018:checkpoint={tmp_path}/xiao.pth").compress(photo, 1)
    torch.save({"g_a.0.weight": torch.zeros(1)}, tmp_path / "junk.pth")
    with pytest.raises(CheckpointError):
        get_codec(f"xiao2019:checkpoint={tmp_path}/junk.pth").compress(photo, 1)


def test_no_weights_and_bad_specs(photo):
    codec = get_codec("balle2018")
    assert not codec.weights_available()
    with pytest.raises(CheckpointError, match="checkpoint=PATH.*weights=random"):
        codec.compress(photo, 1)
    with pytest.raises(CodecSpecError):
        get_codec("xiao2019:weights=random,checkpoint=x.pth")
    with pytest.raises(ValueError):
        get_codec("xiao2019:weights=random").compress(photo, 9)
    with pytest.raises(CodecError, match="made by codec 'balle2018'"):
        get_codec("xiao2019:weights=random").decode(get_codec("balle2018:weights=random").encode(photo[:16, :16].copy(), 1))
