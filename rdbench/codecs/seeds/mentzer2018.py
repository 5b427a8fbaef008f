"""``mentzer2018``: "Conditional Probability Models for Deep Image Compression" (Mentzer et al.,
CVPR 2018), a PyTorch port of fab-jul/imgcomp-cvpr.

An autoencoder with an importance map (C = 32, 32, 64 channels for qualities 1/2/3 = low/med/high)
whose symbols are range-coded under the 3-D masked context model, exactly and fast
(:mod:`rdbench.codecs.seeds.mentzer2018_coder`). Weights: ``checkpoint=`` or ``weights=random``
(no PyTorch weights were published). Layers and stream layout: docs/codecs.md, section mentzer2018.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rdbench.codecs import bitstream
from rdbench.codecs.base import CodecError, Encoded, Param
from rdbench.codecs.seeds import mentzer2018_coder as coder
from rdbench.codecs.learned import LearnedCodec, checkpoint_errors, checkpoint_identity, state_fingerprint
from rdbench.codecs.weights import load_state_dict, sha256sum

__all__ = ["CONFIGS", "Mentzer2018", "Mentzer2018Net", "ProbClass3D", "calibrate_batchnorm", "fit_context_model", "random_net"]

#: The seed's fixed normalisation (ImageNet statistics, RGB).
MEAN = (121.85369873, 113.58860779, 100.63715363)
VAR = (4746.37695312, 4454.13964844, 4812.234375)
NUM_CENTERS = 6
TRUNK_CHANNELS = 128
SUBSAMPLING = 8
#: quality → (configuration name, bottleneck channels C, rate target H_target in bits/symbol)
CONFIGS = {1: ("low", 32, 0.4), 2: ("med", 32, 1.2), 3: ("high", 64, 1.0)}
PRECISIONS = ("fp32", "bf16")


# -- building blocks ---------------------------------------------------------------------------


def _same_pad(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow SAME padding (before, after) of one dimension."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class ConvBN(nn.Module):
    """(Transposed) convolution without bias + batch norm (+ ReLU), TF ``SAME`` geometry."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, *, transpose: bool = False, relu: bool = True):
        super().__init__()
        conv = nn.ConvTranspose2d if transpose else nn.Conv2d
        self.conv = conv(cin, cout, k, stride, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.k, self.stride, self.transpose, self.relu = k, stride, transpose, relu
        self.fused = False

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        h, w = x.shape[-2:]
        if not self.transpose:
            (t, b), (l, r) = _same_pad(h, self.k, self.stride), _same_pad(w, self.k, self.stride)
            if t == b and l == r:  # the trunk's 3×3 convolutions: the convolution pads, no copy of x
                return F.conv2d(x, weight, bias, self.stride, padding=(t, l))
            return F.conv2d(F.pad(x, (l, r, t, b)), weight, bias, self.stride)
        y = F.conv_transpose2d(x, weight, bias, self.stride)
        crop = max(self.k - self.stride, 0) // 2  # TF keeps full[crop : crop + n·s]
        return y[..., crop : crop + h * self.stride, crop : crop + w * self.stride]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            y = self._conv(x, self.fused_weight, self.fused_bias)
        else:
            y = self.bn(self._conv(x, self.conv.weight, None))
        return F.relu(y) if self.relu else y

    def fuse_(self) -> None:
        """Fold the (eval-mode) batch norm into the convolution, for inference."""
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shape = (1, -1, 1, 1) if self.transpose else (-1, 1, 1, 1)
        weight = self.conv.weight * scale.reshape(shape)
        bias = bn.bias - bn.running_mean * scale
        # non-persistent buffers: they follow .to() but stay out of the state dict
        self.register_buffer("fused_weight", weight.detach().clone(), persistent=False)
        self.register_buffer("fused_bias", bias.detach().clone(), persistent=False)
        self.fused = True


class ResBlock(nn.Module):
    """conv-BN-ReLU, conv-BN, + x (``relu=False``: no ReLU at all, the trunk's final block)."""

    def __init__(self, n: int, relu: bool = True):
        super().__init__()
        self.conv1 = ConvBN(n, n, 3, relu=relu)
        self.conv2 = ConvBN(n, n, 3, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


class Trunk(nn.Module):
    """5 groups of 3 residual blocks (skip around each group), a final block, a global skip."""

    def __init__(self, n: int = TRUNK_CHANNELS, groups: int = 5, blocks: int = 3):
        super().__init__()
        self.groups = nn.ModuleList(nn.Sequential(*(ResBlock(n) for _ in range(blocks))) for _ in range(groups))
        self.final = ResBlock(n, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x
        for group in self.groups:
            x = x + group(x)
        return self.final(x) + skip


class Encoder(nn.Module):
    def __init__(self, C: int, n: int = TRUNK_CHANNELS):
        super().__init__()
        self.h1 = ConvBN(3, n // 2, 5, 2)
        self.h2 = ConvBN(n // 2, n, 5, 2)
        self.trunk = Trunk(n)
        self.to_bn = ConvBN(n, C + 1, 5, 2, relu=False)
        self.register_buffer("mean", torch.tensor(MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(VAR).add(1e-10).sqrt().reshape(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels 0–255 (N, 3, H, W) → bottleneck (N, C+1, H/8, W/8), channel 0 the importance map."""
        x = (x - self.mean) / self.std
        return self.to_bn(self.trunk(self.h2(self.h1(x))))


class Decoder(nn.Module):
    def __init__(self, C: int, n: int = TRUNK_CHANNELS):
        super().__init__()
        self.from_bn = ConvBN(C, n, 3, 2, transpose=True)
        self.trunk = Trunk(n)
        self.h12 = ConvBN(n, n // 2, 5, 2, transpose=True)
        self.h13 = ConvBN(n // 2, 3, 5, 2, transpose=True, relu=False)
        self.register_buffer("mean", torch.tensor(MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(VAR).add(1e-10).sqrt().reshape(1, 3, 1, 1), persistent=False)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        """Quantised volume (N, C, h, w) → pixels in [0, 255] (N, 3, 8h, 8w), float."""
        x = self.h13(self.h12(self.trunk(self.from_bn(q))))
        return (x * self.std + self.mean).clamp(0, 255)


class ProbClass3D(nn.Module):
    """The seed's ``res_shallow`` context model (float path, for training and reference).

    ``conv0`` 1→k (first mask), ``res_conv1`` k→k (ReLU), ``res_conv2`` k→k (+ skip),
    ``logits`` k→L (ReLU); kernels (2, 3, 3), the current channel is the last kernel depth.
    """

    def __init__(self, L: int = NUM_CENTERS, k: int = 24):
        super().__init__()
        self.conv0 = nn.Conv3d(1, k, (2, 3, 3))
        self.res_conv1 = nn.Conv3d(k, k, (2, 3, 3))
        self.res_conv2 = nn.Conv3d(k, k, (2, 3, 3))
        self.logits = nn.Conv3d(k, L, (2, 3, 3))
        for conv in self.convs():
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.register_buffer("first_mask", torch.from_numpy(coder.kernel_mask(first=True)), persistent=False)
        self.register_buffer("other_mask", torch.from_numpy(coder.kernel_mask(first=False)), persistent=False)

    def convs(self) -> list[nn.Conv3d]:
        return [self.conv0, self.res_conv1, self.res_conv2, self.logits]

    def forward(self, q: torch.Tensor, pad_value: torch.Tensor) -> torch.Tensor:
        """Values (N, C, H, W) → logits (N, L, C, H, W)."""
        p = coder.PAD
        x = F.pad(q - pad_value, (p, p, p, p, p, 0)) + pad_value  # pad with centres[0]
        x = x.unsqueeze(1)

        def conv(layer: nn.Conv3d, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return F.conv3d(x, layer.weight * mask, layer.bias)

        h0 = F.relu(conv(self.conv0, x, self.first_mask))
        h1 = F.relu(conv(self.res_conv1, h0, self.other_mask))
        h2 = conv(self.res_conv2, h1, self.other_mask) + h0[:, :, 2:, 2:-2, 2:-2]
        return F.relu(conv(self.logits, h2, self.other_mask))

    def layer_arrays(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(weight, bias) of each layer as float64 numpy arrays (masking is applied by the coder)."""
        return [(c.weight.detach().cpu().double().numpy(), c.bias.detach().cpu().double().numpy()) for c in self.convs()]


@dataclass
class Quantized:
    """What the encoder side knows about one image's bottleneck."""

    symbols: torch.Tensor  # (N, C, h, w) int64 centre indices
    nmap: torch.Tensor  # (N, h, w) int64 channel counts 0…C
    qbar: torch.Tensor  # (N, C, h, w) quantised values (straight-through soft path in training)
    heat3d: torch.Tensor  # (N, C, h, w) the importance mask


class Mentzer2018Net(nn.Module):
    """Autoencoder + importance map + learned centres + context model of one configuration."""

    def __init__(self, C: int, L: int = NUM_CENTERS):
        super().__init__()
        self.C, self.L = C, L
        self.encoder = Encoder(C)
        self.decoder = Decoder(C)
        self.centers = nn.Parameter(torch.empty(L).uniform_(-2.0, 2.0))
        self.probclass = ProbClass3D(L)

    @staticmethod
    def channels_of(state_dict: dict) -> int:
        """C, read off a state dict's tensors."""
        try:
            return int(state_dict["decoder.from_bn.conv.weight"].shape[0])
        except KeyError as exc:
            raise KeyError("decoder.from_bn.conv.weight (not a Mentzer2018Net state dict)") from exc

    def quantize(self, z: torch.Tensor) -> Quantized:
        """Bottleneck (N, C+1, h, w) → masked, quantised volume and the importance map."""
        z = z.float()
        C = self.C
        heat = torch.sigmoid(z[:, 0]) * C  # (N, h, w)
        k = torch.arange(C, dtype=z.dtype, device=z.device).reshape(1, C, 1, 1)
        heat3d = (heat.unsqueeze(1) - k).clamp(0, 1)
        zm = heat3d * z[:, 1:]
        dist = (zm.unsqueeze(-1) - self.centers) ** 2  # (N, C, h, w, L)
        symbols = dist.argmin(dim=-1)
        nmap = torch.ceil(heat).clamp(0, C).long()
        zero_symbol = int(torch.argmin(self.centers.detach().abs()))
        symbols = torch.where(k.long() < nmap.unsqueeze(1), symbols, torch.full_like(symbols, zero_symbol))
        hard = self.centers[symbols]
        soft = (torch.softmax(-dist, dim=-1) * self.centers).sum(-1)
        qbar = soft + (hard - soft).detach()
        return Quantized(symbols, nmap, qbar, heat3d)

    def bitcost(self, qbar: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        """Bits per symbol (N, C, h, w) under the (float) context model."""
        logits = self.probclass(qbar, self.centers[0])
        return F.cross_entropy(logits, symbols, reduction="none") / math.log(2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass: reconstruction and the seed's two rate terms (bits per symbol)."""
        q = self.quantize(self.encoder(x))
        bits = self.bitcost(q.qbar, q.symbols)
        return {
            "x_hat": self.decoder(q.qbar),
            "H_real": bits.mean(),
            "H_mask": (bits * q.heat3d).mean(),
            "symbols": q.symbols,
            "nmap": q.nmap,
        }

    def fuse_(self) -> "Mentzer2018Net":
        for m in self.modules():
            if isinstance(m, ConvBN):
                m.fuse_()
        return self


def _synthetic_image(size: int = 128, seed: int = 0) -> torch.Tensor:
    """A fixed, smooth, photo-like test pattern (N=1, 3, size, size) in 0–255, for BN calibration."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    img = torch.zeros(3, size, size)
    for c in range(3):
        for _ in range(6):
            fy, fx, ph = torch.rand(3, generator=g) * torch.tensor([12.0, 12.0, 6.3])
            img[c] += torch.sin(2 * math.pi * (fy * y + fx * x) + ph) * torch.rand(1, generator=g)
    img += 0.3 * torch.randn(3, size, size, generator=g)
    img = (img - img.mean()) / img.std()
    return (128 + 60 * img).clamp(0, 255).unsqueeze(0)


def random_net(C: int, seed: int) -> Mentzer2018Net:
    """An untrained network, seeded, with batch-norm statistics calibrated on a synthetic image."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Mentzer2018Net(C)
    calibrate_batchnorm(net, [_synthetic_image(seed=seed)])
    return net


def calibrate_batchnorm(net: Mentzer2018Net, batches) -> None:
    """Set every batch norm's running statistics to their average over ``batches``.

    ``batches``: (N, 3, H, W) float tensors of pixels 0–255. Train-mode passes with cumulative
    averaging, encoder and decoder (the decoder sees the quantised bottleneck). A cheap
    "sensible initialisation" for an untrained network: it gives every layer unit-scale
    activations on real photographs. Only for a network that is not fused.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    with torch.no_grad():
        for x in batches:
            q = net.quantize(net.encoder(x))
            net.decoder(q.qbar)
    for m in bns:
        m.momentum = 0.1
    net.eval()


def fit_context_model(net: Mentzer2018Net, volumes, steps: int, *, lr: float = 2e-3, batch: int = 8,
                      crop: int = 16, seed: int = 0, log=None) -> list[float]:
    """Train the context model alone (autoencoder and centres frozen) on coded symbols.

    ``volumes``: (symbols (C, h, w), importance map (h, w)) int64 numpy pairs, e.g. from
    :meth:`Mentzer2018.analyse` on training images. Minimises the cross-entropy (bits per coded
    symbol, channels k < n) of random ``crop``×``crop`` windows with Adam. Returns the loss of
    every step; ``log(step, loss)`` is called every 25 steps.
    """
    rng = np.random.default_rng(seed)
    params = list(net.probclass.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    centers = net.centers.detach()
    losses = []
    net.probclass.train()
    for step in range(steps):
        syms, masks = [], []
        for _ in range(batch):
            s, n = volumes[rng.integers(len(volumes))]
            h, w = n.shape
            ch, cw = min(crop, h), min(crop, w)
            i, j = rng.integers(h - ch + 1), rng.integers(w - cw + 1)
            s, n = s[:, i : i + ch, j : j + cw], n[i : i + ch, j : j + cw]
            syms.append(torch.from_numpy(np.ascontiguousarray(s)))
            masks.append(torch.from_numpy(np.arange(s.shape[0])[:, None, None] < n[None]))
        syms, masks = torch.stack(syms), torch.stack(masks)
        logits = net.probclass(centers[syms], centers[0])
        bits = F.cross_entropy(logits, syms, reduction="none") / math.log(2)
        loss = (bits * masks).sum() / masks.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if log is not None and (step % 25 == 0 or step == steps - 1):
            log(step, float(np.mean(losses[-25:])))
    net.probclass.eval()
    return losses


# -- the codec --------------------------------------------------------------------------------------


@dataclass
class _Model:
    net: Mentzer2018Net  # eval, BN fused, on the codec's device
    context: coder.FixedPointContextModel
    label: str
    tag: bytes


@dataclass
class Analysis:
    """The encoder side of one image: what is coded and what it costs."""

    symbols: np.ndarray  # (C, h, w) int64
    nmap: np.ndarray  # (h, w) int64
    padded_hw: tuple[int, int]
    timings: dict[str, float] = field(default_factory=dict)  # analysis wall / CPU seconds


def _file_hash(path: str) -> str:
    return sha256sum(path)[:8] if Path(path).is_file() else "missing"


class Mentzer2018(LearnedCodec[_Model]):
    """Mentzer et al. 2018: importance-masked autoencoder + 3-D context model, range coded."""

    name = "mentzer2018"
    PARAMS = {
        "weights": Param("checkpoint", "checkpoint= weights, or an untrained network", choices=("checkpoint", "random")),
        "checkpoint": Param("", "state dict of Mentzer2018Net; {quality} is replaced by the quality"),
        "seed": Param(0, "seed of weights=random", convert=int),
        "precision": Param("fp32", "dtype of the analysis/synthesis transforms", choices=PRECISIONS),
    }
    DEFAULT_QUALITIES = (1, 2, 3)

    def __init__(self, **params: Any):
        super().__init__(**params)
        #: per-stage seconds of the last compress / decode on this thread (for benchmarks)
        self.last_timings: dict[str, float] = {}

    # -- identity --------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        from importlib.metadata import version

        return (f"rdbench {self.name} res_shallow (torch {torch.__version__}, constriction "
                f"{version('constriction')} range coder, {self.params['precision']}) {self._weights_description()}")

    def _weights_description(self) -> str:
        if self.random_weights:
            return f"UNTRAINED (random init, seed {self.params['seed']}, BN calibrated on a synthetic image)"
        template = self.params["checkpoint"]
        if not template:
            return "no weights (pass checkpoint=PATH or weights=random)"
        paths = sorted({self._checkpoint_path(q) for q in self.DEFAULT_QUALITIES})
        return "checkpoint " + ", ".join(f"{p} sha256 {_file_hash(p)}" for p in paths)

    # -- weights -----------------------------------------------------------------------------------
    def _quality_error(self, quality: Any) -> str:
        return f"{self.name}: quality must be 1 (low), 2 (med) or 3 (high), got {quality!r}"

    def _load_model(self, quality: int) -> _Model:
        return self.model(quality)

    def model(self, quality: float) -> _Model:
        """The loaded network of one quality (built on first use, then cached)."""
        q = self._quality(quality)
        key = ("random", q, self.params["seed"]) if self.random_weights else ("file", self._checkpoint_path(q))
        return self._cached(key, self._build, q)

    def _build(self, quality: int) -> _Model:
        if self.random_weights:
            # low and med share C = 32; different seeds keep them distinct networks
            net = random_net(CONFIGS[quality][1], seed=self.params["seed"] * 10 + quality)
            label = self._weights_description()
        else:
            path = self._checkpoint_path(quality)
            if not path:
                raise CodecError(
                    f"{self.name} has no published PyTorch weights: pass checkpoint=PATH (a state dict of "
                    f"rdbench.codecs.seeds.mentzer2018.Mentzer2018Net) or weights=random")
            state = load_state_dict(path)
            with checkpoint_errors(path, "Mentzer2018Net", (KeyError, RuntimeError), CodecError):
                net = Mentzer2018Net(Mentzer2018Net.channels_of(state))
                net.load_state_dict(state, strict=True)
            label, _ = checkpoint_identity(path)
        net.eval().requires_grad_(False)
        tag = state_fingerprint(self.name, net)
        context = coder.FixedPointContextModel(net.probclass.layer_arrays(), net.centers.detach().double().numpy())
        net.fuse_()
        _place_net(net, self.device)
        return _Model(net, context, label, tag)

    def _place(self, model: _Model) -> None:
        """The analysis/synthesis transforms go to the device; the context model and coder stay exact on the CPU."""
        _place_net(model.net, self.device)

    # -- the transforms ------------------------------------------------------------------------------
    def _autocast(self):
        if self.params["precision"] == "bf16":
            return torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16)
        return torch.autocast(device_type="cpu", enabled=False)

    def analyse(self, image: np.ndarray, quality: float) -> Analysis:
        """Encoder side: the image's symbols and importance map (no entropy coding)."""
        image = _check_image(image)
        m = self.model(quality)
        h, w = image.shape[:2]
        ph, pw = -(-h // SUBSAMPLING) * SUBSAMPLING, -(-w // SUBSAMPLING) * SUBSAMPLING
        clock = _Stopwatch()
        with clock("analysis"), torch.inference_mode():
            x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).unsqueeze(0).float()
            if (ph, pw) != (h, w):
                x = F.pad(x, (0, pw - w, 0, ph - h), mode="replicate")
            x = x.to(self.device)
            if self.device == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                z = m.net.encoder(x)
            q = m.net.quantize(z.float())
            symbols = q.symbols[0].cpu().numpy().astype(np.int64)
            nmap = q.nmap[0].cpu().numpy().astype(np.int64)
        return Analysis(symbols, nmap, (ph, pw), clock.times)

    def synthesize(self, symbols: np.ndarray, quality: float) -> np.ndarray:
        """Decoder network: symbols (C, h, w) → padded uint8 image (8h, 8w, 3)."""
        m = self.model(quality)
        with torch.inference_mode():
            s = torch.from_numpy(np.asarray(symbols, dtype=np.int64)).unsqueeze(0).to(self.device)
            q = m.net.centers[s]
            if self.device == "cpu":
                q = q.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                x = m.net.decoder(q)
            x = x.float()[0].permute(1, 2, 0).round().clamp(0, 255)
            return x.to(torch.uint8).cpu().numpy()

    # -- the contract ----------------------------------------------------------------------------------
    def compress(self, image: np.ndarray, quality: float) -> Encoded:
        q = self._quality(quality)
        return self.entropy_encode(self.analyse(image, q), q, image.shape[:2])

    def entropy_encode(self, a: Analysis, quality: float, image_hw: tuple[int, int]) -> Encoded:
        """The coding half of :meth:`compress`: context model + range coding of an :class:`Analysis`.

        Sets :attr:`last_timings`: wall and CPU seconds (``<stage>``, ``<stage>_cpu``) of
        ``analysis``, ``context_model`` (all logits, one parallel pass) and ``entropy_coding``
        (probabilities, range coding of the symbols and of the importance map, container).
        """
        q = self._quality(quality)
        m = self.model(q)
        clock = _Stopwatch(dict(a.timings))
        C, hl, wl = a.symbols.shape
        with clock("context_model"):
            coded = np.arange(C)[:, None, None] < a.nmap[None]
            order, _ = coder.coding_order(coder.VolumeGrid(C, hl, wl), coded)
            logits = m.context.logits(a.symbols, order)
        with clock("entropy_coding"):
            coded_symbols = a.symbols.reshape(-1)[order]
            symbol_bytes = coder.encode_symbols(logits, coded_symbols)
            map_bytes, map_bits = coder.encode_importance_map(a.nmap, C)
            header = bitstream.Header(self.name, float(q), int(image_hw[0]), int(image_hw[1]), *a.padded_hw,
                                      shape=(C, hl, wl), tag=m.tag)
            data = bitstream.pack(header, [map_bytes, symbol_bytes])
        bits = coder.bits_of_logits(logits, coded_symbols) + map_bits
        self.last_timings = clock.times
        return Encoded(data, bits)

    def decode(self, data: bytes) -> np.ndarray:
        return self.decode_full(data).image

    def decode_full(self, data: bytes) -> "Decoded":
        """Decode a stream, keeping the decoded symbols and importance map.

        Sets :attr:`last_timings`: ``entropy_decoding`` (the map, and the range decoder's calls
        inside the wavefronts), ``context_model`` (the wavefront network evaluations) and
        ``synthesis``, wall and CPU (``_cpu``).
        """
        header, strings = bitstream.unpack(data)
        if header.codec != self.name:
            raise CodecError(f"not a {self.name} stream (written by {header.codec!r})")
        q = self._quality(header.quality)
        m = self.model(q)
        if header.tag != m.tag:
            raise CodecError(f"{self.name} stream was written with other weights (fingerprint "
                             f"{header.tag.hex()}, these weights {m.tag.hex()})")
        if len(header.shape) != 3 or len(strings) != 2:
            raise CodecError(f"corrupt {self.name} stream: shape {header.shape}, {len(strings)} strings")
        C, hl, wl = header.shape
        if C != m.net.C or (hl * SUBSAMPLING, wl * SUBSAMPLING) != (header.padded_height, header.padded_width):
            raise CodecError(f"corrupt {self.name} stream: latent {header.shape} does not fit the header/model")
        clock = _Stopwatch()
        try:
            with clock("entropy_decoding"):
                nmap = coder.decode_importance_map(strings[0], (hl, wl), C)
                symbol_decoder = coder.SymbolDecoder(strings[1])
            with clock("context_model"):
                coded = np.arange(C)[:, None, None] < nmap[None]
                symbols = m.context.decode((C, hl, wl), coded, symbol_decoder)
        except (ValueError, RuntimeError) as exc:
            raise CodecError(f"corrupt {self.name} stream: {exc}") from exc
        clock.move("context_model", "entropy_decoding", symbol_decoder.wall, symbol_decoder.cpu)
        with clock("synthesis"):
            image = np.ascontiguousarray(self.synthesize(symbols, q)[: header.height, : header.width])
        self.last_timings = clock.times
        return Decoded(image, symbols, nmap)

    def decode_symbols(self, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        """The entropy decoder alone: (symbols (C, h, w), importance map (h, w)) of a stream."""
        header, strings = bitstream.unpack(data)
        m = self.model(header.quality)
        C, hl, wl = header.shape
        nmap = coder.decode_importance_map(strings[0], (hl, wl), C)
        coded = np.arange(C)[:, None, None] < nmap[None]
        return m.context.decode((C, hl, wl), coded, coder.SymbolDecoder(strings[1])), nmap


@dataclass
class Decoded:
    image: np.ndarray  # uint8 (H, W, 3)
    symbols: np.ndarray  # (C, h, w)
    nmap: np.ndarray  # (h, w)


class _Stopwatch:
    """Wall and CPU seconds per named stage (``name``, ``name_cpu``)."""

    def __init__(self, times: dict[str, float] | None = None):
        self.times = times if times is not None else {}

    def __call__(self, name: str):
        import contextlib

        @contextlib.contextmanager
        def stage():
            w, c = time.perf_counter(), time.process_time()
            try:
                yield
            finally:
                self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - w
                self.times[name + "_cpu"] = self.times.get(name + "_cpu", 0.0) + time.process_time() - c

        return stage()

    def move(self, source: str, target: str, wall: float, cpu: float) -> None:
        """Book ``wall``/``cpu`` seconds measured inside ``source`` to ``target`` instead."""
        self.times[source] -= wall
        self.times[source + "_cpu"] -= cpu
        self.times[target] = self.times.get(target, 0.0) + wall
        self.times[target + "_cpu"] = self.times.get(target + "_cpu", 0.0) + cpu


def _place_net(net: Mentzer2018Net, device: str) -> None:
    """Move the network to ``device``; on CPUs the 2-D transforms run channels-last (oneDNN)."""
    net.to(device)
    for part in (net.encoder, net.decoder):
        part.to(memory_format=torch.channels_last if device == "cpu" else torch.contiguous_format)


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise CodecError(f"expected a uint8 (H, W, 3) image, got {getattr(image, 'dtype', type(image))} "
                         f"{getattr(image, 'shape', '')}")
    return image
