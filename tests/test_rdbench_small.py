"""rdbench-small: gain folding is exact, checkpoints load every way, the shipped model codes real photos."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rdbench.codecs import bitstream
from rdbench.codecs.base import CodecError
from rdbench.codecs.rdbench_small import LMBDAS, RDBenchSmall, fold, make_model, num_levels, shipped_weights
from rdbench.codecs.weights import CheckpointError
from rdbench.metrics import psnr


@pytest.fixture(scope="module")
def gained_state():
    """A small gained network with non-trivial gains and trained-looking CDF tables."""
    torch.manual_seed(0)
    net = make_model(8, 12, (0.001, 0.005, 0.02, 0.1))
    with torch.no_grad():
        net.log_gain.add_(0.3 * torch.randn_like(net.log_gain))
        net.log_inv_gain.add_(0.3 * torch.randn_like(net.log_inv_gain))
    net.eval().update(force=True)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.fixture
def image(photos):
    return np.ascontiguousarray(photos["astronaut"][100:196, 150:278])  # 96×128, real photo


def test_fold_is_exact(gained_state):
    from compressai.models import FactorizedPrior

    net = make_model(8, 12, (0.001, 0.005, 0.02, 0.1))
    net.load_state_dict(gained_state)
    net.eval()
    x = torch.rand(2, 3, 64, 64)
    assert num_levels(gained_state) == 4
    for k in range(4):
        plain = FactorizedPrior.from_state_dict(fold(gained_state, k)).eval()
        with torch.no_grad():
            a = net(x, torch.full((2,), k))
            b = plain(x)
        assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-5)
        assert torch.allclose(a["likelihoods"]["y"], b["likelihoods"]["y"], atol=1e-5)
    with pytest.raises(CheckpointError):
        fold(gained_state, 4)


def test_checkpoint_gained_and_per_quality_files_agree(gained_state, image, tmp_path):
    full = tmp_path / "gained.pth"
    torch.save(gained_state, full)
    for k in range(4):
        torch.save(fold(gained_state, k), tmp_path / f"q{k + 1}.pth")
    gained = RDBenchSmall(checkpoint=str(full))
    perq = RDBenchSmall(checkpoint=str(tmp_path / "q{quality}.pth"))
    for q in (1, 2, 3, 4):
        a, b = gained.compress(image, q), perq.compress(image, q)
        ha, pa = bitstream.unpack(a.data)
        hb, pb = bitstream.unpack(b.data)
        assert pa == pb and a.estimated_bits == pytest.approx(b.estimated_bits)
        assert np.array_equal(gained.decode(a.data), perq.decode(b.data))
    assert "checkpoint" in gained.version and "q1 sha256" in perq.version
    with pytest.raises(ValueError, match="quality"):
        gained.encode(image, 5)


def test_checkpoint_that_is_not_gained_is_refused(tmp_path, gained_state, image):
    plain = tmp_path / "plain.pth"
    torch.save(fold(gained_state, 0), plain)
    with pytest.raises(CheckpointError, match="gained"):
        RDBenchSmall(checkpoint=str(plain)).encode(image, 1)


def test_random_weights_round_trip(image):
    import pickle

    codec = RDBenchSmall(weights="random", seed=1)
    data = codec.encode(image, 2)
    out = codec.decode(data)
    assert out.shape == image.shape and np.array_equal(out, codec.decode(data))
    assert "UNTRAINED" in codec.version
    clone = pickle.loads(pickle.dumps(codec))  # Beam ships codecs to workers
    assert np.array_equal(clone.decode(data), out)


def test_trained_checkpoint_from_the_loop_loads(photos, tmp_path):
    """TrainCodec's rdbench-small outputs load through both codecs."""
    from PIL import Image

    from rdbench.codecs import get_codec
    from rdbench.training import TrainConfig, train

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut", "coffee"):
        Image.fromarray(photos[name][:96, :96]).save(folder / f"{name}.png")
    torch.set_num_threads(1)
    out = tmp_path / "run"
    cfg = TrainConfig(codec="rdbench-small", dataset=f"folder:{folder}", output_dir=str(out), steps=2, batch_size=4,
                      crop=32, lmbdas=(0.005, 0.05), model_args={"N": 8, "M": 8}, eval_images=1, eval_crop=64,
                      log_every=1, eval_every=2, checkpoint_every=2, device="cpu", threads=1)
    result = train(cfg)
    assert result["codec_spec"] == f"rdbench-small:checkpoint={out / 'checkpoint-final.pth'}"
    im = np.ascontiguousarray(photos["coffee"][:64, :80])
    # a 2-level checkpoint cannot serve the 4-quality codec …
    with pytest.raises(CheckpointError, match="quality levels"):
        RDBenchSmall(checkpoint=str(out / "checkpoint-final.pth")).encode(im, 1)
    # … but each folded level is a plain bmshj2018-factorized checkpoint
    plain = get_codec(f"bmshj2018-factorized:checkpoint={out / 'checkpoint-final-q{quality}.pth'}")
    for q in (1, 2):
        assert plain.decode(plain.encode(im, q)).shape == im.shape


needs_shipped = pytest.mark.skipif(not shipped_weights().is_file(), reason=f"shipped weights absent: {shipped_weights()}")


@needs_shipped
def test_shipped_weights_are_small_and_safe():
    assert shipped_weights().stat().st_size < 5_000_000
    sd = torch.load(shipped_weights(), map_location="cpu", weights_only=True)
    assert num_levels(sd) == len(LMBDAS)
    assert torch.allclose(sd["lmbdas"], torch.tensor(LMBDAS, dtype=torch.float64))


@needs_shipped
def test_shipped_model_codes_a_real_photo(photos):
    im = np.ascontiguousarray(photos["coffee"][:192, :256])
    codec = RDBenchSmall()
    assert codec.default_qualities() == [1.0, 2.0, 3.0, 4.0] and codec.weights_available()
    rates, quality = [], []
    for q in codec.default_qualities():
        data = codec.encode(im, q)
        out = codec.decode(data)
        rates.append(len(data) * 8 / (im.shape[0] * im.shape[1]))
        quality.append(psnr(im, out))
    assert rates == sorted(rates) and quality == sorted(quality), (rates, quality)
    assert quality[0] > 18 and quality[-1] > 24  # a trained model (untrained: ~10 dB)
    assert "shipped weights" in codec.version


@needs_shipped
def test_shipped_streams_refuse_other_weights(photos):
    im = np.ascontiguousarray(photos["coffee"][:64, :64])
    data = RDBenchSmall().encode(im, 2)
    with pytest.raises(CodecError, match="other weights"):
        RDBenchSmall(weights="random").decode(data)


def test_registered_name():
    from rdbench.codecs import base

    if "rdbench-small" not in base.known():
        pytest.skip("rdbench-small is not in the built-in codec table yet")
    from rdbench.codecs import get_codec

    assert isinstance(get_codec("rdbench-small:weights=random"), RDBenchSmall)
