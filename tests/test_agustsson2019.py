"""agustsson2019: generative compression — bit-exact symbols, real bytes against the fixed rate."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("constriction")

from skimage import data  # noqa: E402

from rdbench.codecs import CodecError, CodecSpecError, get_codec  # noqa: E402
from rdbench.codecs import bitstream  # noqa: E402
from rdbench.codecs.seeds import agustsson2019 as ag  # noqa: E402
from rdbench.codecs.weights import CheckpointError, WeightsUnavailableError  # noqa: E402

H, W = 64, 96


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def image():
    return np.ascontiguousarray(data.astronaut()[100 : 100 + H, 200 : 200 + W])


@pytest.fixture(scope="module")
def codec():
    return get_codec("agustsson2019:weights=random")


def test_registered_and_labelled_untrained(codec):
    assert codec.default_qualities() == [2.0, 4.0, 8.0, 16.0] and not codec.progressive
    assert "UNTRAINED" in codec.version
    assert "noise 2" in get_codec("agustsson2019:weights=random,noise=2").version
    with pytest.raises(CodecSpecError, match="noise"):
        get_codec("agustsson2019:weights=random,noise=-1")
    assert ag.fixed_rate_bpp(8) == pytest.approx(8 * math.log2(5) / 256) == pytest.approx(0.0726, abs=1e-4)


@pytest.mark.parametrize("shape", [(2, 4, 6), (16, 8, 12), (3, 1, 40)])
def test_symbol_coder_is_bit_exact(shape):
    rng = np.random.default_rng(sum(shape))
    for symbols in (
        rng.integers(0, 5, shape),
        rng.choice(5, size=shape, p=[0.01, 0.04, 0.6, 0.3, 0.05]),
        np.full(shape, 2),
    ):
        payload, info = ag.encode_symbols(symbols)
        np.testing.assert_array_equal(ag.decode_symbols(payload, *shape), symbols)
        assert len(payload) * 8 <= info + 64  # the range coder's overhead: at most two words
    uniform, _ = ag.encode_symbols(rng.integers(0, 5, (8, 16, 16)))
    assert len(uniform) * 8 <= 8 * 16 * 16 * math.log2(5) * 1.05 + 64


def test_stream_round_trip_and_rate_per_channel_count(codec, image):
    pixels = H * W
    for c in (2,):  # one model: each random 9-block generator is 160M parameters
        symbols = codec.encode_symbols(image, c)
        assert symbols.shape == (c, H // 16, W // 16) and set(np.unique(symbols)) <= {2, 3, 4}  # final ReLU
        enc = codec.compress(image, c)
        header, (payload,) = bitstream.unpack(enc.data)
        assert header.shape == (c, 0) and header.quality == c
        np.testing.assert_array_equal(ag.decode_symbols(payload, c, H // 16, W // 16), symbols)
        assert len(enc.data) == bitstream.header_nbytes(enc.data) + len(payload)
        assert enc.estimated_bits <= symbols.size * math.log2(5) + 64
        bpp = len(payload) * 8 / pixels
        assert bpp <= ag.fixed_rate_bpp(c) * 1.1 + 64 / pixels
        out = codec.decode(enc.data)
        assert out.shape == image.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, codec.decode(enc.data))
        np.testing.assert_array_equal(out, codec.decode_symbols(symbols, H, W, c))


def test_odd_sizes_are_padded_and_cropped(codec):
    odd = np.ascontiguousarray(data.chelsea()[:21, :50])
    enc = codec.compress(odd, 2)
    header, _ = bitstream.unpack(enc.data)
    assert (header.padded_height, header.padded_width) == (32, 64)
    assert codec.decode(enc.data).shape == odd.shape


def test_checkpoints_with_quality_substitution(tmp_path, image, codec):
    net = ag.GenerativeCompressionNet(2, noise=1, blocks=1)
    torch.save(net.state_dict(), tmp_path / "C2.pth")
    from_file = get_codec(f"agustsson2019:checkpoint={tmp_path}/C{{quality}}.pth")
    assert "C2.pth sha256" in from_file.version and "C4.pth (missing)" in from_file.version
    assert from_file.weights_available([2]) and not from_file.weights_available()
    enc = from_file.compress(image, 2)
    assert bitstream.unpack(enc.data)[0].shape == (2, 1)  # C and the noise channels
    out = from_file.decode(enc.data)
    assert out.shape == image.shape
    np.testing.assert_array_equal(out, from_file.decode(enc.data))  # fixed-seed noise
    with pytest.raises(CheckpointError, match="not found"):
        from_file.compress(image, 4)
    torch.save(net.state_dict(), tmp_path / "C8.pth")
    with pytest.raises(CheckpointError, match="C=2 model"):
        from_file.compress(image, 8)
    with pytest.raises(CodecError, match="other weights"):
        codec.decode(enc.data)


def test_errors_are_clear(codec, image):
    with pytest.raises(WeightsUnavailableError, match="checkpoint=PATH"):
        get_codec("agustsson2019").compress(image, 2)
    with pytest.raises(CodecSpecError, match="exclude each other"):
        get_codec("agustsson2019:weights=random,checkpoint=x.pth")
    for q in (3, 32, 2.5):
        with pytest.raises(ValueError, match="bottleneck channels"):
            codec.compress(image, q)
    with pytest.raises(CodecError):
        codec.decode(b"RDBS")


def test_tensorflow_same_layers():
    down = ag.DownConv(1, 1)
    torch.nn.init.ones_(down.weight)
    torch.nn.init.zeros_(down.bias)
    y = down(torch.ones(1, 1, 4, 4))
    assert y.shape[-2:] == (2, 2) and y[0, 0, 0, 0] == 9 and y[0, 0, 1, 1] == 4  # padding bottom/right only
    up = ag.UpConv(1, 1)
    x = torch.randn(1, 1, 3, 5)
    full = torch.nn.functional.conv_transpose2d(x, up.weight, up.bias, stride=2)
    torch.testing.assert_close(up(x), full[..., :6, :10])
