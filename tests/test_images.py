"""rdbench.images: every input becomes uint8 (H, W, 3) RGB, or a clear ImageLoadError."""
import numpy as np
import pytest
from PIL import Image

from rdbench.images import ImageLoadError, load_image


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (61, 97, 3), dtype=np.uint8)


def test_rgb_png_loads_unchanged(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (61, 97, 3)
    assert np.array_equal(out, rgb)


def test_grayscale_is_replicated_to_three_channels(tmp_path, rgb):
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == (61, 97, 3)
    assert np.array_equal(out[:, :, 0], rgb[:, :, 0]) and np.array_equal(out[:, :, 2], rgb[:, :, 0])


def test_16bit_is_rounded_to_nearest_8bit(tmp_path):
    values = np.array([[0, 128, 129, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "w.png")
    out = load_image(tmp_path / "w.png")
    expected = np.floor(values.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)
    assert np.array_equal(out[:, :, 0], expected)
    assert list(expected[0]) == [0, 0, 1, 1, 128, 255]


def test_rgba_drops_alpha(tmp_path, rgb):
    alpha = np.full(rgb.shape[:2] + (1,), 7, dtype=np.uint8)
    Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA").save(tmp_path / "a.png")
    assert np.array_equal(load_image(tmp_path / "a.png"), rgb)


def test_la_drops_alpha(tmp_path, rgb):
    la = np.stack([rgb[:, :, 1], np.zeros_like(rgb[:, :, 1])], axis=2)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert np.array_equal(load_image(tmp_path / "la.png")[:, :, 1], rgb[:, :, 1])


def test_palette_and_cmyk_convert(tmp_path, rgb):
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    for name in ("p.png", "c.jpg"):
        out = load_image(tmp_path / name)
        assert out.shape == (61, 97, 3) and out.dtype == np.uint8


def _assert_refused(path, cause_fragment):
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert str(path) in message and cause_fragment in message
    assert info.value.path == str(path)


def test_zero_byte_file_is_refused(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    _assert_refused(tmp_path / "empty.png", "empty file")


def test_truncated_png_is_refused(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    _assert_refused(tmp_path / "cut.png", "truncated")


def test_text_file_named_png_is_refused(tmp_path):
    (tmp_path / "notes.png").write_text("this is not an image\n")
    _assert_refused(tmp_path / "notes.png", "not a recognised image format")


def test_missing_file_is_refused(tmp_path):
    _assert_refused(tmp_path / "nope.png", "unreadable file")


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    # A real 1-bit PNG whose pixel count exceeds the limit; the limit is lowered so the
    # test file stays tiny (Pillow's default is ~89 Mpx).
    Image.new("1", (400, 300)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)
    _assert_refused(tmp_path / "bomb.png", "decompression bomb")
