"""DISTS per image (Ding et al. 2020), computed by ``piq.DISTS`` from weights files the user supplies.

``piq.DISTS()`` fetches its two weights files itself on first use (torchvision's ImageNet VGG16
and piq's DISTS α/β parameters, through torch hub). rdbench never lets it: :class:`DistsMetric`
builds piq's DISTS module around weights located like LPIPS's (:class:`MetricWeights`):

* the VGG16 trunk, ``vgg16-397923af.pth`` (published by torchvision, SHA-256 prefix in its name):
  ``$RDBENCH_DISTS_BACKBONE``, else ``<weights root>/dists/``, else torch hub's ``checkpoints/``;
  downloaded into the weights root and checked only where LPIPS's weights would be (not with
  ``$RDBENCH_WEIGHTS_DOWNLOAD=0``);
* the α/β parameters, ``dists_weights.pt`` (piq's release file, a dict of two (1, 1475, 1, 1)
  tensors): ``$RDBENCH_DISTS_WEIGHTS``, else ``<weights root>/dists/``, else torch hub's
  ``checkpoints/`` (where piq caches it). No published SHA-256 is known to rdbench for it, so it
  is **never downloaded**, and used as found (its shapes are checked);

and :class:`~rdbench.metrics.perceptual.MetricWeightsUnavailableError` names the missing file,
where it comes from and where to put it. The value is then exactly ``piq.DISTS()``'s with the
same files: inputs scaled to [0, 1], resized by piq to 256 px on the short side when that is
longer (bilinear), ImageNet normalisation, VGG16 with L2 pooling, 1 − Σ α·structure + β·texture
(0 = identical; lower is better). float32, like piq. Details: docs/metrics.md, section DISTS.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rdbench.codecs.weights import ENV_ROOT, CheckpointError, RemoteFile, load_state_dict
from rdbench.metrics.perceptual import MetricWeights, MetricWeightsUnavailableError, torch_hub_checkpoint
from rdbench.metrics.psnr import check_pair

__all__ = [
    "DISTS_BACKBONE_WEIGHTS",
    "DISTS_PARAMETERS",
    "DistsMetric",
    "SuppliedMetricWeights",
    "dists_metric",
]


@dataclass(frozen=True)
class SuppliedMetricWeights(MetricWeights):
    """A weights file with no published SHA-256 to check a download against: never downloaded.

    Looked up like :class:`MetricWeights` (override variable, weights root, library caches) and
    used unverified; when it is nowhere, the error says where to get it and where to put it.
    """

    def locate(self, root: str | os.PathLike | None = None, *, download: bool | None = None) -> Path:
        override = os.environ.get(self.override_env) if self.override_env else None
        if override:
            if not Path(override).is_file():
                raise MetricWeightsUnavailableError(f"{self.description}: {self.override_env}={override} is not a file")
            return Path(override)
        local = self.remote.local_path(root)
        searched = []
        for candidate in (local, *self.library_copies()):
            if candidate is None:
                continue
            if candidate.is_file():
                return candidate
            searched.append(str(candidate))
        raise MetricWeightsUnavailableError(
            f"{self.description} is not available: file {self.filename} was not found (looked at "
            f"{', '.join(searched)}). rdbench does not download it (it knows no published SHA-256 to check "
            f"it against): download it from {self.remote.url} and save it as {local}, or set "
            f"{self.override_env} to its path (or {ENV_ROOT} to a folder that has "
            f"{self.remote.subdir}/{self.filename}).")


DISTS_BACKBONE_WEIGHTS = MetricWeights(
    "the VGG16 trunk of DISTS (torchvision's ImageNet VGG16 weights)",
    RemoteFile.from_url("https://download.pytorch.org/models/vgg16-397923af.pth", "dists"),
    lambda: (torch_hub_checkpoint("vgg16-397923af.pth"),),
    "RDBENCH_DISTS_BACKBONE",
)

DISTS_PARAMETERS = SuppliedMetricWeights(
    "the DISTS alpha/beta parameters (piq's dists_weights.pt)",
    RemoteFile("https://github.com/photosynthesis-team/piq/releases/download/v0.4.1/dists_weights.pt", "dists", ""),
    lambda: (torch_hub_checkpoint("dists_weights.pt"),),
    "RDBENCH_DISTS_WEIGHTS",
)

#: torchvision's VGG16 ``features`` (configuration D): conv widths, "M" = 2×2 max-pool.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
_CHANNELS = (3, 64, 128, 256, 512, 512)  # the input, then each layer's features


def _vgg16_features() -> torch.nn.Sequential:
    """VGG16's feature layers with torchvision's module indices (``features.N.weight``)."""
    layers: list[torch.nn.Module] = []
    channels = 3
    for width in _VGG16:
        if width == "M":
            layers.append(torch.nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [torch.nn.Conv2d(channels, width, kernel_size=3, padding=1), torch.nn.ReLU(inplace=True)]
            channels = width
    return torch.nn.Sequential(*layers)


def _piq_dists(features: torch.nn.Module, alpha: torch.Tensor, beta: torch.Tensor) -> torch.nn.Module:
    """piq's DISTS module around the given trunk and parameters.

    ``piq.DISTS.__init__`` only loads the two files (torch hub) and hands them to
    ``piq.ContentLoss.__init__``, whose ``feature_extractor`` may be a module: this does the same
    with the user's files; everything else (pooling, features, distance, forward) is piq's.
    """
    import piq
    from piq.perceptual import VGG16_LAYERS

    class _Dists(piq.DISTS):
        def __init__(self):  # noqa: D107 -- see _piq_dists
            weights = [*torch.split(alpha, list(_CHANNELS), dim=1), *torch.split(beta, list(_CHANNELS), dim=1)]
            piq.ContentLoss.__init__(self, features, layers=[VGG16_LAYERS[name] for name in _LAYERS],
                                     weights=weights, replace_pooling=True, reduction="none",
                                     normalize_features=False, allow_layers_weights_mismatch=True)

    return _Dists()


class DistsMetric:
    """DISTS: ``metric(a, b) -> float`` for two uint8 (H, W, 3) images (0 = identical).

    Build it once per worker (the weights are loaded here); calls are thread-safe. ``device``: a
    torch device. ``backbone`` / ``parameters``: explicit files (a torchvision VGG16 state dict
    with ``features.N.{weight,bias}``; a dict with ``alpha`` and ``beta``), loaded unverified; by
    default they are located as the module docstring says.
    """

    name = "dists"

    def __init__(self, device: str | torch.device = "cpu", *, backbone: str | os.PathLike | None = None,
                 parameters: str | os.PathLike | None = None, weights_root: str | os.PathLike | None = None,
                 download: bool | None = None):
        import piq

        backbone_path = Path(backbone) if backbone else DISTS_BACKBONE_WEIGHTS.locate(weights_root, download=download)
        parameters_path = Path(parameters) if parameters else DISTS_PARAMETERS.locate(weights_root, download=download)
        self.device = torch.device(device)
        self.weights = {"backbone": str(backbone_path), "parameters": str(parameters_path)}
        self.version = f"piq-{piq.__version__}-dists"

        features = _vgg16_features()
        expected = features.state_dict()
        state = {k[len("features."):]: v for k, v in load_state_dict(backbone_path).items()
                 if k.startswith("features.")}
        missing = [f"features.{k}" for k in expected if k not in state]
        if missing:
            raise CheckpointError(f"{backbone_path} is not a torchvision VGG16 state dict: "
                                  f"it lacks {', '.join(missing[:4])}")
        for key, value in expected.items():
            if tuple(state[key].shape) != tuple(value.shape):
                raise CheckpointError(f"{backbone_path}: features.{key} has shape {tuple(state[key].shape)}, "
                                      f"VGG16 has {tuple(value.shape)}")
        features.load_state_dict({k: state[k].to(torch.float32) for k in expected})

        params = load_state_dict(parameters_path)
        shape = (1, sum(_CHANNELS), 1, 1)
        for key in ("alpha", "beta"):
            if key not in params or tuple(params[key].shape) != shape:
                found = tuple(params[key].shape) if key in params else "nothing"
                raise CheckpointError(f"{parameters_path} is not the DISTS parameters: {key!r} must be a tensor of "
                                      f"shape {shape}, found {found}")
        model = _piq_dists(features, params["alpha"].to(torch.float32), params["beta"].to(torch.float32))
        self._model = model.eval().to(self.device)
        with torch.inference_mode():  # piq's L2 pooling builds its kernels on the first call
            blank = torch.zeros(1, 3, 32, 32, device=self.device)
            self._model(blank, blank)

    def _input(self, image: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
        return x.to(self.device, torch.float32) / 255.0

    def __call__(self, a: np.ndarray, b: np.ndarray) -> float:
        check_pair(a, b)
        with torch.inference_mode():
            # piq's argument order: (distorted x, reference y); DISTS is symmetric.
            return float(self._model(self._input(b), self._input(a))[0].item())


_cache: dict[tuple, DistsMetric] = {}
_cache_lock = threading.Lock()


def dists_metric(device: str | torch.device = "cpu", *, weights_root: str | os.PathLike | None = None) -> DistsMetric:
    """The process's :class:`DistsMetric` for ``device`` (built on first use, then shared)."""
    key = (str(torch.device(device)), str(weights_root or ""), os.environ.get(ENV_ROOT, ""),
           os.environ.get(DISTS_BACKBONE_WEIGHTS.override_env, ""), os.environ.get(DISTS_PARAMETERS.override_env, ""))
    with _cache_lock:
        metric = _cache.get(key)
        if metric is None:
            metric = _cache[key] = DistsMetric(device, weights_root=weights_root)
        return metric
