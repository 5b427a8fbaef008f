"""Shared fixtures: small real images made from the bundled sample photographs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rdbench.datasets import get_dataset
from rdbench.images import load_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """The `sample` photographs as uint8 RGB arrays, by id."""
    return {ref.image_id: load_image(ref.path) for ref in get_dataset("sample").images}


@pytest.fixture
def small_folder(tmp_path, photos) -> Path:
    """Three 176×208 crops of real photographs as PNG files (large enough for MS-SSIM)."""
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    names = ["astronaut", "coffee", "rocket"]
    for i, name in enumerate(names):
        crop = photos[name][40:216, 60:268]
        target = folder / ("sub" if i == 2 else "") / f"{name}.png"
        Image.fromarray(crop).save(target)
    return folder


def kodak_dir() -> Path:
    """../shared/kodak, or skip the calling test when it is absent."""
    path = SHARED / "kodak"
    if not (path / "kodim01.png").is_file():
        pytest.skip(f"real Kodak images not found at {path}")
    return path


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> Path:
    """torch-fidelity's Inception-v3 (the real architecture) with random weights, in a file.

    He-normal convolutions (with the batch norms at their identity statistics) keep the
    activations' scale through the depth, so the 2048-d features are well scaled, not vanishing.
    """
    import torch
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(1)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    state = dict(net.state_dict())
    state["fc.weight"] = torch.randn(1008, 2048) * 0.01  # torch-fidelity's graph has 1008 classes
    state["fc.bias"] = torch.zeros(1008)
    path = tmp_path_factory.mktemp("inception-random") / "inception.pth"
    torch.save(state, path)
    return path


@pytest.fixture(scope="session")
def lpips_reference(tmp_path_factory):
    """The lpips package's LPIPS (AlexNet, v0.1) with random trunk and linear weights, and the
    same weights saved as rdbench reads them (torchvision AlexNet layout; lpips layout)."""
    import warnings

    import torch

    lpips = pytest.importorskip("lpips")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = lpips.LPIPS(net="alex", pretrained=False, pnet_rand=True, verbose=False).eval()
    with torch.no_grad():  # non-negative, like the published linear weights
        for lin in reference.lins:
            lin.model[-1].weight.uniform_(0.0, 0.2)
    # The trunk's slices keep torchvision's layer indices: net.slice2.3.weight is features.3.weight.
    backbone = {f"features.{k.split('.', 1)[1]}": v for k, v in reference.net.state_dict().items()}
    linear = {k: v for k, v in reference.state_dict().items() if k.startswith("lin") and not k.startswith("lins.")}
    assert sorted(linear) == [f"lin{i}.model.1.weight" for i in range(5)]
    folder = tmp_path_factory.mktemp("lpips-random")
    torch.save(backbone, folder / "alexnet.pth")
    torch.save(linear, folder / "alex_v0.1.pth")
    return reference, folder / "alexnet.pth", folder / "alex_v0.1.pth"


def reference_lpips(model, a: np.ndarray, b: np.ndarray) -> float:
    """The lpips package's own value for uint8 images ``a``, ``b`` (inputs scaled as lpips.im2tensor)."""
    import torch

    def tensor(x):
        return torch.from_numpy(x.astype(np.float64) / 127.5 - 1.0).permute(2, 0, 1)[None].float()

    with torch.no_grad():
        return float(model(tensor(a), tensor(b)).item())
