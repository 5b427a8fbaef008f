"""LPIPS per image (AlexNet, v0.1), and where the weights of the learned metrics (LPIPS, FID/KID) come from.

LPIPS equals ``lpips.LPIPS(net='alex', version='0.1')`` to ~1e-7, on the whole image (at least
:data:`LPIPS_MIN_SIZE` px). Weights files are looked up in the weights root, then the libraries'
caches, then downloaded, and SHA-256-checked; :func:`require_metric_weights` fails a run before any
work when one is missing. Files are read with ``torch.load(weights_only=True)``. Details:
docs/metrics.md, sections LPIPS and Weights of the learned metrics.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rdbench.codecs.weights import (
    ENV_DOWNLOAD,
    ENV_MIRROR,
    ENV_ROOT,
    CheckpointError,
    RemoteFile,
    WeightsIntegrityError,
    WeightsUnavailableError,
    downloads_enabled,
    load_state_dict,
    verify_file,
)
from rdbench.metrics.psnr import ImageTooSmallError
from rdbench.metrics.psnr import check_pair

__all__ = [
    "ALEXNET_WEIGHTS",
    "INCEPTION_WEIGHTS",
    "LPIPS_LINEAR_WEIGHTS",
    "LPIPS_MIN_SIZE",
    "LpipsMetric",
    "MetricWeights",
    "MetricWeightsUnavailableError",
    "lpips_metric",
    "require_metric_weights",
]


class MetricWeightsUnavailableError(WeightsUnavailableError):
    """The weights a metric needs (LPIPS, FID/KID) are not available on this machine."""


# -- weights lookup (shared with rdbench.metrics.setlevel) -------------------------------------


def torch_hub_checkpoint(filename: str) -> Path:
    """Where torch hub (torchvision, torch-fidelity) caches ``filename``: ``<hub dir>/checkpoints/``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package (found without importing it), or None."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class MetricWeights:
    """One published weights file a metric needs, and where it may already be on this machine."""

    description: str  # what the file is, for messages
    remote: RemoteFile  # URL, weights-root sub-folder, SHA-256 (or the prefix in its name)
    #: Other places that may hold the same file (library caches), as a function (they depend on
    #: the environment at call time, e.g. $TORCH_HOME).
    library_copies: Callable[[], Sequence[Path | None]] = field(default=lambda: (), compare=False)
    #: Environment variable naming a user-supplied file to use instead (not hash-checked: your
    #: own or retrained weights, or test weights); worker processes inherit it.
    override_env: str = ""

    @property
    def filename(self) -> str:
        return self.remote.filename

    def locate(self, root: str | os.PathLike | None = None, *, download: bool | None = None) -> Path:
        """The verified local path of the file (see the module docstring for the search order).

        Raises :class:`MetricWeightsUnavailableError` when it is nowhere and cannot be downloaded,
        :class:`~rdbench.codecs.weights.WeightsIntegrityError` when the copy in the weights root is
        not the published file (a library cache's copy that is not is passed over, and named in
        the error if nothing else is found).
        """
        override = os.environ.get(self.override_env) if self.override_env else None
        if override:
            if not Path(override).is_file():
                raise MetricWeightsUnavailableError(
                    f"{self.description}: {self.override_env}={override} is not a file")
            return Path(override)
        local = self.remote.local_path(root)
        if local.is_file():
            verify_file(local, self.remote.sha256)
            return local
        searched = [str(local)]
        for copy in self.library_copies():
            if copy is None:
                continue
            if copy.is_file():
                try:
                    verify_file(copy, self.remote.sha256)
                    return copy
                except WeightsIntegrityError:  # another version or a damaged cache: not ours to fix
                    searched.append(f"{copy} (present, but not the published file)")
                    continue
            searched.append(str(copy))
        if downloads_enabled(download):
            try:
                return self.remote.fetch(root, download=True)
            except WeightsUnavailableError as exc:
                reason = f"the download failed ({exc.__cause__ or exc})"
        else:
            reason = f"downloads are disabled ({ENV_DOWNLOAD}=0)"
        raise MetricWeightsUnavailableError(
            f"{self.description} is not available: file {self.filename} was not found "
            f"(looked at {', '.join(searched)}) and {reason}. "
            f"Download it from {self.remote.url} and save it as {local} "
            f"(or set {ENV_ROOT} to a folder that has {self.remote.subdir}/{self.filename}, "
            f"or {ENV_MIRROR} to a server that has it)."
        )


ALEXNET_WEIGHTS = MetricWeights(
    "the AlexNet trunk of LPIPS (torchvision's ImageNet AlexNet weights)",
    RemoteFile("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "lpips",
               "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02"),
    lambda: (torch_hub_checkpoint("alexnet-owt-7be5be79.pth"),),
    "RDBENCH_LPIPS_BACKBONE",
)

LPIPS_LINEAR_WEIGHTS = MetricWeights(
    "the linear layers of LPIPS v0.1 (AlexNet)",
    RemoteFile("https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/alex.pth",
               "lpips", "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"),
    lambda: (package_file("lpips", "weights/v0.1/alex.pth"),),
    "RDBENCH_LPIPS_LINEAR",
)

INCEPTION_WEIGHTS = MetricWeights(
    "the Inception-v3 network of FID/KID (the TF 2015-12-05 graph, torch-fidelity's port)",
    RemoteFile.from_url(
        "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
        "fid"),
    lambda: (torch_hub_checkpoint("weights-inception-2015-12-05-6726825d.pth"),),
    "RDBENCH_INCEPTION_WEIGHTS",
)

def require_metric_weights(metrics: Sequence[str], weights_root: str | os.PathLike | None = None, *,
                           download: bool | None = None) -> dict[str, Path]:
    """Locate every weights file ``metrics`` need (file name → verified path), before any work.

    Metrics without weights (psnr_rgb, ms_ssim_rgb, …) need nothing. Raises
    :class:`MetricWeightsUnavailableError` for the first missing file, and ``ImportError`` when FID
    or KID is asked for without the torch-fidelity package.
    """
    from rdbench.metrics.registry import get_metric

    found: dict[str, Path] = {}
    for metric in metrics:
        for weights in get_metric(metric).weights_files():
            if weights.filename not in found:
                found[weights.filename] = weights.locate(weights_root, download=download)
    if any(get_metric(m).level == "set" for m in metrics) and importlib.util.find_spec("torch_fidelity") is None:
        raise ImportError("FID/KID need the torch-fidelity package: pip install 'torch-fidelity>=0.4,<0.5'")
    return found


# -- LPIPS ---------------------------------------------------------------------------------------

#: AlexNet's convolutions as LPIPS uses them: (torchvision state-dict index, stride, padding),
#: with a 3×3/2 max-pool before the second and the third.
_CONVS = ((0, 4, 2), (3, 1, 2), (6, 1, 1), (8, 1, 1), (10, 1, 1))
_CHANNELS = (64, 192, 384, 256, 256)
_POOL_BEFORE = (1, 2)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10
#: The shortest side LPIPS (AlexNet) accepts: conv 11/4 (pad 2) and two 3×3/2 pools must leave
#: one position at the fifth layer.
LPIPS_MIN_SIZE = 31


def _load_tensors(path: str | os.PathLike, keys: Sequence[str], what: str) -> list[torch.Tensor]:
    state = load_state_dict(path)
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(
            f"{path} is not {what}: it lacks {', '.join(missing[:4])}{'…' if len(missing) > 4 else ''} "
            f"(it has {', '.join(list(state)[:6])}…)")
    return [state[k].detach().to(torch.float32) for k in keys]


class LpipsMetric:
    """LPIPS v0.1 with AlexNet: ``metric(a, b) -> float`` for two uint8 (H, W, 3) images.

    Build it once per worker (the weights are loaded here) and call it for every pair; calls are
    thread-safe. ``device``: a torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    ``backbone`` / ``linear``: explicit weights files (a torchvision AlexNet state dict with
    ``features.{0,3,6,8,10}.{weight,bias}``; the LPIPS linear layers ``lin{0..4}.model.1.weight``),
    loaded unverified; by default the published files are located as the module docstring says.
    """

    name = "lpips"
    version = "lpips-0.1-alex"

    def __init__(self, device: str | torch.device = "cpu", *, backbone: str | os.PathLike | None = None,
                 linear: str | os.PathLike | None = None, weights_root: str | os.PathLike | None = None,
                 download: bool | None = None):
        root = weights_root
        backbone_path = Path(backbone) if backbone else ALEXNET_WEIGHTS.locate(root, download=download)
        linear_path = Path(linear) if linear else LPIPS_LINEAR_WEIGHTS.locate(root, download=download)
        self.device = torch.device(device)
        self.weights = {"backbone": str(backbone_path), "linear": str(linear_path)}

        conv_keys = [f"features.{i}.{p}" for i, _, _ in _CONVS for p in ("weight", "bias")]
        tensors = _load_tensors(backbone_path, conv_keys, "an AlexNet state dict (torchvision layout)")
        lins = _load_tensors(linear_path, [f"lin{k}.model.1.weight" for k in range(5)],
                             "the LPIPS linear layers (lpips package layout)")
        self._convs = []
        for k, (_, stride, padding) in enumerate(_CONVS):
            weight, bias = tensors[2 * k], tensors[2 * k + 1]
            if weight.shape[0] != _CHANNELS[k]:
                raise CheckpointError(f"{backbone_path}: conv {k} has {weight.shape[0]} channels, "
                                      f"AlexNet has {_CHANNELS[k]}")
            self._convs.append((weight.to(self.device), bias.to(self.device), stride, padding))
        self._lins = []
        for k, weight in enumerate(lins):
            if tuple(weight.shape) != (1, _CHANNELS[k], 1, 1):
                raise CheckpointError(f"{linear_path}: lin{k} has shape {tuple(weight.shape)}, "
                                      f"expected (1, {_CHANNELS[k]}, 1, 1)")
            self._lins.append(weight.to(self.device))
        self._shift = torch.tensor(_SHIFT, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._scale = torch.tensor(_SCALE, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    def _input(self, image: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
        x = x.to(self.device, torch.float32) / 127.5 - 1.0  # [-1, 1], as lpips.im2tensor
        return (x - self._shift) / self._scale

    def _layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for k, (weight, bias, stride, padding) in enumerate(self._convs):
            if k in _POOL_BEFORE:
                x = F.max_pool2d(x, kernel_size=3, stride=2)
            x = F.relu(F.conv2d(x, weight, bias, stride=stride, padding=padding))
            outputs.append(x)
        return outputs

    def __call__(self, a: np.ndarray, b: np.ndarray) -> float:
        check_pair(a, b)
        height, width = a.shape[:2]
        if min(height, width) < LPIPS_MIN_SIZE:
            raise ImageTooSmallError(
                f"image is {width}x{height} px (WxH), but LPIPS (AlexNet) needs both sides >= "
                f"{LPIPS_MIN_SIZE} px")
        with torch.inference_mode():
            x = torch.cat([self._input(a), self._input(b)])
            total = torch.zeros((), dtype=torch.float32, device=self.device)
            for features, lin in zip(self._layers(x), self._lins):
                norm = torch.sqrt(torch.sum(features * features, dim=1, keepdim=True))
                unit = features / (norm + _EPS)
                diff = (unit[0:1] - unit[1:2]) ** 2
                total = total + F.conv2d(diff, lin).mean()
            return float(total.item())


_cache: dict[tuple, LpipsMetric] = {}
_cache_lock = threading.Lock()


def lpips_metric(device: str | torch.device = "cpu", *, weights_root: str | os.PathLike | None = None) -> LpipsMetric:
    """The process's :class:`LpipsMetric` for ``device`` (built on first use, then shared)."""
    key = (str(torch.device(device)), str(weights_root or ""), os.environ.get(ENV_ROOT, ""))
    with _cache_lock:
        metric = _cache.get(key)
        if metric is None:
            metric = _cache[key] = LpipsMetric(device, weights_root=weights_root)
        return metric
