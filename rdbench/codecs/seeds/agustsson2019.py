"""``agustsson2019``: extreme generative compression (Agustsson et al., ICCV 2019), global model, as
the public TensorFlow port Justin-Tan/generative-compression builds it, in PyTorch.

An encoder to ``C`` ∈ {2, 4, 8, 16} channels (the quality) at 1/16 resolution, 5 fixed centres and
a generator. Symbols are range-coded adaptively, so ``bpp`` is the real cost, not the paper's
fixed ``C·log2(5)/256`` (:func:`fixed_rate_bpp`). Weights: ``checkpoint=`` or ``weights=random``
(with ``noise=`` channels). Layers and stream layout: docs/codecs.md, section agustsson2019.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rdbench.codecs import bitstream
from rdbench.codecs.base import CodecError, CodecSpecError, Encoded, Param
from rdbench.codecs.learned import (
    check_image,
    LearnedCodec,
    checkpoint_errors,
    checkpoint_identity,
    describe_checkpoints,
    weights_tag,
)
from rdbench.codecs.weights import CheckpointError, WeightsUnavailableError, load_state_dict

__all__ = ["Agustsson2019", "GenerativeCompressionNet", "fixed_rate_bpp", "encode_symbols", "decode_symbols"]

CHANNELS = (2, 4, 8, 16)
CENTERS = (-2.0, -1.0, 0.0, 1.0, 2.0)
LEVELS = len(CENTERS)
DOWNSAMPLING = 16
MIN_SIZE = 32  # instance norm needs more than one latent pixel
NOISE_SEED = 2019
EPS = 1e-6


def fixed_rate_bpp(channels: int) -> float:
    """The rate the paper quotes: C symbols of log2(5) bits per 16×16 block."""
    return channels * math.log2(LEVELS) / DOWNSAMPLING**2


# -- the network -------------------------------------------------------------------------


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, eps=EPS, affine=True)


class DownConv(nn.Conv2d):
    """conv 3×3 stride 2 with TensorFlow ``SAME`` padding (bottom/right for even sizes)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 3, stride=2, padding=0)

    def forward(self, x):
        h, w = x.shape[-2:]
        pad_h, pad_w = max((-(-h // 2) - 1) * 2 + 3 - h, 0), max((-(-w // 2) - 1) * 2 + 3 - w, 0)
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return super().forward(x)


class UpConv(nn.ConvTranspose2d):
    """conv-transpose 3×3 stride 2 with TensorFlow ``SAME`` output (2n, the first 2n of 2n+1)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 3, stride=2, padding=0)

    def forward(self, x):
        h, w = x.shape[-2:]
        return super().forward(x)[..., : 2 * h, : 2 * w]


class ReflectConv(nn.Conv2d):
    """Reflect-pad by kernel//2, then a stride-1 convolution."""

    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__(cin, cout, kernel, padding=0)

    def forward(self, x):
        p = self.kernel_size[0] // 2
        return super().forward(F.pad(x, (p, p, p, p), mode="reflect"))


class Encoder(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv_in = ReflectConv(3, 60, 7)
        self.norm_in = _norm(60)
        widths = (60, 120, 240, 480, 960)
        self.down = nn.ModuleList(DownConv(a, b) for a, b in zip(widths, widths[1:]))
        self.down_norm = nn.ModuleList(_norm(b) for b in widths[1:])
        self.conv_out = ReflectConv(960, channels, 3)
        self.norm_out = _norm(channels)

    def forward(self, x):
        y = F.relu(self.norm_in(self.conv_in(x)))
        for conv, norm in zip(self.down, self.down_norm):
            y = F.relu(norm(conv(y)))
        return F.relu(self.norm_out(self.conv_out(y)))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ReflectConv(channels, channels, 3)
        self.norm1 = _norm(channels)
        self.conv2 = ReflectConv(channels, channels, 3)
        self.norm2 = _norm(channels)

    def forward(self, x):
        return x + self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x)))))


class Generator(nn.Module):
    def __init__(self, in_channels: int, blocks: int = 9):
        super().__init__()
        self.conv_in = ReflectConv(in_channels, 960, 3)
        self.norm_in = _norm(960)
        self.blocks = nn.ModuleList(ResidualBlock(960) for _ in range(blocks))
        widths = (960, 480, 240, 120, 60)
        self.up = nn.ModuleList(UpConv(a, b) for a, b in zip(widths, widths[1:]))
        self.up_norm = nn.ModuleList(_norm(b) for b in widths[1:])
        self.conv_out = ReflectConv(60, 3, 7)

    def forward(self, w):
        y = F.relu(self.norm_in(self.conv_in(w)))
        for block in self.blocks:
            y = block(y)
        for conv, norm in zip(self.up, self.up_norm):
            y = F.relu(norm(conv(y)))
        return torch.tanh(self.conv_out(y))


class GenerativeCompressionNet(nn.Module):
    """``encoder.*`` and ``generator.*``; the quantiser has no parameters."""

    def __init__(self, channels: int, noise: int = 0, blocks: int = 9):
        super().__init__()
        self.channels, self.noise, self.blocks = channels, noise, blocks
        self.encoder = Encoder(channels)
        self.generator = Generator(channels + noise, blocks)
        self.register_buffer("centers", torch.tensor(CENTERS), persistent=False)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Symbols (N, C, H/16, W/16), int64 0–4, for ``x`` in [−1, 1]."""
        w = self.encoder(x)
        return (w[..., None] - self.centers).abs().argmin(dim=-1)

    @torch.no_grad()
    def decode(self, symbols: torch.Tensor) -> torch.Tensor:
        """Image in [−1, 1] from symbols (N, C, h, w)."""
        w_hat = self.centers[symbols]
        if self.noise:
            g = torch.Generator().manual_seed(NOISE_SEED)
            n, _, h, w = symbols.shape
            v = torch.randn(n, self.noise, h, w, generator=g).to(w_hat.device)
            w_hat = torch.cat([w_hat, v], dim=1)
        return self.generator(w_hat)

    @staticmethod
    def shape_of(state_dict: dict) -> tuple[int, int, int]:
        """(C, noise channels, residual blocks) of a state dict."""
        try:
            c = int(state_dict["encoder.conv_out.weight"].shape[0])
            cin = int(state_dict["generator.conv_in.weight"].shape[1])
        except KeyError as exc:
            raise CheckpointError(f"not a GenerativeCompressionNet state dict: no {exc.args[0]}") from exc
        blocks = {int(k.split(".")[2]) for k in state_dict if k.startswith("generator.blocks.")}
        return c, cin - c, max(blocks) + 1 if blocks else 0


# -- adaptive entropy coding of the symbols --------------------------------------------------

_CONTEXTS = LEVELS + 1  # the symbol above, or none (first row)
_ALPHA = 0.5
_COUNT_LIMIT = 4096.0


def _categorical():
    import constriction

    return constriction.stream.model.Categorical(perfect=False)


def encode_symbols(symbols: np.ndarray) -> tuple[bytes, float]:
    """Code symbols (C, h, w) in 0–4; returns the bytes and the model's −Σlog2 p."""
    import constriction

    channels, h, w = symbols.shape
    coder = constriction.stream.queue.RangeEncoder()
    family = _categorical()
    info = 0.0
    for c in range(channels):
        counts = np.zeros((_CONTEXTS, LEVELS))
        for i in range(h):
            ctx = symbols[c, i - 1].astype(np.int64) if i else np.full(w, LEVELS)
            row = symbols[c, i].astype(np.int32)
            probs = _probabilities(counts, ctx)
            coder.encode(row, family, probs)
            info -= float(np.log2(probs[np.arange(w), row]).sum())
            _update(counts, ctx, row)
    return coder.get_compressed().astype("<u4").tobytes(), info


def decode_symbols(data: bytes, channels: int, h: int, w: int) -> np.ndarray:
    """Invert :func:`encode_symbols`."""
    import constriction

    if len(data) % 4:
        raise CodecError(f"agustsson2019: the payload is {len(data)} bytes, not whole 32-bit words")
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
    family = _categorical()
    symbols = np.zeros((channels, h, w), dtype=np.int64)
    for c in range(channels):
        counts = np.zeros((_CONTEXTS, LEVELS))
        for i in range(h):
            ctx = symbols[c, i - 1] if i else np.full(w, LEVELS)
            row = np.asarray(decoder.decode(family, _probabilities(counts, ctx)), dtype=np.int64)
            symbols[c, i] = row
            _update(counts, ctx, row)
    return symbols


def _probabilities(counts: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    n = counts[ctx] + _ALPHA
    return n / n.sum(axis=1, keepdims=True)


def _update(counts: np.ndarray, ctx: np.ndarray, row: np.ndarray) -> None:
    np.add.at(counts, (ctx, row), 1.0)
    full = counts.sum(axis=1) > _COUNT_LIMIT
    counts[full] *= 0.5


# -- the codec ---------------------------------------------------------------------------------


@dataclass
class _Model:
    net: GenerativeCompressionNet
    label: str
    tag: bytes


class Agustsson2019(LearnedCodec[_Model]):
    """Generative compression, global model; quality = bottleneck channels C (2, 4, 8, 16)."""

    name = "agustsson2019"
    PARAMS = {
        "weights": Param("checkpoint", "checkpoint= weights, or an untrained network", choices=("checkpoint", "random")),
        "checkpoint": Param("", "state dict of GenerativeCompressionNet; {quality} is replaced by C"),
        "seed": Param(0, "seed of weights=random", convert=int),
        "noise": Param(0, "noise channels of weights=random", convert=int),
    }
    DEFAULT_QUALITIES = CHANNELS

    def __init__(self, **params: Any):
        super().__init__(**params)
        if not 0 <= self.params["noise"] <= 256:
            raise CodecSpecError(f"codec {self.name!r}: noise={self.params['noise']} is not 0–256")

    # -- identity ------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return f"rdbench {self.name} generative compression (torch {torch.__version__}) {self._weights_description()}"

    def _weights_description(self) -> str:
        if self.random_weights:
            return f"UNTRAINED (random init, seed {self.params['seed']}, noise {self.params['noise']})"
        template = self.params["checkpoint"]
        if not template:
            return "no weights (pass checkpoint=PATH or weights=random)"
        paths = [self._checkpoint_path(c) for c in CHANNELS] if "{quality}" in template else [template]
        return describe_checkpoints(paths)

    # -- weights -------------------------------------------------------------------------------
    def _quality_error(self, quality: Any) -> str:
        return f"{self.name}: quality is the bottleneck channels C, one of {CHANNELS}; got {quality!r}"

    def _load_model(self, quality: int) -> _Model:
        return self._model(quality)

    def _model(self, channels: int) -> _Model:
        return self._cached(channels, self._build, channels)

    def _build(self, channels: int) -> _Model:
        if self.random_weights:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.params["seed"] * 1000 + channels)
                net = GenerativeCompressionNet(channels, self.params["noise"])
            label = f"UNTRAINED (random init, seed {self.params['seed']}, noise {self.params['noise']})"
            identity = f"random:{self.params['seed']}:{channels}:{self.params['noise']}"
        else:
            path = self._checkpoint_path(channels)
            if not path:
                raise WeightsUnavailableError(
                    f"{self.name} has no published PyTorch weights: pass checkpoint=PATH (a state dict of "
                    f"rdbench.codecs.seeds.agustsson2019.GenerativeCompressionNet, {{quality}} = C) or weights=random"
                )
            state = load_state_dict(path)
            c, noise, blocks = GenerativeCompressionNet.shape_of(state)
            if c != channels:
                raise CheckpointError(f"{path} holds a C={c} model, but quality (C) {channels} was asked for")
            net = GenerativeCompressionNet(c, noise, blocks)
            with checkpoint_errors(path, f"{self.name} (GenerativeCompressionNet)"):
                net.load_state_dict(state, strict=True)
            label, identity = checkpoint_identity(path)
        net.eval().requires_grad_(False).to(self.device)
        return _Model(net, label, weights_tag(self.name, identity))

    def _place(self, model: _Model) -> None:
        model.net.to(self.device)

    # -- coding -----------------------------------------------------------------------------------
    def encode_symbols(self, image: np.ndarray, channels: int) -> np.ndarray:
        """The quantised representation of ``image``: symbols (C, padded H/16, padded W/16), 0–4."""
        model = self._model(channels)
        check_image(self.name, image)
        h, w = image.shape[:2]
        x = torch.tensor(image).to(self.device).permute(2, 0, 1)[None].float()
        x = F.pad(x / 127.5 - 1.0, (0, _padded(w) - w, 0, _padded(h) - h), mode="replicate")
        return model.net.encode(x)[0].cpu().numpy()

    def compress(self, image: np.ndarray, quality: float) -> Encoded:
        c = self._quality(quality)
        model = self._model(c)
        symbols = self.encode_symbols(image, c)
        payload, info = encode_symbols(symbols)
        h, w = image.shape[:2]
        header = bitstream.Header(self.name, float(c), h, w, _padded(h), _padded(w), (c, model.net.noise), model.tag)
        return Encoded(bitstream.pack(header, [payload]), info)

    def decode(self, data: bytes) -> np.ndarray:
        header, strings, c = self.unpack_stream(data)
        ph, pw = header.padded_height, header.padded_width
        if (ph, pw) != (_padded(header.height), _padded(header.width)):
            raise CodecError(f"{self.name}: padded size {ph}x{pw} does not fit image {header.height}x{header.width}")
        model = self._model(c)
        if header.tag != model.tag:
            raise CodecError(f"{self.name}: the stream was encoded with other weights than {model.label!r}")
        if header.shape != (c, model.net.noise) or len(strings) != 1:
            raise CodecError(f"{self.name}: unsupported stream layout {header.shape} with {len(strings)} string(s)")
        symbols = decode_symbols(strings[0], c, ph // DOWNSAMPLING, pw // DOWNSAMPLING)
        return self.decode_symbols(symbols, header.height, header.width, c)

    def decode_symbols(self, symbols: np.ndarray, height: int, width: int, channels: int | None = None) -> np.ndarray:
        """Generate the image from symbols (C, h, w) and crop it to ``height`` × ``width``."""
        model = self._model(channels or symbols.shape[0])
        s = torch.from_numpy(np.asarray(symbols, dtype=np.int64))[None].to(self.device)
        with torch.no_grad():
            y = model.net.decode(s)[0, :, :height, :width]
            pixels = ((y + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0)
        return np.ascontiguousarray(pixels.cpu().numpy())


def _padded(n: int) -> int:
    return max(-(-n // DOWNSAMPLING) * DOWNSAMPLING, MIN_SIZE)
