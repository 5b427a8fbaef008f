"""Training: each family's loss falls, kill-and-resume is bit-identical, the result loads as a codec,
and TrainCodec runs under Luigi."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from rdbench.training import TrainConfig, TrainingError, get_recipe, recipes, train
from rdbench.training.data import CropSampler, split_holdout

# Tiny networks: the question is whether the machinery trains, not how well.
TINY = {
    "bmshj2018-factorized": {"N": 8, "M": 8},
    "bmshj2018-hyperprior": {"N": 8, "M": 8},
    "mbt2018-mean": {"N": 8, "M": 8},
    "mbt2018": {"N": 8, "M": 8},
    "cheng2020-anchor": {"N": 8},
    "cheng2020-attn": {"N": 8},
    "rdbench-small": {"N": 8, "M": 8},
    "balle2018": {"N": 8, "M": 8},
    "xiao2019": {"N": 8, "M": 8},
}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # light on shared CPUs, and bit-reproducible
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Four real photographs (skimage.data), downsized to 96×96, as PNG files."""
    from skimage import data

    folder = tmp_path_factory.mktemp("train-photos")
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        im = Image.fromarray(getattr(data, name)()).resize((96, 96), Image.LANCZOS)
        im.save(folder / f"{name}.png")
    return folder


def _cfg(folder, out, **kw) -> TrainConfig:
    base = dict(codec="bmshj2018-factorized", dataset=f"folder:{folder}", output_dir=str(out), lmbda=0.01,
                steps=4, batch_size=2, crop=32, seed=3, device="cpu", lr=1e-3, log_every=1, eval_every=2,
                checkpoint_every=2, eval_images=1, eval_crop=64, model_args=TINY["bmshj2018-factorized"], threads=1)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("family", sorted(TINY))
def test_a_few_steps_make_the_loss_fall(family, photo_folder):
    """On a fixed batch of real-photo crops, the family's own loss falls within a few steps."""
    assert family in recipes()
    cfg = _cfg(photo_folder, "unused", codec=family, model_args=TINY[family], batch_size=4, lr=2e-3)
    recipe = get_recipe(family)
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(photo_folder.glob("*.png"))]
    x = torch.from_numpy(CropSampler(images, 64, 4, seed=0).batch(0)).permute(0, 3, 1, 2).float().div(255).contiguous()
    torch.manual_seed(0)
    model = recipe.build(cfg)
    opts = recipe.optimizers(model, cfg)

    def loss_now() -> float:
        torch.manual_seed(1)  # the same quantisation noise before and after
        with torch.no_grad():
            return float(recipe.batch_loss(model, x, cfg)["loss"])

    before = loss_now()
    for _ in range(6):
        metrics = recipe.train_step(model, opts, x, cfg)
    after = loss_now()
    assert {"loss", "bpp", "mse", "psnr", "aux_loss"} <= set(metrics)
    assert after < 0.9 * before, (family, before, after)


def test_toderici2017_residual_loss_falls(photo_folder):
    """Stochastic binariser, additive residual iterations, mean |residual| — falls on a fixed batch."""
    cfg = _cfg(photo_folder, "unused", codec="toderici2017", model_args={"iterations": 2}, lr=1e-3)
    recipe = get_recipe("toderici2017")
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(photo_folder.glob("*.png"))]
    x = torch.from_numpy(CropSampler(images, 32, 2, seed=0).batch(0)).permute(0, 3, 1, 2).float().div(255).contiguous()
    torch.manual_seed(0)
    model = recipe.build(cfg)
    opts = recipe.optimizers(model, cfg)
    model.eval()
    with torch.no_grad():
        before = float(recipe.batch_loss(model, x, cfg)["loss"])  # eval mode: deterministic signs
    for _ in range(3):
        recipe.train_step(model, opts, x, cfg)
    model.eval()
    with torch.no_grad():
        after = float(recipe.batch_loss(model, x, cfg)["loss"])
    assert after < 0.9 * before, (before, after)
    sd = recipe.export(model, cfg)["checkpoint-final.pth"]
    from rdbench.codecs.seeds.toderici2017 import ResidualGRUNet

    ResidualGRUNet().load_state_dict(sd)  # what toderici2017:checkpoint= loads


def _fixed_batch(folder, crop, n):
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]
    return torch.from_numpy(CropSampler(images, crop, n, seed=0).batch(0)).permute(0, 3, 1, 2).float().div(255).contiguous()


def test_mentzer2018_rate_target_loss_falls(photo_folder):
    """Distortion + β·max(H − H_target, 0): with a target of 0 bits the rate term must shrink too."""
    cfg = _cfg(photo_folder, "unused", codec="mentzer2018", lr=1e-3,
               model_args={"C": 4, "H_target": 0.0, "beta": 10.0, "distortion": "mse", "d_weight": 0.01})
    recipe = get_recipe("mentzer2018")
    x = _fixed_batch(photo_folder, 32, 2)
    torch.manual_seed(0)
    model = recipe.build(cfg)
    opts = recipe.optimizers(model, cfg)
    first = recipe.train_step(model, opts, x, cfg)
    for _ in range(6):
        last = recipe.train_step(model, opts, x, cfg)
    assert last["loss"] < 0.9 * first["loss"], (first, last)
    assert last["pc_loss"] < first["pc_loss"]  # the context model learns the symbols' statistics
    from rdbench.codecs.seeds.mentzer2018 import Mentzer2018Net

    sd = recipe.export(model, cfg)["checkpoint-final.pth"]
    Mentzer2018Net(Mentzer2018Net.channels_of(sd)).load_state_dict(sd)  # what mentzer2018:checkpoint= loads
    assert recipe.evaluate(model, [x[:1]], cfg)[0]["bpp"] >= 0


def test_gan_loss_forms():
    from rdbench.training.losses import feature_matching_loss, gan_d_loss, gan_g_loss

    real, fake = [torch.full((2, 1, 3, 3), 4.0)], [torch.full((2, 1, 3, 3), -4.0)]
    # a discriminator that separates well has a small loss; the generator it beats a large one
    assert float(gan_d_loss(real, fake, "ns")) < 0.05 and float(gan_g_loss(fake, "ns")) > 3.9
    assert float(gan_d_loss([torch.ones(1)], [torch.zeros(1)], "ls")) == 0.0
    assert float(gan_g_loss([torch.ones(1)], "ls")) == 0.0
    feats = [[torch.ones(2, 2), torch.zeros(3)]]
    assert float(feature_matching_loss(feats, feats)) == 0.0
    with pytest.raises(ValueError):
        gan_g_loss(fake, "wgan")


@pytest.mark.parametrize("gan", ["ls"])
def test_agustsson2019_gan_losses_fall(photo_folder, gan):
    """LS (or non-saturating) GAN + 12·MSE + 10·feature matching with a multiscale discriminator."""
    cfg = _cfg(photo_folder, "unused", codec="agustsson2019", lr=1e-3,
               model_args={"C": 2, "blocks": 1, "disc_channels": 4, "disc_scales": 2, "gan": gan})
    recipe = get_recipe("agustsson2019")
    x = _fixed_batch(photo_folder, 32, 2)
    torch.manual_seed(0)
    model = recipe.build(cfg)
    opts = recipe.optimizers(model, cfg)
    rows = [recipe.train_step(model, opts, x, cfg) for _ in range(3)]
    assert {"loss", "g_gan", "feature_matching", "d_loss", "mse"} <= set(rows[0])
    assert rows[-1]["loss"] < rows[0]["loss"] and rows[-1]["mse"] < rows[0]["mse"], rows
    assert all(np.isfinite(r["d_loss"]) for r in rows)
    from rdbench.codecs.seeds.agustsson2019 import GenerativeCompressionNet

    sd = recipe.export(model, cfg)["checkpoint-final.pth"]
    assert not any(k.startswith("disc") for k in sd)
    GenerativeCompressionNet(*GenerativeCompressionNet.shape_of(sd)).load_state_dict(sd)


def test_hific_loss_falls_and_exports_the_published_layout(photo_folder, tmp_path, monkeypatch):
    """Rate-targeted λ·R + k_M·MSE + β·non-saturating GAN (conditional discriminator) falls."""
    from rdbench.codecs.seeds import hific

    monkeypatch.setattr(hific, "ENCODER_FILTERS", (6, 8, 8, 12, 16))  # a narrow HiFiC: same layers, light
    cfg = _cfg(photo_folder, "unused", codec="hific", lr=1e-3, crop=128,
               model_args={"latent_channels": 8, "n_residual_blocks": 1, "disc_channels": 4, "lpips_weight": 0.0,
                           "regime": "low"})
    recipe = get_recipe("hific")
    from skimage import data

    im = np.array(Image.fromarray(data.astronaut()).resize((128, 128), Image.LANCZOS))
    x = torch.from_numpy(im).permute(2, 0, 1).float().div(255).unsqueeze(0).contiguous()
    torch.manual_seed(0)
    model = recipe.build(cfg)
    opts = recipe.optimizers(model, cfg)
    rows = [recipe.train_step(model, opts, x, cfg) for _ in range(5)]
    assert {"loss", "bpp", "mse", "g_gan", "d_loss"} <= set(rows[0])
    assert rows[-1]["loss"] < rows[0]["loss"], rows
    path = tmp_path / "hific.pth"
    torch.save(recipe.export(model, cfg)["checkpoint-final.pth"], path)
    from rdbench.codecs.seeds.hific import load_checkpoint, model_from_checkpoint

    sd, config, _ = load_checkpoint(path)  # what hific:checkpoint= reads
    model_from_checkpoint(sd, config, source=str(path))
    assert recipe.evaluate(model, [x], cfg)[0]["bpp"] > 0


def test_ms_ssim_loss_falls(photo_folder):
    cfg = _cfg(photo_folder, "unused", metric="ms-ssim", lmbda=8.73, lr=2e-3)
    recipe = get_recipe(cfg.codec)
    im = np.array(Image.open(photo_folder / "astronaut.png").convert("RGB").resize((176, 176)))
    x = torch.from_numpy(im).permute(2, 0, 1).float().div(255).unsqueeze(0).contiguous()
    torch.manual_seed(0)
    model = recipe.build(cfg)
    opts = recipe.optimizers(model, cfg)
    first = recipe.train_step(model, opts, x, cfg)
    for _ in range(5):
        last = recipe.train_step(model, opts, x, cfg)
    assert "ms_ssim" in last and last["loss"] < first["loss"]


def _log_rows(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in csv.DictReader(f)]


def test_kill_and_resume_follows_the_same_trajectory(photo_folder, tmp_path):
    """N steps in one go == k steps, a kill between checkpoints, a restart to N: same bits."""
    steps = 7
    extra = dict(steps=steps, entropy_lr=5e-3, lr_milestones=(3,))  # two parameter groups and a schedule
    whole = train(_cfg(photo_folder, tmp_path / "whole", **extra))
    assert whole["resumed_from"] == 0
    killed = train(_cfg(photo_folder, tmp_path / "killed", **extra), should_stop=lambda s: s == 5)
    assert killed.get("stopped") and not (tmp_path / "killed" / "checkpoint-final.pth").exists()
    doc = json.loads((tmp_path / "killed" / "config.json").read_text())
    assert doc["status"] == "running" and doc["completed_step"] == 4  # last checkpoint before the kill
    resumed = train(_cfg(photo_folder, tmp_path / "killed", **extra))
    assert resumed["resumed_from"] == 4

    a = torch.load(tmp_path / "whole" / "checkpoint-final.pth", weights_only=True)
    b = torch.load(tmp_path / "killed" / "checkpoint-final.pth", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    la = torch.load(tmp_path / "whole" / "checkpoint-last.pth", weights_only=True)
    lb = torch.load(tmp_path / "killed" / "checkpoint-last.pth", weights_only=True)
    assert la["step"] == lb["step"] == steps and la["sampler"]["position"] == steps
    assert torch.equal(la["rng"]["torch"], lb["rng"]["torch"])
    groups = la["optimizers"]["main"]["param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-4, 5e-4])  # base rates × 0.1 after step 3
    assert la["optimizers"]["main"]["state"].keys() == lb["optimizers"]["main"]["state"].keys()
    for i, s in la["optimizers"]["main"]["state"].items():
        assert torch.equal(s["exp_avg_sq"], lb["optimizers"]["main"]["state"][i]["exp_avg_sq"])
    # the log of the resumed run is the uninterrupted run's log (rows after the checkpoint redone once)
    assert _log_rows(tmp_path / "whole" / "log.csv") == _log_rows(tmp_path / "killed" / "log.csv")


def test_more_steps_continue_and_identity_is_checked(photo_folder, tmp_path):
    out = tmp_path / "run"
    train(_cfg(photo_folder, out, steps=2))
    assert json.loads((out / "config.json").read_text())["completed_step"] == 2
    assert train(_cfg(photo_folder, out, steps=2))["resumed_from"] == 2  # nothing left to do
    more = train(_cfg(photo_folder, out, steps=4))
    assert more["resumed_from"] == 2 and more["step"] == 4
    with pytest.raises(TrainingError, match="another configuration"):
        train(_cfg(photo_folder, out, steps=6, lmbda=0.02))


def test_outputs_and_final_checkpoint_load_as_codecs(photo_folder, tmp_path):
    from rdbench.codecs import get_codec

    out = tmp_path / "run"
    result = train(_cfg(photo_folder, out, steps=2))
    files = {p.name for p in out.iterdir()}
    assert {"checkpoint-last.pth", "checkpoint-final.pth", "config.json", "log.csv"} <= files
    state = torch.load(out / "checkpoint-last.pth", weights_only=True)  # resumable state is weights-only safe
    assert state["step"] == 2 and {"torch", "numpy", "python"} <= set(state["rng"])
    doc = json.loads((out / "config.json").read_text())
    assert doc["status"] == "done" and doc["codec_spec"] == result["codec_spec"]
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [r["kind"] for r in rows] == ["train", "train", "eval"]
    assert float(rows[-1]["psnr"]) > 0 and float(rows[-1]["bpp"]) > 0

    codec = get_codec(f"bmshj2018-factorized:checkpoint={out / 'checkpoint-final.pth'}")
    assert get_codec(result["codec_spec"]).spec == codec.spec
    image = np.asarray(Image.open(photo_folder / "coffee.png").convert("RGB"))[:80, :72]
    data = codec.encode(image, 1)
    decoded = codec.decode(data)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    assert np.array_equal(decoded, codec.decode(data))


def test_holdout_split_is_fixed_and_disjoint():
    train_idx, held = split_holdout(20, 3)
    assert len(held) == 3 and not set(train_idx) & set(held) and len(train_idx) + len(held) == 20
    assert split_holdout(20, 3) == (train_idx, held)
    assert split_holdout(1, 5) == ([0], [])


def test_sampler_is_a_function_of_seed_and_step(photo_folder):
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(photo_folder.glob("*.png"))]
    s = CropSampler(images, 32, 3, seed=1)
    assert np.array_equal(s.batch(5), CropSampler(images, 32, 3, seed=1).batch(5))
    assert not np.array_equal(s.batch(5), s.batch(6))
    with pytest.raises(ValueError, match="lower --crop"):
        CropSampler(images, 200, 3, seed=1)


def test_unknown_codec_is_a_clear_error(photo_folder, tmp_path):
    with pytest.raises(TrainingError, match="no training recipe"):
        train(_cfg(photo_folder, tmp_path / "x", codec="jpeg"))


def test_train_codec_luigi_task(photo_folder, tmp_path):
    import luigi

    from pipelines.training import TrainCodec

    params = dict(codec="bmshj2018-factorized", dataset=f"folder:{photo_folder}", lmbda=0.01, steps=2,
                  batch_size=2, crop=32, seed=0, device="cpu", output_dir=str(tmp_path / "run"),
                  model_args={"N": 8, "M": 8}, eval_images=1, eval_crop=64, log_every=1, eval_every=2,
                  checkpoint_every=1, threads=1)
    task = TrainCodec(**params)
    assert not task.complete()
    assert luigi.build([task], local_scheduler=True, log_level="WARNING")
    assert task.complete() and (tmp_path / "run" / "checkpoint-final.pth").exists()
    more = TrainCodec(**{**params, "steps": 3})
    assert not more.complete()
    assert luigi.build([more], local_scheduler=True, log_level="WARNING")
    assert more.complete()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["completed_step"] == 3


def test_train_codec_default_output_dir(tmp_path, monkeypatch):
    from pipelines.training import TrainCodec

    a = TrainCodec(codec="bmshj2018-factorized", dataset="folder:x", lmbda=0.01, steps=10).config()
    b = TrainCodec(codec="bmshj2018-factorized", dataset="folder:x", lmbda=0.01, steps=99).config()
    c = TrainCodec(codec="bmshj2018-factorized", dataset="folder:x", lmbda=0.02, steps=10).config()
    assert a.output_dir == b.output_dir != c.output_dir  # more steps continue the same run
    assert a.output_dir.startswith("codecs/bmshj2018-factorized/mse-lmbda0.01-seed0-")
