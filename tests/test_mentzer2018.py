"""mentzer2018: exact fixed-point context model, wavefront decoding, bitstreams, weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rdbench.codecs import CodecError, CodecSpecError, bitstream, get_codec
from rdbench.codecs.seeds import mentzer2018_coder as coder
from rdbench.codecs.seeds.mentzer2018 import Mentzer2018, Mentzer2018Net, ProbClass3D
from rdbench.images import load_image

from .conftest import kodak_dir


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one torch thread is faster (and much faster on a loaded machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def codec() -> Mentzer2018:
    return get_codec("mentzer2018:weights=random")


def _volume(C, H, W, seed=1, smooth_map=False):
    rs = np.random.RandomState(seed)
    symbols = rs.randint(0, 6, (C, H, W))
    if smooth_map:
        nmap = np.clip(np.add.outer(np.arange(H), np.arange(W)) * C // (H + W), 0, C)
    else:
        nmap = rs.randint(0, C + 1, (H, W))
    return symbols, nmap, np.arange(C)[:, None, None] < nmap[None]


def test_fixed_point_logits_are_exact_in_any_order_and_match_the_float_model():
    torch.manual_seed(0)
    pc = ProbClass3D()
    with torch.no_grad():
        for conv in pc.convs():  # non-trivial biases too
            conv.bias.uniform_(-0.5, 0.5)
    centers = np.random.RandomState(0).uniform(-2, 2, 6)
    fp = coder.FixedPointContextModel(pc.layer_arrays(), centers)
    C, H, W = 6, 9, 11
    symbols, _, coded = _volume(C, H, W)
    symbols[~coded] = fp.zero_symbol
    order, _ = coder.coding_order(coder.VolumeGrid(C, H, W), coded)
    parallel = fp.logits(symbols, order, chunk=97, workers=3)  # odd chunks, threads: order must not matter

    seen, flat = [], symbols.reshape(-1)[order]

    def step(logits):
        seen.append(logits.copy())
        return flat[sum(len(s) for s in seen[:-1]) :][: len(logits)]

    decoded = fp.decode((C, H, W), coded, step)
    assert np.array_equal(decoded, symbols)
    assert np.array_equal(np.concatenate(seen), parallel)  # bit-exact, wavefront vs whole volume
    with torch.no_grad():
        values = torch.tensor(centers)[torch.from_numpy(symbols)].float()[None]
        ref = pc(values, torch.tensor(centers[0]).float())[0].permute(1, 2, 3, 0).reshape(-1, 6).numpy()[order]
    assert np.abs(parallel * 2.0**-coder.ACT_FRAC - ref).max() < 1e-3


def test_wavefront_schedule_respects_the_masks():
    """Every symbol in the receptive field of (d, i, j) has a smaller time T = 4d + 2i + j,
    and every activation a layer reads has a smaller T or is at the same position."""

    def minkowski(a, b):
        return {(x[0] + y[0], x[1] + y[1], x[2] + y[2]) for x in a for y in b}

    first, other = set(coder.FIRST_TAPS), set(coder.OTHER_TAPS)
    rf0 = first
    rf1 = minkowski(other, rf0)
    rf2 = minkowski(other, rf1) | rf0  # residual skip from layer 0
    rf3 = minkowski(other, rf2)
    assert all(4 * d + 2 * i + j < 0 for d, i, j in rf3)
    assert {-d for d, _, _ in rf3} == {0, 1, 2, 3, 4} and max(max(abs(i), abs(j)) for _, i, j in rf3) == 4
    assert all(4 * d + 2 * i + j < 0 for d, i, j in other - {(0, 0, 0)})


def test_probability_rows_are_integer_and_deterministic():
    assert coder._EXP[0] == 2.0**40 and abs(coder._EXP[1024] / 2.0**40 - np.exp(-1)) < 1e-9
    logits = np.array([[0, 16384, 3 * 16384, 0, 0, 0], [5, 5, 5, 5, 5, 5]], dtype=np.float64)
    rows = coder.probability_rows(logits)
    assert np.all(rows == np.round(rows)) and rows[0, 2] == 2.0**40 and np.all(rows[1] == 2.0**40)


@pytest.mark.parametrize("smooth", [False, True])
def test_importance_map_round_trip(smooth):
    for C, shape in ((32, (7, 13)), (64, (5, 4)), (1, (3, 3))):
        _, nmap, _ = _volume(C, *shape, seed=C, smooth_map=smooth)
        data, bits = coder.encode_importance_map(nmap, C)
        assert np.array_equal(coder.decode_importance_map(data, shape, C), nmap)
        assert len(data) * 8 >= bits > 0


def test_round_trip_is_bit_exact_on_crops_of_all_kodak_images(codec):
    """24 Kodak crops (odd sizes: padding), both C: decoded symbols and image are the encoder's."""
    images = sorted(kodak_dir().glob("kodim*.png"))
    assert len(images) == 24
    total_payload = total_est = 0.0
    for n, path in enumerate(images):
        image = load_image(path)
        h, w = (41, 59) if n % 2 else (48, 64)
        crop = np.ascontiguousarray(image[100 : 100 + h, 200 : 200 + w])
        quality = 3 if n % 8 == 7 else 1
        analysis = codec.analyse(crop, quality)
        enc = codec.entropy_encode(analysis, quality, crop.shape[:2])
        symbols, nmap = codec.decode_symbols(enc.data)
        assert np.array_equal(symbols, analysis.symbols) and np.array_equal(nmap, analysis.nmap), path.name
        decoded = codec.decode(enc.data)
        expected = codec.synthesize(analysis.symbols, quality)[:h, :w]
        assert decoded.shape == crop.shape and decoded.dtype == np.uint8
        assert np.array_equal(decoded, expected), path.name
        _, strings = bitstream.unpack(enc.data)
        total_payload += sum(len(s) for s in strings)
        total_est += enc.estimated_bits / 8
    # the range coder's output matches the model's cross-entropy, up to its 32-bit word
    # granularity and termination (≤ 8 bytes per string; the container header comes on top)
    assert 0.99 * total_est < total_payload < 1.01 * total_est + 24 * 16


def test_masked_symbols_cost_nothing(codec):
    m = codec.model(1)
    C, H, W = 32, 4, 5
    symbols, _, _ = _volume(C, H, W)
    coded = np.zeros((C, H, W), dtype=bool)
    order, _ = coder.coding_order(coder.VolumeGrid(C, H, W), coded)
    assert len(order) == 0 and coder.encode_symbols(m.context.logits(symbols, order), order) == b""
    decoded = m.context.decode((C, H, W), coded, coder.SymbolDecoder(b""))
    assert np.all(decoded == m.context.zero_symbol)


def test_spec_version_and_errors(codec, tmp_path):
    assert "UNTRAINED" in codec.version and codec.default_qualities() == [1.0, 2.0, 3.0]
    assert codec.weights_available()
    with pytest.raises(CodecSpecError):
        get_codec("mentzer2018:weights=random,checkpoint=x.pth")
    with pytest.raises(ValueError, match="quality"):
        codec.compress(np.zeros((8, 8, 3), np.uint8), 4)
    with pytest.raises(CodecError):
        codec.compress(np.zeros((8, 8), np.uint8), 1)
    assert not get_codec("mentzer2018").weights_available()
    with pytest.raises(CodecError, match="checkpoint=PATH"):
        get_codec("mentzer2018").compress(np.zeros((8, 8, 3), np.uint8), 1)


def test_checkpoint_loading_and_weights_fingerprint(codec, tmp_path):
    image = np.random.RandomState(0).randint(0, 256, (24, 40, 3)).astype(np.uint8)
    net = Mentzer2018Net(32)
    state = {k: v for k, v in net.state_dict().items()}
    state["centers"] = codec.model(1).net.centers.detach().clone()
    for q in (1, 2):
        torch.save(state, tmp_path / f"m-q{q}.pth")
    other = get_codec(f"mentzer2018:checkpoint={tmp_path}/m-q{{quality}}.pth")
    assert "checkpoint" in other.version and other.weights_available([1, 2])
    data = other.encode(image, 2)
    assert other.decode(data).shape == image.shape
    with pytest.raises(CodecError, match="other weights"):
        codec.decode(data)  # random weights ≠ checkpoint weights: refused, not garbage
    torch.save({"foo": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(CodecError):
        get_codec(f"mentzer2018:checkpoint={tmp_path}/bad.pth").encode(image, 1)


def test_corrupt_streams_are_refused(codec):
    image = np.full((16, 16, 3), 128, np.uint8)
    data = codec.encode(image, 1)
    with pytest.raises(CodecError):
        codec.decode(data[:-3])
    with pytest.raises(CodecError):
        codec.decode(b"JUNK" + data[4:])


def test_calibration_and_context_fitting_lower_the_rate():
    from rdbench.codecs.seeds.mentzer2018 import calibrate_batchnorm, fit_context_model, random_net

    net = random_net(8, seed=3)
    rs = np.random.RandomState(0)
    calibrate_batchnorm(net, [torch.from_numpy(rs.uniform(0, 255, (2, 3, 32, 32)).astype(np.float32))])
    assert all(torch.isfinite(m.running_var).all() for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    symbols = np.zeros((8, 12, 12), dtype=np.int64)  # a very predictable volume
    symbols[:, ::2] = 1
    volumes = [(symbols, np.full((12, 12), 8))]
    losses = fit_context_model(net, volumes, 12, batch=2, crop=8, lr=1e-2)
    assert np.isfinite(losses).all() and np.mean(losses[-3:]) < losses[0]
