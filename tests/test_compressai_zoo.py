"""CompressAI zoo codecs: real bitstreams, weights cache/verification/download, checkpoints.

Everything runs offline on the CPU with untrained networks (``weights=random``) or state dicts
the tests save themselves; downloads go to a throwaway HTTP server on 127.0.0.1.
"""
from __future__ import annotations

import hashlib
import http.server
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("compressai")

from rdbench.codecs import CodecError, CodecSpecError, family, get_codec, known  # noqa: E402
from rdbench.codecs.bitstream import BitstreamError, unpack  # noqa: E402
from rdbench.codecs.compressai_zoo import ZOO, CompressAIZoo  # noqa: E402
from rdbench.codecs.weights import (  # noqa: E402
    CheckpointError,
    RemoteFile,
    WeightsIntegrityError,
    WeightsUnavailableError,
    hash_prefix,
    load_state_dict,
)


@pytest.fixture(autouse=True)
def _isolated_weights(tmp_path, monkeypatch):
    """Every test gets an empty weights root, no mirror, and no network downloads."""
    monkeypatch.setenv("RDBENCH_WEIGHTS_ROOT", str(tmp_path / "weights"))
    monkeypatch.setenv("RDBENCH_WEIGHTS_DOWNLOAD", "0")
    monkeypatch.delenv("RDBENCH_WEIGHTS_MIRROR", raising=False)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 128×192 crop of a real photograph (skimage's astronaut: face and background)."""
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut()[60:188, 140:332])


@pytest.fixture(scope="module")
def small(photo) -> np.ndarray:
    """A 40×60 crop: not a multiple of the stride (exercises padding), and quick to code."""
    return np.ascontiguousarray(photo[10:50, 20:80])


def _payload(data: bytes) -> list[bytes]:
    return unpack(data)[1]


def _bits(data: bytes) -> int:
    return 8 * sum(len(s) for s in _payload(data))


# -- registry ----------------------------------------------------------------------------


def test_registered_names_and_ladders():
    assert set(ZOO) <= set(known())
    for name in ZOO:
        codec = get_codec(name)
        assert isinstance(codec, CompressAIZoo) and codec.name == name and codec.batched
        assert family(name) == codec.family == "learned" and codec.in_default_set
        top = 6 if name.startswith("cheng2020") else 8
        assert codec.default_qualities() == [float(q) for q in range(1, top + 1)]
        assert name in codec.version and "compressai" in codec.version


def test_spec_parameters():
    c = get_codec("mbt2018-mean:metric=ms-ssim,weights=random,seed=3")
    assert c.params["metric"] == "ms-ssim" and c.params["seed"] == 3
    assert c.spec == "mbt2018-mean:metric=ms-ssim,seed=3,weights=random"
    assert "UNTRAINED" in c.version and "seed 3" in c.version
    with pytest.raises(CodecSpecError):
        get_codec("mbt2018-mean:metric=psnr")
    with pytest.raises(CodecSpecError):
        get_codec("mbt2018-mean:weights=random,checkpoint=x.pth")


@pytest.mark.parametrize("quality", [0, 9, 2.5, "3"])
def test_quality_outside_ladder(quality, small):
    codec = get_codec("bmshj2018-factorized:weights=random")
    with pytest.raises(ValueError, match="quality"):
        codec.compress(small, quality)


def test_cheng2020_ladder_stops_at_6(small):
    with pytest.raises(ValueError, match="1–6"):
        get_codec("cheng2020-anchor:weights=random").compress(small, 7)


# -- every architecture: random weights, then the same weights from a checkpoint -------------


@pytest.mark.parametrize("name", sorted(ZOO))
def test_round_trip_random_and_checkpoint(name, small, tmp_path):
    codec = get_codec(f"{name}:weights=random")
    enc = codec.compress(small, 1)
    header, strings = unpack(enc.data)
    assert (header.codec, header.quality, header.height, header.width) == (name, 1.0, 40, 60)
    assert (header.padded_height, header.padded_width) == (64, 64)
    assert len(strings) == (1 if name == "bmshj2018-factorized" else 2)

    out = codec.decode(enc.data)
    assert out.shape == small.shape and out.dtype == np.uint8
    assert np.array_equal(out, codec.decode(enc.data))  # deterministic decode
    # rANS flushes its 32-bit state and pads to whole words: up to 64 bits per string on top
    assert abs(_bits(enc.data) - enc.estimated_bits) <= 0.05 * enc.estimated_bits + 64 * len(strings)

    # The same weights saved as a plain state dict and loaded through checkpoint=.
    torch.save(codec._load(1).net.state_dict(), tmp_path / "q1.pth.tar")
    from_file = get_codec(f"{name}:checkpoint={tmp_path}/q{{quality}}.pth.tar")
    assert np.array_equal(from_file.decode(enc.data), out)  # decodes the other codec's stream
    assert _payload(from_file.encode(small, 1)) == strings
    assert "q1.pth.tar sha256 " in from_file.version_for(1)


# -- rates, batching, determinism -------------------------------------------------------------


@pytest.mark.parametrize("name", ["bmshj2018-hyperprior", "mbt2018-mean"])
def test_estimated_bits_match_bitstream(name, photo):
    enc = get_codec(f"{name}:weights=random").compress(photo, 3)
    assert enc.estimated_bits > 0
    assert abs(_bits(enc.data) - enc.estimated_bits) / enc.estimated_bits < 0.05


def test_batched_equals_per_image(photo):
    codec = get_codec("mbt2018-mean:weights=random")
    one = np.ascontiguousarray(photo[:64, :128])
    other = np.ascontiguousarray(photo[64:, 64:])
    odd = np.ascontiguousarray(photo[:40, :70])  # a different shape in the same call
    images = (one, other, odd)
    batch = codec.compress_batch(images, 2)
    single = [codec.compress(im, 2) for im in images]
    assert [b.data for b in batch] == [s.data for s in single]
    assert [b.estimated_bits for b in batch] == [s.estimated_bits for s in single]
    decoded = codec.decode_batch([b.data for b in batch])
    for d, s, im in zip(decoded, single, images):
        assert d.shape == im.shape
        assert np.array_equal(d, codec.decode(s.data))


def test_seeded_random_weights_are_reproducible(small):
    a = get_codec("bmshj2018-hyperprior:weights=random").compress(small, 1).data
    b = get_codec("bmshj2018-hyperprior:weights=random").to("cpu").compress(small, 1).data
    assert a == b
    other = get_codec("bmshj2018-hyperprior:weights=random,seed=1")
    with pytest.raises(CodecError, match="other weights"):
        other.decode(a)


def test_pickled_codec_decodes_the_same(small):
    import pickle

    codec = get_codec("bmshj2018-hyperprior:weights=random")
    enc = codec.compress(small, 2)
    clone = pickle.loads(pickle.dumps(codec))  # as Beam ships it to a worker
    assert clone.spec == codec.spec and clone.version == codec.version
    assert np.array_equal(clone.decode(enc.data), codec.decode(enc.data))


def test_decode_rejects_foreign_or_broken_streams(small):
    codec = get_codec("bmshj2018-hyperprior:weights=random")
    data = codec.encode(small, 1)
    with pytest.raises(CodecError, match="made by codec"):
        get_codec("mbt2018-mean:weights=random").decode(data)
    with pytest.raises(BitstreamError, match="truncated"):
        codec.decode(data[:-3])
    with pytest.raises(BitstreamError, match="magic"):
        codec.decode(b"\xff\xd8\xff\xe0" + data[4:])


def test_rejects_non_rgb_input():
    codec = get_codec("bmshj2018-factorized:weights=random")
    with pytest.raises(ValueError, match="uint8"):
        codec.compress(np.zeros((32, 32), np.uint8), 1)
    with pytest.raises(ValueError, match="uint8"):
        codec.compress(np.zeros((32, 32, 3), np.float32), 1)


# -- checkpoints ------------------------------------------------------------------------------


def test_training_checkpoint_with_dataparallel_prefix(small, tmp_path):
    """CompressAI's examples/train.py checkpoint layout, saved from a DataParallel model."""
    codec = get_codec("mbt2018-mean:weights=random")
    net = codec._load(2).net
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    torch.save(
        {
            "epoch": 7,
            "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()},
            "loss": 0.25,
            "optimizer": opt.state_dict(),
            "aux_optimizer": torch.optim.Adam(net.parameters(), lr=1e-3).state_dict(),
            "lr_scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(opt).state_dict(),
        },
        tmp_path / "checkpoint_best_loss.pth.tar",
    )
    state = load_state_dict(tmp_path / "checkpoint_best_loss.pth.tar")
    assert not any(k.startswith("module.") for k in state)
    loaded = get_codec(f"mbt2018-mean:checkpoint={tmp_path}/checkpoint_best_loss.pth.tar")
    enc = codec.compress(small, 2)
    assert np.array_equal(loaded.decode(enc.data), codec.decode(enc.data))


def test_missing_checkpoint(small, tmp_path):
    codec = get_codec(f"bmshj2018-hyperprior:checkpoint={tmp_path}/q{{quality}}.pth")
    assert not codec.weights_available()
    with pytest.raises(CheckpointError, match="not found.*q4.pth"):
        codec.compress(small, 4)


def test_pickled_object_is_refused(small, tmp_path):
    """A pickled module (not a state dict) must not be unpickled: weights_only refuses it."""
    torch.save(torch.nn.Linear(2, 2), tmp_path / "model.pth")
    codec = get_codec(f"bmshj2018-hyperprior:checkpoint={tmp_path}/model.pth")
    assert codec.weights_available()  # the file exists; what it holds is checked on load
    with pytest.raises(CheckpointError, match="not a plain state dict.*weights_only"):
        codec.compress(small, 1)


def test_non_tensor_dict_and_wrong_architecture(small, tmp_path):
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pth")
    with pytest.raises(CheckpointError, match="not a state dict of tensors"):
        get_codec(f"mbt2018-mean:checkpoint={tmp_path}/meta.pth").compress(small, 1)
    factorized = get_codec("bmshj2018-factorized:weights=random")
    torch.save(factorized._load(1).net.state_dict(), tmp_path / "factorized.pth")
    with pytest.raises(CheckpointError, match="does not hold mbt2018-mean"):
        get_codec(f"mbt2018-mean:checkpoint={tmp_path}/factorized.pth").compress(small, 1)


# -- published weights: cache, verification, download -----------------------------------------


def test_offline_without_cached_weights_says_what_to_fetch(small, tmp_path):
    codec = get_codec("bmshj2018-hyperprior")
    assert not codec.weights_available() and not get_codec("bmshj2018-hyperprior").weights_available()
    with pytest.raises(WeightsUnavailableError) as err:
        codec.compress(small, 3)
    msg = str(err.value)
    assert "https://compressai.s3.amazonaws.com/models/v1/bmshj2018-hyperprior-3-6d87be32.pth.tar" in msg
    assert str(tmp_path / "weights" / "compressai" / "bmshj2018-hyperprior-3-6d87be32.pth.tar") in msg


def test_cached_file_with_wrong_hash(small, tmp_path):
    path = tmp_path / "weights" / "compressai" / "bmshj2018-hyperprior-2-93677231.pth.tar"
    path.parent.mkdir(parents=True)
    torch.save({"g_a.0.weight": torch.zeros(1)}, path)  # loadable, but not the published file
    codec = get_codec("bmshj2018-hyperprior")
    assert codec.weights_available([2])  # present (hash is checked on use, not on listing)
    with pytest.raises(WeightsIntegrityError, match="93677231"):
        codec.compress(small, 2)


def test_weights_root_parameter(tmp_path):
    root = tmp_path / "elsewhere"
    f = root / "compressai" / "mbt2018-1-3f36cd77.pth.tar"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"")
    assert get_codec(f"mbt2018:weights_root={root}").weights_available([1])
    assert not get_codec(f"mbt2018:weights_root={root}").weights_available([1, 2])
    assert not get_codec("mbt2018").weights_available([1])
    assert get_codec("mbt2018:weights=random").weights_available() and get_codec("jpeg").weights_available()


class _Server:
    """A local HTTP server with files the test puts in ``files`` (name → bytes)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.requests.append(self.path)
                body = server.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _named_by_hash(stem: str, content: bytes) -> str:
    return f"{stem}-{hashlib.sha256(content).hexdigest()[:8]}.pth.tar"


def test_download_from_mirror_is_verified_and_cached(server, tmp_path, monkeypatch):
    content = b"pretend weights " * 1000
    name = _named_by_hash("tiny", content)
    assert hash_prefix(name) == hashlib.sha256(content).hexdigest()[:8]
    server.files[name] = content
    monkeypatch.setenv("RDBENCH_WEIGHTS_MIRROR", server.url + "/")
    remote = RemoteFile.from_url(f"https://weights.invalid/v1/{name}", "somecodec")
    assert not remote.is_cached()
    with pytest.raises(WeightsUnavailableError, match="downloads are disabled"):
        remote.fetch()
    path = remote.fetch(download=True)
    assert path == tmp_path / "weights" / "somecodec" / name
    assert path.read_bytes() == content
    assert server.requests == [f"/{name}"]
    assert remote.fetch(download=True) == path and len(server.requests) == 1  # from the cache
    assert [p.name for p in path.parent.iterdir()] == [name]  # no partial files left


def test_download_with_wrong_content_is_rejected(server, tmp_path, monkeypatch):
    name = _named_by_hash("tiny", b"the published bytes")
    server.files[name] = b"something else"
    monkeypatch.setenv("RDBENCH_WEIGHTS_MIRROR", server.url)
    remote = RemoteFile.from_url(f"https://weights.invalid/{name}", "somecodec")
    with pytest.raises(WeightsIntegrityError, match="downloaded from http://127.0.0.1"):
        remote.fetch(download=True)
    assert not remote.is_cached()
    assert list((tmp_path / "weights" / "somecodec").iterdir()) == []


def test_download_not_found(server, monkeypatch):
    monkeypatch.setenv("RDBENCH_WEIGHTS_MIRROR", server.url)
    remote = RemoteFile.from_url("https://weights.invalid/tiny-0123abcd.pth.tar", "somecodec")
    with pytest.raises(WeightsUnavailableError, match="404.*Download it from https://weights.invalid"):
        remote.fetch(download=True)


def test_zoo_codec_downloads_through_mirror(server, small, monkeypatch):
    """The pretrained path end to end: URL from the zoo table, download, verify, load, code."""
    import compressai.zoo.image

    source = get_codec("bmshj2018-factorized:weights=random")
    buf = __import__("io").BytesIO()
    torch.save(source._load(1).net.state_dict(), buf)
    name = _named_by_hash("bmshj2018-factorized-prior-1", buf.getvalue())
    server.files[name] = buf.getvalue()
    urls = compressai.zoo.image.model_urls["bmshj2018-factorized"]["mse"]
    monkeypatch.setitem(urls, 1, f"https://compressai.invalid/models/v1/{name}")
    monkeypatch.setenv("RDBENCH_WEIGHTS_MIRROR", server.url)
    monkeypatch.setenv("RDBENCH_WEIGHTS_DOWNLOAD", "1")
    codec = get_codec("bmshj2018-factorized")
    assert not codec.weights_available([1])
    data = codec.encode(small, 1)
    assert codec.weights_available([1])
    assert codec.version_for(1).endswith(f"weights {name}")
    assert np.array_equal(codec.decode(data), source.decode(source.encode(small, 1)))
