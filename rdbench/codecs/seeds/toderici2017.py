"""``toderici2017``: the full-resolution residual-GRU codec of Toderici et al. (CVPR 2017), in PyTorch.

Progressive: one encode gives 16 iterations of 32 bits per 16×16 block (0.125 bpp each), and the
first ``k`` iterations decode to quality ``k``, so one decoder pass yields every rate.
``entropy=on`` adds a lossless context-model coder. There are no published PyTorch weights:
``checkpoint=`` (a :class:`ResidualGRUNet` state dict) or ``weights=random``. Layers, bitstream
layout and why ``residual_gru.pb`` is not converted: docs/codecs.md, section toderici2017.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rdbench.codecs import bitstream
from rdbench.codecs.base import CodecError, Encoded, Param
from rdbench.codecs.learned import (
    check_image,
    LearnedCodec,
    checkpoint_errors,
    checkpoint_identity,
    describe_checkpoints,
    weights_tag,
)
from rdbench.codecs.weights import WeightsUnavailableError, load_state_dict

__all__ = ["Toderici2017", "ResidualGRUNet", "ConvGRUCell", "depth_to_space", "tf_same_pad"]

ITERATIONS = 16
BITS = 32  # bits per 16×16 block per iteration
BLOCK = 16  # the encoder's downsampling factor
PAD_MULTIPLE = 32  # what the seed requires of the image's sides
MODE_RAW, MODE_ENTROPY = 0, 1


# -- the network -------------------------------------------------------------------------


def tf_same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero-pad ``x`` as TensorFlow's ``SAME`` does (the extra pixel goes bottom/right)."""

    def amount(n: int) -> tuple[int, int]:
        total = max((-(-n // stride) - 1) * stride + kernel - n, 0)
        return total // 2, total - total // 2

    top, bottom = amount(x.shape[-2])
    left, right = amount(x.shape[-1])
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom))
    return x


class SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow ``SAME`` padding (odd and even kernels, any stride)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel, stride=stride, padding=0, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(tf_same_pad(x, self.kernel_size[0], self.stride[0]))


def depth_to_space(x: torch.Tensor, block: int = 2) -> torch.Tensor:
    """TensorFlow's ``depth_to_space``: input channel ``(dy·block + dx)·C + c`` → pixel (dy, dx) of c."""
    n, ch, h, w = x.shape
    c = ch // (block * block)
    x = x.view(n, block, block, c, h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(n, c, h * block, w * block)


class ConvGRUCell(nn.Module):
    """Convolutional GRU: z, r = σ(W·x + U·h); h' = (1−z)·h + z·tanh(W·x + U·(r⊙h)).

    ``conv_x`` holds the input kernels of z, r and the candidate (in that order along the
    output channels), ``conv_hg`` the hidden kernels of z and r, ``conv_hc`` the candidate's.
    With ``residual`` the cell outputs ``out_h(h') + out_x(x)`` and keeps ``h'`` as its state.
    """

    def __init__(self, in_channels: int, hidden: int, kernel: int, stride: int, hidden_kernel: int, residual: bool = False):
        super().__init__()
        self.hidden = hidden
        self.conv_x = SameConv2d(in_channels, 3 * hidden, kernel, stride)
        self.conv_hg = SameConv2d(hidden, 2 * hidden, hidden_kernel, bias=False)
        self.conv_hc = SameConv2d(hidden, hidden, hidden_kernel, bias=False)
        self.residual = residual
        if residual:
            self.out_x = SameConv2d(in_channels, hidden, kernel, stride, bias=False)
            self.out_h = SameConv2d(hidden, hidden, 1)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        xz, xr, xc = self.conv_x(x).chunk(3, dim=1)
        if h is None:  # zero state: the hidden convolutions (no bias) contribute nothing
            h_new = torch.sigmoid(xz) * torch.tanh(xc)
        else:
            hz, hr = self.conv_hg(h).chunk(2, dim=1)
            z = torch.sigmoid(xz + hz)
            r = torch.sigmoid(xr + hr)
            candidate = torch.tanh(xc + self.conv_hc(r * h))
            h_new = h + z * (candidate - h)
        out = self.out_h(h_new) + self.out_x(x) if self.residual else h_new
        return out, h_new


class Encoder(nn.Module):
    def __init__(self, residual: bool = False):
        super().__init__()
        self.conv = SameConv2d(3, 64, 3, 2)
        self.rnn1 = ConvGRUCell(64, 256, 3, 2, 1, residual)
        self.rnn2 = ConvGRUCell(256, 512, 3, 2, 1, residual)
        self.rnn3 = ConvGRUCell(512, 512, 3, 2, 1, residual)

    def forward(self, x, state):
        y = self.conv(x)
        new = []
        for rnn, h in zip((self.rnn1, self.rnn2, self.rnn3), state):
            y, h = rnn(y, h)
            new.append(h)
        return y, new


class Binarizer(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = SameConv2d(512, BITS, 1)

    def forward(self, x):
        return torch.where(torch.tanh(self.conv(x)) >= 0, 1.0, -1.0).to(x.dtype)


class Decoder(nn.Module):
    def __init__(self, residual: bool = False):
        super().__init__()
        self.conv1 = SameConv2d(BITS, 512, 1)
        self.rnn1 = ConvGRUCell(512, 512, 2, 1, 1, residual)
        self.rnn2 = ConvGRUCell(128, 512, 3, 1, 1, residual)
        self.rnn3 = ConvGRUCell(128, 256, 3, 1, 3, residual)
        self.rnn4 = ConvGRUCell(64, 128, 3, 1, 3, residual)
        self.conv2 = SameConv2d(32, 3, 1)

    def forward(self, b, state):
        y = self.conv1(b)
        new = []
        for rnn, h in zip((self.rnn1, self.rnn2, self.rnn3, self.rnn4), state):
            y, h = rnn(y, h)
            new.append(h)
            y = depth_to_space(y, 2)
        return self.conv2(y), new


class ResidualGRUNet(nn.Module):
    """Encoder, binarizer and decoder; state dict keys ``encoder.*``, ``binarizer.*``, ``decoder.*``."""

    def __init__(self, cell: str = "gru"):
        super().__init__()
        if cell not in ("gru", "residual-gru"):
            raise ValueError(f"cell must be 'gru' or 'residual-gru', got {cell!r}")
        self.cell = cell
        residual = cell == "residual-gru"
        self.encoder = Encoder(residual)
        self.binarizer = Binarizer()
        self.decoder = Decoder(residual)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, iterations: int) -> torch.Tensor:
        """Codes of ``iterations`` iterations for ``x`` (N, 3, H, W) in [−0.5, 0.5]: (T, N, 32, H/16, W/16), ±1."""
        enc_state: list = [None] * 3
        dec_state: list = [None] * 4
        recon = torch.zeros_like(x)
        residual = x
        codes = []
        for t in range(iterations):
            e, enc_state = self.encoder(residual, enc_state)
            b = self.binarizer(e)
            codes.append(b)
            if t + 1 < iterations:  # the last iteration's reconstruction is not needed
                out, dec_state = self.decoder(b, dec_state)
                recon = recon + out
                residual = x - recon
        return torch.stack(codes)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Reconstruction (N, 3, H, W) in the input's scale from codes (T, N, 32, h, w), ±1."""
        recon = None
        for recon in self.decode_steps(codes):
            pass
        return recon

    @torch.no_grad()
    def decode_steps(self, codes: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """The reconstruction after each iteration, from each iteration's codes (N, 32, h, w), ±1."""
        dec_state: list = [None] * 4
        recon = None
        for b in codes:
            out, dec_state = self.decoder(b, dec_state)
            recon = out if recon is None else recon + out
            yield recon

    @staticmethod
    def cell_of(state_dict: dict) -> str:
        """The cell variant a state dict was saved from."""
        return "residual-gru" if any(".out_h." in k for k in state_dict) else "gru"


# -- lossless coding of the bits -----------------------------------------------------------

_CTX = 54  # 3 (previous iteration) × 3 (previous channel) × 6 (neighbours; 5 = first pass)
_COUNT_LIMIT = 2048.0


def _bernoulli():
    import constriction

    return constriction.stream.model.Bernoulli(perfect=False)


class _BitModel:
    """The adaptive context model shared by the bit encoder and decoder (deterministic)."""

    def __init__(self, h: int, w: int):
        self.counts = np.zeros((_CTX, 2))
        parity = (np.add.outer(np.arange(h), np.arange(w)) % 2).ravel()
        self.phases = [np.flatnonzero(parity == p) for p in (0, 1)]
        self.h, self.w = h, w

    def contexts(self, prev: np.ndarray | None, cur: np.ndarray, c: int, phase: int) -> np.ndarray:
        """Context indices of the phase's positions of channel ``c``; ``cur`` holds what is known."""
        idx = self.phases[phase]
        a = prev[c].ravel()[idx].astype(np.int64) if prev is not None else np.full(idx.size, 2)
        d = cur[c - 1].ravel()[idx].astype(np.int64) if c > 0 else np.full(idx.size, 2)
        if phase == 0:
            n = np.full(idx.size, 5)
        else:  # all four neighbours of a second-pass bit were coded in the first pass
            p = np.pad(cur[c].astype(np.int64), 1, mode="reflect")
            n = (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]).ravel()[idx]
        return (a * 3 + d) * 6 + n

    def probabilities(self, ctx: np.ndarray) -> np.ndarray:
        n = self.counts[ctx]
        return (n[:, 1] + 0.5) / (n[:, 0] + n[:, 1] + 1.0)

    def update(self, ctx: np.ndarray, symbols: np.ndarray) -> None:
        ones = np.bincount(ctx, weights=symbols, minlength=_CTX)
        total = np.bincount(ctx, minlength=_CTX)
        self.counts[:, 1] += ones
        self.counts[:, 0] += total - ones
        full = self.counts.sum(axis=1) > _COUNT_LIMIT
        self.counts[full] *= 0.5


def encode_bits(bits: np.ndarray) -> tuple[list[bytes], list[float]]:
    """Entropy-code bits (T, 32, h, w) in {0, 1}: one byte string and its ideal size in bits per iteration."""
    import constriction

    _, channels, h, w = bits.shape
    model, family = _BitModel(h, w), _bernoulli()
    strings, ideal = [], []
    for t in range(bits.shape[0]):
        coder = constriction.stream.queue.RangeEncoder()
        prev = bits[t - 1] if t else None
        info = 0.0
        for c in range(channels):
            flat = bits[t, c].ravel()
            for phase in (0, 1):
                ctx = model.contexts(prev, bits[t], c, phase)
                symbols = flat[model.phases[phase]].astype(np.int32)
                p1 = model.probabilities(ctx)
                coder.encode(symbols, family, p1)
                info -= float(np.log2(np.where(symbols == 1, p1, 1.0 - p1)).sum())
                model.update(ctx, symbols)
        strings.append(coder.get_compressed().astype("<u4").tobytes())
        ideal.append(info)
    return strings, ideal


def decode_bits(strings: Sequence[bytes], h: int, w: int) -> np.ndarray:
    """Invert :func:`encode_bits`: bits (T, 32, h, w) as uint8."""
    bits = np.zeros((len(strings), BITS, h, w), dtype=np.uint8)
    for t, iteration in enumerate(iter_decode_bits(strings, h, w)):
        bits[t] = iteration
    return bits


def iter_decode_bits(strings: Iterable[bytes], h: int, w: int) -> Iterator[np.ndarray]:
    """The bits (32, h, w) of each iteration in turn, decoded only when asked for."""
    import constriction

    model, family = _BitModel(h, w), _bernoulli()
    prev = None
    for t, s in enumerate(strings):
        if len(s) % 4:
            raise CodecError(f"toderici2017: entropy-coded iteration {t + 1} is {len(s)} bytes, not whole 32-bit words")
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(s, dtype="<u4").astype(np.uint32))
        cur = np.zeros((BITS, h, w), dtype=np.uint8)
        for c in range(BITS):
            flat = cur[c].reshape(-1)  # a view: decoded bits land in ``cur``
            for phase in (0, 1):
                ctx = model.contexts(prev, cur, c, phase)
                symbols = np.asarray(decoder.decode(family, model.probabilities(ctx)), dtype=np.int32)
                flat[model.phases[phase]] = symbols
                model.update(ctx, symbols)
        yield cur
        prev = cur


# -- the codec ---------------------------------------------------------------------------------


@dataclass
class _Model:
    net: ResidualGRUNet
    label: str  # which weights, for ``version``
    tag: bytes  # 4-byte fingerprint of the weights, written into every stream


@dataclass
class _Stream:
    """A parsed, checked stream: header, iteration count, the weights it needs, its payload."""

    header: bitstream.Header
    k: int
    model: _Model
    strings: list[bytes]

    def is_prefix_of(self, other: "_Stream") -> bool:
        """Whether this stream is the first ``k`` iterations of ``other`` (same encode and weights)."""
        a, b = self.header, other.header
        if (a.height, a.width, a.shape, a.tag) != (b.height, b.width, b.shape, b.tag) or self.model is not other.model:
            return False
        if a.shape[1] == MODE_RAW:
            return other.strings[0][: len(self.strings[0])] == self.strings[0]
        return other.strings[: self.k] == self.strings


class Toderici2017(LearnedCodec[_Model]):
    """Residual-GRU codec; quality = iterations 1–16 (0.125 bpp each before entropy coding)."""

    name = "toderici2017"
    PARAMS = {
        "weights": Param("checkpoint", "checkpoint= weights, or an untrained network", choices=("checkpoint", "random")),
        "checkpoint": Param("", "state dict of ResidualGRUNet; {quality} is replaced by the quality"),
        "seed": Param(0, "seed of weights=random", convert=int),
        "cell": Param("gru", "GRU variant of weights=random", choices=("gru", "residual-gru")),
        "entropy": Param("off", "lossless context-model coding of the bits", choices=("off", "on")),
    }
    DEFAULT_QUALITIES = tuple(range(1, ITERATIONS + 1))
    progressive = True

    # -- identity ------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return f"rdbench {self.name} residual-GRU (torch {torch.__version__}) {self._weights_description()}"

    def _weights_description(self) -> str:
        if self.random_weights:
            return f"UNTRAINED (random init, seed {self.params['seed']}, cell {self.params['cell']})"
        template = self.params["checkpoint"]
        if not template:
            return "no weights (pass checkpoint=PATH or weights=random)"
        return describe_checkpoints(sorted({self._checkpoint_path(q) for q in self.DEFAULT_QUALITIES}))

    # -- weights -------------------------------------------------------------------------------
    def _quality_error(self, quality: Any) -> str:
        return f"{self.name}: quality is the iteration count, an integer 1–{ITERATIONS}; got {quality!r}"

    def _key(self, quality: int) -> str:
        return "random" if self.random_weights else self._checkpoint_path(quality)

    def _load_model(self, quality: int) -> _Model:
        return self._model(quality)

    def _model(self, quality: int) -> _Model:
        key = self._key(quality)
        return self._cached(key, self._build, key)

    def _build(self, key: str) -> _Model:
        if self.random_weights:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.params["seed"])
                net = ResidualGRUNet(self.params["cell"])
            label = self._weights_description()
            identity = f"random:{self.params['seed']}:{self.params['cell']}"
        else:
            if not key:
                raise WeightsUnavailableError(
                    f"{self.name} has no published PyTorch weights: pass checkpoint=PATH (a state dict of "
                    f"rdbench.codecs.seeds.toderici2017.ResidualGRUNet) or weights=random"
                )
            state = load_state_dict(key)
            net = ResidualGRUNet(ResidualGRUNet.cell_of(state))
            with checkpoint_errors(key, f"{self.name} (ResidualGRUNet)"):
                net.load_state_dict(state, strict=True)
            label, identity = checkpoint_identity(key)
        net.eval().requires_grad_(False).to(self.device)
        return _Model(net, label, weights_tag(self.name, identity))

    def _place(self, model: _Model) -> None:
        model.net.to(self.device)

    # -- coding -----------------------------------------------------------------------------------
    def compress(self, image: np.ndarray, quality: float) -> Encoded:
        return self.compress_ladder(image, [quality])[0]

    def compress_ladder(self, image: np.ndarray, qualities: Sequence[float]) -> list[Encoded]:
        """Every quality from one encode (per weights file) of max(qualities) iterations."""
        check_image(self.name, image)
        ks = [self._quality(q) for q in qualities]
        h, w = image.shape[:2]
        ph, pw = _padded(h), _padded(w)
        out: list[Encoded | None] = [None] * len(ks)
        groups: dict[str, list[int]] = {}
        for i, k in enumerate(ks):
            groups.setdefault(self._key(k), []).append(i)
        for idx in groups.values():
            model = self._model(ks[idx[0]])
            bits = self.encode_bits(image, max(ks[i] for i in idx), model)
            entropy = self.params["entropy"] == "on"
            if entropy:
                strings, ideal = encode_bits(bits)
            for i in idx:
                k = ks[i]
                header = bitstream.Header(self.name, float(k), h, w, ph, pw, (BITS, MODE_ENTROPY if entropy else MODE_RAW), model.tag)
                if entropy:
                    out[i] = Encoded(bitstream.pack(header, strings[:k]), float(sum(ideal[:k])))
                else:
                    payload = np.packbits(bits[:k].reshape(-1)).tobytes()
                    out[i] = Encoded(bitstream.pack(header, [payload]), float(bits[:k].size))
        return out  # type: ignore[return-value]

    def encode_bits(self, image: np.ndarray, iterations: int, model: _Model | None = None) -> np.ndarray:
        """The codes of ``iterations`` iterations as bits (T, 32, padded H/16, padded W/16), uint8 0/1."""
        model = model or self._model(iterations)
        h, w = image.shape[:2]
        x = torch.tensor(image).to(self.device).permute(2, 0, 1)[None].float()
        x = F.pad(x / 255.0 - 0.5, (0, _padded(w) - w, 0, _padded(h) - h), mode="replicate")
        codes = model.net.encode(x, iterations)[:, 0]
        return (codes > 0).to(torch.uint8).cpu().numpy()

    def decode(self, data: bytes) -> np.ndarray:
        stream = self._parse(data)
        (_, image), = self._decode_steps(stream, {stream.k})
        return image

    def decode_ladder(self, streams: Sequence[bytes]) -> Iterator[tuple[int, np.ndarray]]:
        """Decode a ladder in one pass per encode: the longest stream, yielding every rate on the way.

        The quality-k stream of an encode is a prefix of the quality-16 one (see the module
        docstring), and k decoder iterations on it are exactly the first k of the longer stream's,
        so one pass of max(k) iterations gives every rate (16 iterations for the full ladder
        instead of 1 + 2 + … + 16 = 136). A stream that is not a prefix of a longer one in the
        ladder (another encode or other weights) gets its own pass.
        """
        parsed = [self._parse(data) for data in streams]
        pending = set(range(len(parsed)))
        while pending:
            longest = parsed[max(pending, key=lambda i: (parsed[i].k, -i))]
            members = [i for i in sorted(pending) if parsed[i].is_prefix_of(longest)]
            pending -= set(members)
            by_k: dict[int, list[int]] = {}
            for i in members:
                by_k.setdefault(parsed[i].k, []).append(i)
            for k, image in self._decode_steps(longest, set(by_k)):
                for n, i in enumerate(by_k[k]):
                    yield i, image if n == 0 else image.copy()

    def _parse(self, data: bytes) -> "_Stream":
        """Check a stream's header against this codec and its weights; the stream's parts."""
        header, strings, k = self.unpack_stream(data)
        ph, pw = header.padded_height, header.padded_width
        if ph % PAD_MULTIPLE or pw % PAD_MULTIPLE or ph != _padded(header.height) or pw != _padded(header.width):
            raise CodecError(f"{self.name}: padded size {ph}x{pw} does not fit image {header.height}x{header.width}")
        if len(header.shape) != 2 or header.shape[0] != BITS or header.shape[1] not in (MODE_RAW, MODE_ENTROPY):
            raise CodecError(f"{self.name}: unsupported stream layout {header.shape}")
        model = self._model(k)
        if header.tag != model.tag:
            raise CodecError(f"{self.name}: the stream was encoded with other weights than {model.label!r}")
        bh, bw = ph // BLOCK, pw // BLOCK
        if header.shape[1] == MODE_RAW:
            expected = k * BITS * bh * bw // 8
            if len(strings) != 1 or len(strings[0]) != expected:
                raise CodecError(f"{self.name}: expected one payload of {expected} bytes for {k} iterations")
        elif len(strings) != k:
            raise CodecError(f"{self.name}: expected {k} entropy-coded iterations, got {len(strings)}")
        return _Stream(header, k, model, list(strings))

    def _decode_steps(self, stream: "_Stream", ks: set[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Run the decoder over ``stream``'s iterations; yield (k, image) after each k in ``ks``."""
        header, model = stream.header, stream.model
        bh, bw = header.padded_height // BLOCK, header.padded_width // BLOCK
        if header.shape[1] == MODE_RAW:
            bits = np.unpackbits(np.frombuffer(stream.strings[0], dtype=np.uint8)).reshape(stream.k, BITS, bh, bw)
        else:
            bits = iter_decode_bits(stream.strings, bh, bw)
        codes = (torch.from_numpy(b.astype(np.float32) * 2 - 1)[None].to(self.device) for b in bits)
        last = max(ks)
        for k, recon in enumerate(model.net.decode_steps(codes), start=1):
            if k in ks:
                yield k, self._pixels(recon, header.height, header.width)
            if k == last:
                return

    @staticmethod
    def _pixels(recon: torch.Tensor, height: int, width: int) -> np.ndarray:
        x_hat = recon[0, :, :height, :width]
        pixels = ((x_hat + 0.5) * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0)
        return np.ascontiguousarray(pixels.cpu().numpy())

    def decode_bits(self, bits: np.ndarray, height: int, width: int, model: _Model | None = None) -> np.ndarray:
        """Reconstruct an image from bits (T, 32, h, w) and crop it to ``height`` × ``width``."""
        model = model or self._model(bits.shape[0])
        codes = torch.from_numpy(bits.astype(np.float32) * 2 - 1)[:, None].to(self.device)
        return self._pixels(model.net.decode(codes), height, width)


def _padded(n: int) -> int:
    return -(-n // PAD_MULTIPLE) * PAD_MULTIPLE

