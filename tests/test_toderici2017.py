"""toderici2017: progressive residual-GRU codec — rates, prefix property, entropy stage, weights."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("constriction")

from skimage import data  # noqa: E402

from rdbench.codecs import CodecError, CodecSpecError, get_codec  # noqa: E402
from rdbench.codecs import bitstream  # noqa: E402
from rdbench.codecs.seeds import toderici2017 as td  # noqa: E402
from rdbench.codecs.weights import CheckpointError, WeightsUnavailableError  # noqa: E402

H, W = 64, 96  # multiples of 32: the rate is exactly 0.125 bpp per iteration plus the header


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small tensors on a shared 2-core machine run far faster on one intra-op thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def image():
    return np.ascontiguousarray(data.astronaut()[100 : 100 + H, 200 : 200 + W])


@pytest.fixture(scope="module")
def codec():
    return get_codec("toderici2017:weights=random")


@pytest.fixture(scope="module")
def ladder(codec, image):
    return codec.compress_ladder(image, list(range(1, 17)))


def test_registered_progressive_and_labelled_untrained(codec):
    assert codec.progressive and codec.default_qualities() == [float(k) for k in range(1, 17)]
    assert "UNTRAINED" in codec.version and "seed 0" in codec.version
    assert codec.spec == "toderici2017:weights=random"


def test_one_encode_gives_all_16_rates_at_exactly_an_eighth_bpp_per_iteration(ladder, image):
    assert len(ladder) == 16
    pixels = H * W
    for k, enc in enumerate(ladder, start=1):
        header, strings = bitstream.unpack(enc.data)
        assert header.quality == k and header.shape == (32, td.MODE_RAW)
        assert len(strings) == 1 and len(strings[0]) * 8 == 0.125 * k * pixels  # 32 bits / 16×16 block
        assert enc.estimated_bits == 0.125 * k * pixels
        assert len(enc.data) == len(strings[0]) + bitstream.header_nbytes(enc.data)
        assert bitstream.header_nbytes(enc.data) <= 48


def test_quality_k_payload_is_the_prefix_of_quality_16(ladder, codec, image):
    _, (full,) = bitstream.unpack(ladder[-1].data)
    per_iteration = H * W // 64
    for k, enc in enumerate(ladder, start=1):
        header, (payload,) = bitstream.unpack(enc.data)
        assert payload == full[: k * per_iteration]
        # truncating the 16-iteration stream to k iterations gives the k stream, byte for byte
        truncated = bitstream.pack(
            bitstream.Header(header.codec, float(k), H, W, H, W, header.shape, header.tag), [full[: k * per_iteration]]
        )
        assert truncated == enc.data
    # a separate 3-iteration encode produces the same first 3 iterations
    assert codec.compress(image, 3).data == ladder[2].data


def test_decoding_k_iterations_uses_only_their_bits(ladder, codec, image):
    _, (full,) = bitstream.unpack(ladder[-1].data)
    bits16 = np.unpackbits(np.frombuffer(full, np.uint8)).reshape(16, 32, H // 16, W // 16)
    decoded = codec.decode(ladder[1].data)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    # the decoder fed the first two iterations of the 16-iteration code gives the same image
    np.testing.assert_array_equal(decoded, codec.decode_bits(bits16[:2], H, W))
    # and changing a later iteration's bits does not change it
    altered = bits16.copy()
    altered[2:] ^= 1
    np.testing.assert_array_equal(decoded, codec.decode_bits(altered[:2], H, W))
    np.testing.assert_array_equal(decoded, codec.decode(ladder[1].data))  # deterministic


@pytest.mark.parametrize("entropy", ["off", "on"])
def test_a_ladder_decodes_in_one_pass_of_its_longest_stream(image, entropy):
    """decode_ladder gives every rate exactly what decoding its stream alone gives, running the
    decoder max(k) times instead of Σk; a stream from another encode gets a pass of its own."""
    codec = get_codec(f"toderici2017:weights=random,entropy={entropy}")
    qualities = [2, 5, 16, 5, 1]
    streams = [e.data for e in codec.compress_ladder(image, qualities)]
    other = codec.compress(np.ascontiguousarray(image[::-1]), 3).data  # not a prefix of the others
    alone = [codec.decode(s) for s in streams + [other]]

    decoder = codec._model(16).net.decoder
    calls = []
    hook = decoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        ladder = list(codec.decode_ladder(streams + [other]))
    finally:
        hook.remove()
    assert sorted(i for i, _ in ladder) == list(range(6))
    for i, decoded in ladder:
        np.testing.assert_array_equal(decoded, alone[i])
    assert len(calls) == 16 + 3  # one pass of 16 iterations, one of 3 (not 2 + 5 + 16 + 5 + 1 + 3)
    order = [i for i, _ in ladder]
    assert order.index(4) < order.index(0) < order.index(1) < order.index(2)  # each rate when reached
    ladder[1][1][0, 0] = 1 - ladder[1][1][0, 0]  # equal rates get their own arrays
    assert not np.shares_memory(dict(ladder)[1], dict(ladder)[3])


def test_ladder_decode_times_are_charged_up_to_each_rate(image):
    """Through the harness: each rate's decode_s is the time until its image was ready (cumulative
    in k), and the rows equal those of decoding each stream alone."""
    from rdbench.run.ladder import evaluate_ladder

    codec = get_codec("toderici2017:weights=random")
    rows = list(evaluate_ladder(codec, image, [1, 8, 16], keep_outputs=True))
    assert [r.quality for r in rows] == [1, 8, 16] and all(r.roundtrip_ok for r in rows)
    assert rows[0].decode_s < rows[1].decode_s < rows[2].decode_s
    for r in rows:
        np.testing.assert_array_equal(r.decoded, codec.decode(r.data))


def test_a_damaged_rate_fails_alone_when_the_ladder_pass_cannot_run(image, monkeypatch):
    """A truncated stream stops the one-pass ladder decode; the harness then decodes rate by rate,
    so only that rate becomes a decode failure."""
    from rdbench.codecs.base import Encoded
    from rdbench.run.ladder import Failure, Measurement, evaluate_ladder

    codec = get_codec("toderici2017:weights=random")
    ladder_of = type(codec).compress_ladder

    def damaged(self, img, qualities):
        out = ladder_of(self, img, qualities)
        out[1] = Encoded(out[1].data[:-3], out[1].estimated_bits)
        return out

    monkeypatch.setattr(type(codec), "compress_ladder", damaged)
    results = list(evaluate_ladder(codec, image, [1, 2, 3]))
    assert [type(r) for r in results] == [Measurement, Failure, Measurement]
    assert results[1].stage == "decode" and results[1].quality == 2
    assert "truncated bitstream" in results[1].message


def test_entropy_stage_is_lossless_and_keeps_the_prefix_property(codec, image, ladder):
    _, (full,) = bitstream.unpack(ladder[-1].data)
    bits = np.unpackbits(np.frombuffer(full, np.uint8)).reshape(16, 32, H // 16, W // 16)
    strings, ideal = td.encode_bits(bits)
    assert len(strings) == 16 and all(len(s) % 4 == 0 for s in strings)
    np.testing.assert_array_equal(td.decode_bits(strings, H // 16, W // 16), bits)
    np.testing.assert_array_equal(td.decode_bits(strings[:5], H // 16, W // 16), bits[:5])
    # the range coder spends at most two 32-bit words over the model's information per iteration
    for s, info in zip(strings, ideal):
        assert len(s) * 8 <= info + 64

    ent = get_codec("toderici2017:weights=random,entropy=on")
    encs = ent.compress_ladder(image, [2, 4])
    h2, s2 = bitstream.unpack(encs[0].data)
    _, s4 = bitstream.unpack(encs[1].data)
    assert h2.shape == (32, td.MODE_ENTROPY) and s2 == s4[:2] == strings[:2] and s4 == strings[:4]
    assert encs[1].estimated_bits == pytest.approx(sum(ideal[:4]))
    np.testing.assert_array_equal(ent.decode(encs[0].data), codec.decode(ladder[1].data))
    # any codec instance decodes either layout: the mode is in the stream
    np.testing.assert_array_equal(codec.decode(encs[0].data), codec.decode(ladder[1].data))


def test_entropy_coder_exploits_structure():
    rng = np.random.default_rng(0)
    uniform = rng.integers(0, 2, (4, 32, 6, 8), dtype=np.uint8)
    smooth = np.zeros_like(uniform)  # bits that repeat over iterations and space
    smooth[:, ::3] = 1
    smooth[:, :, :3] ^= 1
    for bits in (uniform, smooth):
        strings, _ = td.encode_bits(bits)
        np.testing.assert_array_equal(td.decode_bits(strings, 6, 8), bits)
    assert sum(map(len, td.encode_bits(uniform)[0])) <= uniform.size / 8 * 1.05 + 16
    assert sum(map(len, td.encode_bits(smooth)[0])) < smooth.size / 8 / 4


def test_odd_sizes_are_padded_to_32_and_cropped_back(codec):
    odd = np.ascontiguousarray(data.chelsea()[:37, :45])
    enc = codec.compress(odd, 1)
    header, (payload,) = bitstream.unpack(enc.data)
    assert (header.padded_height, header.padded_width) == (64, 64)
    assert len(payload) == 64 * 64 // 64
    assert codec.decode(enc.data).shape == odd.shape


def test_errors_are_clear(codec, ladder):
    with pytest.raises(WeightsUnavailableError, match="checkpoint=PATH"):
        get_codec("toderici2017").compress(np.zeros((32, 32, 3), np.uint8), 1)
    assert "no weights" in get_codec("toderici2017").version
    assert not get_codec("toderici2017").weights_available() and codec.weights_available()
    with pytest.raises(CodecSpecError, match="exclude each other"):
        get_codec("toderici2017:weights=random,checkpoint=x.pth")
    for q in (0, 17, 2.5):
        with pytest.raises(ValueError, match="iteration count"):
            codec.compress(np.zeros((32, 32, 3), np.uint8), q)
    with pytest.raises(CodecError, match="other weights"):
        get_codec("toderici2017:weights=random,seed=1").decode(ladder[0].data)
    with pytest.raises(CodecError):
        codec.decode(ladder[0].data[:-1])
    header, (payload,) = bitstream.unpack(ladder[1].data)
    with pytest.raises(CodecError, match="payload"):
        codec.decode(bitstream.pack(header, [payload[:-1]]))


def test_checkpoint_round_trip_and_cell_detection(tmp_path, codec, image, ladder):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = td.ResidualGRUNet("gru")
    path = tmp_path / "toderici.pth"
    torch.save(net.state_dict(), path)
    from_file = get_codec(f"toderici2017:checkpoint={path}")
    assert from_file.weights_available() and "sha256" in from_file.version
    np.testing.assert_array_equal(from_file.encode_bits(image, 2), codec.encode_bits(image, 2))
    enc = from_file.compress(image, 2)
    np.testing.assert_array_equal(from_file.decode(enc.data), codec.decode(ladder[1].data))
    assert td.ResidualGRUNet.cell_of(td.ResidualGRUNet("residual-gru").state_dict()) == "residual-gru"
    bad = tmp_path / "bad.pth"
    torch.save({"encoder.conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="ResidualGRUNet"):
        get_codec(f"toderici2017:checkpoint={bad}").compress(image, 1)


def test_tensorflow_layout_helpers():
    x = torch.arange(2 * 2 * 4 * 3, dtype=torch.float32).view(1, 8, 2, 3)
    y = td.depth_to_space(x, 2)
    for c in range(2):
        for dy in range(2):
            for dx in range(2):
                np.testing.assert_array_equal(y[0, c, dy::2, dx::2], x[0, (dy * 2 + dx) * 2 + c])
    # SAME: a stride-2 3×3 conv on an even size pads one row/column at the bottom/right only
    padded = td.tf_same_pad(torch.ones(1, 1, 4, 6), 3, 2)
    assert padded.shape[-2:] == (5, 7) and padded[0, 0, 0, 0] == 1 and padded[0, 0, -1, -1] == 0
    assert td.tf_same_pad(torch.ones(1, 1, 4, 4), 2, 1).shape[-2:] == (5, 5)
