"""LPIPS per image, FID/KID per set: agreement with the reference libraries, the Beam combine, weights.

No pretrained weights are needed: the networks get random weights saved to files under tmp
(the real architectures), and the references (the ``lpips`` package, torch-fidelity) are loaded
with the very same weights.
"""
from __future__ import annotations

import io
import json
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rdbench.codecs.weights import WeightsIntegrityError
from tests.conftest import reference_lpips
from rdbench.metrics import ImageTooSmallError
from rdbench.metrics import perceptual, setlevel
from rdbench.metrics.perceptual import (
    LPIPS_LINEAR_WEIGHTS,
    LpipsMetric,
    MetricWeightsUnavailableError,
    require_metric_weights,
)
from pipelines.beam.set_metrics import SetStatsCombineFn
from rdbench.metrics.setlevel import (
    FeatureExtractor,
    Moments,
    PatchFeatures,
    SetStats,
    extract_patches,
    fid_from_features,
    fid_from_stats,
    kid_from_features,
    patch_origins,
)


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    """An empty weights root and torch hub cache, downloads disabled; returns the weights root."""
    root = tmp_path / "weights"
    monkeypatch.setenv("RDBENCH_WEIGHTS_ROOT", str(root))
    monkeypatch.setenv("RDBENCH_WEIGHTS_DOWNLOAD", "0")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return root


def jpeg_copy(image: np.ndarray, quality: int = 10) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


# -- LPIPS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(160, 224), (67, 93), (31, 40)])
def test_lpips_equals_the_lpips_package(lpips_reference, photos, size):
    reference, backbone, linear = lpips_reference
    metric = LpipsMetric("cpu", backbone=backbone, linear=linear)
    h, w = size
    a = np.ascontiguousarray(photos["coffee"][100:100 + h, 150:150 + w])
    b = jpeg_copy(a)
    ours, theirs = metric(a, b), reference_lpips(reference, a, b)
    assert ours == pytest.approx(theirs, abs=1e-6)
    assert abs(ours) > 1e-4  # not a degenerate comparison
    assert metric(a, a) == 0.0


def test_lpips_with_the_published_linear_weights_from_the_lpips_package(lpips_reference, photos, offline):
    """The linear layers the lpips package ships (CUDA tensors in the file) are found and used."""
    lpips = pytest.importorskip("lpips")
    random_reference, backbone, _ = lpips_reference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).eval()
    reference.net.load_state_dict(random_reference.net.state_dict())
    metric = LpipsMetric("cpu", backbone=backbone)  # linear layers: looked up
    assert Path(metric.weights["linear"]) == perceptual.package_file("lpips", "weights/v0.1/alex.pth")
    a = np.ascontiguousarray(photos["astronaut"][:200, :300])
    b = jpeg_copy(a, 30)
    assert metric(a, b) == pytest.approx(reference_lpips(reference, a, b), abs=1e-6)


def test_lpips_rejects_images_below_its_minimum_and_mismatched_pairs(lpips_reference, photos):
    _, backbone, linear = lpips_reference
    metric = LpipsMetric("cpu", backbone=backbone, linear=linear)
    small = np.ascontiguousarray(photos["coffee"][:30, :80])
    with pytest.raises(ImageTooSmallError, match="31"):
        metric(small, small)
    with pytest.raises(ValueError):
        metric(photos["coffee"][:40, :40], photos["coffee"][:41, :40])


def test_missing_lpips_weights_raise_a_clear_error(offline, monkeypatch, lpips_reference):
    with pytest.raises(MetricWeightsUnavailableError) as info:
        LpipsMetric("cpu")
    message = str(info.value)
    assert "alexnet-owt-7be5be79.pth" in message
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in message
    assert str(offline / "lpips" / "alexnet-owt-7be5be79.pth") in message
    assert "RDBENCH_WEIGHTS_DOWNLOAD=0" in message

    # Without the lpips package's copy, the linear layers are missing too.
    monkeypatch.setattr(perceptual, "package_file", lambda *args: None)
    with pytest.raises(MetricWeightsUnavailableError, match=r"alex\.pth.*PerceptualSimilarity"):
        LpipsMetric("cpu", backbone=lpips_reference[1])


def test_required_weights_are_checked_up_front(offline):
    assert require_metric_weights(["psnr_rgb", "psnr_y", "ms_ssim_rgb"]) == {}
    with pytest.raises(MetricWeightsUnavailableError, match="alexnet-owt-7be5be79.pth"):
        require_metric_weights(["psnr_rgb", "lpips"])
    with pytest.raises(MetricWeightsUnavailableError, match="weights-inception-2015-12-05-6726825d.pth"):
        require_metric_weights(["kid"])


def test_weights_are_found_in_the_weights_root_and_verified(offline, tmp_path):
    published = perceptual.package_file("lpips", "weights/v0.1/alex.pth")
    if published is None:
        pytest.skip("the lpips package is not installed")
    target = offline / "lpips" / "alex.pth"
    target.parent.mkdir(parents=True)
    target.write_bytes(published.read_bytes())
    assert LPIPS_LINEAR_WEIGHTS.locate() == target

    corrupt = offline / "lpips" / "alexnet-owt-7be5be79.pth"
    corrupt.write_bytes(b"not the weights")
    with pytest.raises(WeightsIntegrityError, match="alexnet-owt-7be5be79.pth"):
        LpipsMetric("cpu")
    corrupt.unlink()
    # The torch hub cache is searched and verified as well; a copy there that is not the
    # published file is passed over (and named).
    hub = tmp_path / "torch-home" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"not the weights either")
    with pytest.raises(MetricWeightsUnavailableError, match=re.escape(f"{hub} (present, but not the published file)")):
        LpipsMetric("cpu")


# -- patches and Inception features -----------------------------------------------------------


@pytest.mark.parametrize(
    "height, width, count",
    [(512, 768, 3 * 2 + 1 * 2), (768, 512, 2 * 3 + 2 * 1), (384, 384, 1 + 1), (383, 1000, 3), (300, 300, 1),
     (255, 1000, 0), (256, 256, 1), (2048, 1365, 8 * 5 + 7 * 4)],
)
def test_patch_grid_and_its_half_shifted_copy(height, width, count):
    origins = patch_origins(height, width)
    assert len(origins) == count
    assert all(0 <= t <= height - 256 and 0 <= l <= width - 256 for t, l in origins)
    if count:
        assert origins[0] == (0, 0)
    if min(height, width) >= 384:
        assert (128, 128) in origins


def test_features_are_torch_fidelitys_pool3_of_the_patches(inception_weights, photos):
    extractor = FeatureExtractor("cpu", weights=inception_weights)
    # The network is torch-fidelity's FeatureExtractorInceptionV3 holding exactly the file's weights.
    net = extractor._net
    assert type(net).__module__ == "torch_fidelity.feature_extractor_inceptionv3"
    saved = torch.load(inception_weights, weights_only=True)
    for name, value in net.state_dict().items():
        assert torch.equal(value, saved[name]), name

    # The features are its "2048" output on the uint8 NCHW patches, in grid order (one forward
    # pass on a one-patch image keeps the test light; the grid itself is checked without a network).
    calls = []

    def spy(x):
        out = net(x)
        calls.append((x.clone(), out[0].clone()))
        return out

    extractor._net = spy
    image = np.ascontiguousarray(photos["astronaut"][100:356, 64:448])  # 256×384: one patch
    ours = extractor(image)
    assert ours.shape == (1, 2048) and ours.dtype == np.float32
    assert float(ours.std()) > 1e-3  # the random network gives well-scaled features
    (given, theirs), = calls
    assert given.dtype == torch.uint8
    assert torch.equal(given, torch.from_numpy(image[:, :256].transpose(2, 0, 1).copy())[None])
    np.testing.assert_array_equal(ours, theirs.numpy())

    square = np.ascontiguousarray(photos["astronaut"][:384, :384])
    patches = extract_patches(square)
    np.testing.assert_array_equal(patches[0], square[:256, :256])
    np.testing.assert_array_equal(patches[1], square[128:, 128:])
    assert extractor(np.ascontiguousarray(photos["astronaut"][:200])).shape == (0, 2048)
    assert len(calls) == 1  # no forward pass without patches


def test_missing_inception_weights_raise_a_clear_error(offline):
    with pytest.raises(MetricWeightsUnavailableError) as info:
        FeatureExtractor("cpu")
    message = str(info.value)
    assert "weights-inception-2015-12-05-6726825d.pth" in message
    assert "github.com/toshas/torch-fidelity/releases" in message
    assert str(offline / "fid" / "weights-inception-2015-12-05-6726825d.pth") in message


# -- FID and KID --------------------------------------------------------------------------------


def synthetic_features(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative, correlated, pool3-like features of originals and of 'reconstructions'."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(24, d)) / 4
    real = np.abs(rng.normal(size=(n, 24)) @ mixing + rng.normal(scale=0.1, size=(n, d)))
    fake = np.abs(0.9 * real + rng.normal(scale=0.15, size=(n, d)) + 0.02)
    return real.astype(np.float32), fake.astype(np.float32)


@pytest.mark.parametrize("n", [150, 400])  # fewer and more vectors than dimensions
def test_fid_equals_torch_fidelity(n):
    metric_fid = pytest.importorskip("torch_fidelity.metric_fid")
    real, fake = synthetic_features(n, 256, seed=n)
    theirs = metric_fid.fid_statistics_to_metric(
        metric_fid.fid_features_to_statistics(torch.from_numpy(real).double()),
        metric_fid.fid_features_to_statistics(torch.from_numpy(fake).double()), verbose=False,
    )["frechet_inception_distance"]
    stats = SetStats()
    capped = SetStats(kid_max_patches=50)  # n < d: FID from the moments, not the kept features
    for start in range(0, n, 7):  # images of 7 patches, as a stream
        stats.add(f"img{start}", real[start:start + 7], fake[start:start + 7])
        capped.add(f"img{start}", real[start:start + 7], fake[start:start + 7])
    direct = fid_from_stats(real.mean(0, dtype=np.float64), np.cov(real, rowvar=False),
                            fake.mean(0, dtype=np.float64), np.cov(fake, rowvar=False))
    assert stats.fid() == pytest.approx(theirs, abs=1e-3)
    assert direct == pytest.approx(theirs, abs=1e-3)
    assert fid_from_features(real, fake) == pytest.approx(theirs, abs=1e-3)
    assert capped.fid() == pytest.approx(theirs, abs=1e-3)
    # Singular covariances (n < d): round-off in the ~0 eigenvalues moves the square roots a little.
    assert stats.fid() == pytest.approx(direct, rel=1e-9 if n > 256 else 1e-6)
    assert theirs > 1.0
    assert fid_from_stats(real.mean(0), np.cov(real, rowvar=False), real.mean(0),
                          np.cov(real, rowvar=False)) == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("cache_kernels", [True, False])
def test_kid_equals_torch_fidelity(monkeypatch, cache_kernels):
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    if not cache_kernels:
        monkeypatch.setattr(setlevel, "_KERNEL_CACHE_ENTRIES", 0)
    real, fake = synthetic_features(1100, 64, seed=3)
    theirs = metric_kid.kid_features_to_metric(
        torch.from_numpy(real).double(), torch.from_numpy(fake).double(),
        kid_subsets=4, kid_subset_size=1000, rng_seed=2020, verbose=False)
    mean, std = kid_from_features(real, fake, subsets=4, subset_size=1000, seed=2020)
    assert mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-9, abs=1e-12)
    assert std == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-6, abs=1e-12)
    assert mean > 1e-4


def test_kid_of_a_set_smaller_than_the_subset_size_uses_the_whole_set():
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    real, fake = synthetic_features(150, 64, seed=4)
    theirs = metric_kid.kid_features_to_metric(
        torch.from_numpy(real).double(), torch.from_numpy(fake).double(),
        kid_subsets=3, kid_subset_size=150, verbose=False)
    mean, std = kid_from_features(real, fake)  # subset size 1000 > 150 patches
    assert mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-9)
    assert std == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        kid_from_features(real[:1], fake[:1])


# -- the accumulator and the Beam combine ------------------------------------------------------


def image_features(n_images: int, d: int, seed: int) -> list[PatchFeatures]:
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_images):
        rows = int(rng.integers(0, 9))  # some images give no patch
        real = np.abs(rng.normal(size=(rows, d))).astype(np.float32)
        fake = (real + np.abs(rng.normal(scale=0.3, size=(rows, d)))).astype(np.float32)
        items.append(PatchFeatures(f"set/img{i:03d}", real, fake))
    return items


def one_pass(items, **kwargs) -> SetStats:
    stats = SetStats(**kwargs)
    for item in items:
        stats.add(item.key, item.real, item.fake)
    return stats


@pytest.mark.parametrize("block_rows", [4096, 5])  # rows kept as they are / folded into d×d moments
def test_merged_accumulators_give_the_one_pass_result(monkeypatch, block_rows):
    monkeypatch.setattr(Moments, "BLOCK_ROWS", block_rows)
    items = image_features(30, 16, seed=5)
    whole = one_pass(items)
    parts = [pickle.loads(pickle.dumps(one_pass(items[i::3]))) for i in range(3)]  # as Beam ships them
    merged = SetStatsCombineFn().merge_accumulators([parts[2], parts[0], parts[1], SetStats()])
    assert merged.n_images == whole.n_images == 30
    assert merged.n_patches == whole.n_patches == sum(len(i.real) for i in items)
    assert merged.n_images_skipped == whole.n_images_skipped > 0
    assert merged.fid() == pytest.approx(whole.fid(), rel=1e-10)
    real = np.concatenate([i.real for i in items]).astype(np.float64)
    np.testing.assert_allclose(merged.real.covariance(), np.cov(real, rowvar=False), rtol=1e-12, atol=1e-14)
    for a, b in zip(merged.kid_features(), whole.kid_features()):
        np.testing.assert_array_equal(a, b)  # the same rows in the same (canonical) order
    assert merged.kid(subset_size=50) == whole.kid(subset_size=50)


def test_kid_sample_is_bounded_paired_and_independent_of_order():
    items = image_features(30, 8, seed=6)
    paired = [PatchFeatures(i.key, i.real, i.real + 1000.0) for i in items]
    forward = one_pass(paired, kid_max_patches=20)
    backward = one_pass(paired[::-1], kid_max_patches=20)
    real, fake = forward.kid_features()
    assert len(real) == 20 < forward.n_patches
    np.testing.assert_array_equal(fake, real + 1000.0)  # pairs stay together
    for a, b in zip(real, backward.kid_features()[0]):
        np.testing.assert_array_equal(a, b)


def test_empty_and_tiny_sets_give_no_metric():
    stats = SetStats()
    stats.add("small", np.empty((0, 2048), np.float32), np.empty((0, 2048), np.float32))
    assert SetStatsCombineFn().extract_output(stats) == {
        "n_images": 1, "n_images_skipped": 1, "n_patches": 0, "fid": None, "kid": None,
        "kid_std": None, "kid_patches": 0}
    with pytest.raises(ValueError, match="same shape|one shape"):
        stats.add("bad", np.zeros((2, 4)), np.zeros((3, 4)))


def test_combine_per_key_on_two_beam_workers(tmp_path):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    sets = {("kodak", "jpeg", 50.0): image_features(24, 16, seed=7),
            ("kodak", "jpeg", 90.0): image_features(17, 16, seed=8)}
    elements = [(key, item) for key, items in sets.items() for item in items]
    out = tmp_path / "out"
    out.mkdir()

    def write(kv):
        (dataset, codec, quality), result = kv
        (out / f"{codec}-{quality}.json").write_text(json.dumps(result))

    # Two worker threads keep the test light (worker processes would spend ~15 s importing torch and
    # Beam); elements and accumulators cross the stages encoded by their coders all the same, and
    # the same pipeline passes with --direct_running_mode=multi_processing.
    options = PipelineOptions(["--direct_num_workers=2", "--direct_running_mode=multi_threading"])
    combine = SetStatsCombineFn(kid_subsets=5, kid_subset_size=40)
    with beam.Pipeline(runner=FnApiRunner(), options=options) as p:
        (p | beam.Create(elements, reshuffle=False) | beam.Reshuffle()
           | beam.CombinePerKey(combine) | beam.Map(write))

    for (_, codec, quality), items in sets.items():
        got = json.loads((out / f"{codec}-{quality}.json").read_text())
        expected = combine.extract_output(one_pass(items))
        assert got["n_images"] == len(items) and got["n_patches"] == expected["n_patches"]
        assert got["fid"] == pytest.approx(expected["fid"], rel=1e-9)
        assert got["kid"] == expected["kid"] and got["kid_std"] == expected["kid_std"]
