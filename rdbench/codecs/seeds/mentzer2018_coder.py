"""Exact, fast entropy coding for ``mentzer2018``'s 3-D masked context model and importance map.

The context model runs in fixed point, where float64 sums are exact in any order, so encoder and
decoder derive bit-identical probabilities on any machine. The decoder walks wavefronts of
T = 4d + 2i + j with cached activations (≈ 370 steps for a Kodak volume instead of 196,608
network evaluations). Why and how: docs/codecs.md, section mentzer2018.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal, getcontext

import numpy as np
import torch

__all__ = [
    "ACT_FRAC",
    "W_FRAC",
    "FixedPointContextModel",
    "VolumeGrid",
    "decode_importance_map",
    "encode_importance_map",
    "probability_rows",
    "bits_of_logits",
]

#: Fraction bits of activations (and of the symbol values fed to the first layer).
ACT_FRAC = 14
#: Fraction bits of weights; biases use ACT_FRAC + W_FRAC.
W_FRAC = 18
ACT_LIMIT = float(2**21)  # |activation| ≤ 128
W_LIMIT = float(2**21)  # |weight| ≤ 8
B_LIMIT = float(2**39)  # |bias| ≤ 128
_RESCALE = 2.0**-W_FRAC

#: exp table resolution: logit differences are floored to 1/1024 nat.
EXP_FRAC = 10
EXP_RANGE_NATS = 32
_EXP_SHIFT = ACT_FRAC - EXP_FRAC

# Masked taps of the (2, 3, 3) kernels as (Δdepth, Δrow, Δcol); Δdepth −1 is the previous
# channel (all 9 taps), 0 the current one (causal: rows above, and left of the centre; the
# first layer excludes the centre, the others include it).
PREV_TAPS = tuple((-1, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
FIRST_TAPS = PREV_TAPS + ((0, -1, -1), (0, -1, 0), (0, -1, 1), (0, 0, -1))
OTHER_TAPS = FIRST_TAPS + ((0, 0, 0),)
#: Each layer's activations extend this far beyond the volume (VALID convs on a 4-padded input).
PAD = 4


def _one_torch_thread(fn, *args):
    """Run ``fn`` with one torch (intra-op) thread: the context model's matrix products are
    small (a wavefront) or chunked, and multi-threaded BLAS on small products is slower, badly
    so on a loaded machine. The results are exact integers either way."""
    before = torch.get_num_threads()
    if before == 1:
        return fn(*args)
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(before)


def kernel_mask(first: bool) -> np.ndarray:
    """The (2, 3, 3) 0/1 mask of a layer's kernel (depth index 1 is the current channel)."""
    mask = np.zeros((2, 3, 3), dtype=np.float32)
    for dd, dy, dx in FIRST_TAPS if first else OTHER_TAPS:
        mask[dd + 1, dy + 1, dx + 1] = 1
    return mask


# -- exact probabilities -----------------------------------------------------------------------


def _exp_table() -> np.ndarray:
    """round-ish(2^40 · exp(−k/1024)) for k = 0 … 32·1024, by integer recursion only.

    The step factor is computed with :mod:`decimal` (correctly rounded, platform independent)
    and the table with Python integers, so every machine builds the same table.
    """
    getcontext().prec = 40
    one = 1 << 40
    factor = int((Decimal(-1) / (1 << EXP_FRAC)).exp() * one + Decimal("0.5"))
    n = EXP_RANGE_NATS << EXP_FRAC
    table = [one]
    v = one
    for _ in range(n):
        v = (v * factor + (one >> 1)) >> 40
        table.append(v)
    return np.array(table, dtype=np.float64)


_EXP = _exp_table()


def probability_rows(logits: np.ndarray) -> np.ndarray:
    """Unnormalised integer probability rows (float64) for integer logits (scale 2^-14).

    ``logits`` is (n, L) float64 holding exact integers; the result is exp(logit − max)
    through :data:`_EXP`, identical wherever it is computed.
    """
    lg = logits.astype(np.int64)
    diff = (lg.max(axis=1, keepdims=True) - lg) >> _EXP_SHIFT
    np.minimum(diff, len(_EXP) - 1, out=diff)
    return _EXP[diff]


def bits_of_logits(logits: np.ndarray, symbols: np.ndarray) -> float:
    """−Σ log2 softmax(logits)[symbol]: the model's own cross-entropy of the symbols."""
    if len(symbols) == 0:
        return 0.0
    x = logits * 2.0**-ACT_FRAC
    x = x - x.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(x).sum(axis=1))
    return float(np.sum(log_z - x[np.arange(len(symbols)), symbols]) / np.log(2))


# -- the fixed-point network --------------------------------------------------------------------


@dataclass
class _Layer:
    taps: tuple[tuple[int, int, int], ...]
    weight: np.ndarray  # (ntaps * cin, cout) float64 integers, row = tap * cin + c
    bias: np.ndarray  # (cout,) float64 integers at 2^-(ACT_FRAC + W_FRAC)
    relu: bool

    def __post_init__(self) -> None:
        self.weight_t = torch.from_numpy(self.weight)
        self.cin = self.weight.shape[0] // len(self.taps)


def _quantize_layer(weight: np.ndarray, bias: np.ndarray, first: bool, relu: bool) -> _Layer:
    """(cout, cin, 2, 3, 3) float weights → the masked taps as one integer matrix."""
    weight = np.asarray(weight, dtype=np.float64)
    cout, cin = weight.shape[:2]
    taps = FIRST_TAPS if first else OTHER_TAPS
    rows = [weight[:, :, dd + 1, dy + 1, dx + 1].T for dd, dy, dx in taps]  # (cin, cout) each
    w = np.concatenate(rows, axis=0)
    w = np.clip(np.rint(w * 2.0**W_FRAC), -W_LIMIT, W_LIMIT)
    b = np.clip(np.rint(np.asarray(bias, dtype=np.float64) * 2.0 ** (ACT_FRAC + W_FRAC)), -B_LIMIT, B_LIMIT)
    assert w.shape == (len(taps) * cin, cout)
    return _Layer(taps, np.ascontiguousarray(w), b, relu)


class VolumeGrid:
    """Index arithmetic of a (C, H, W) volume padded by :data:`PAD` (front and spatially).

    Every layer's activations are stored on this grid, flattened, so a tap is a constant
    offset of the flat index and a wavefront is a list of flat indices.
    """

    def __init__(self, C: int, H: int, W: int):
        self.C, self.H, self.W = C, H, W
        self.D, self.Hg, self.Wg = C + PAD, H + 2 * PAD, W + 2 * PAD
        self.size = self.D * self.Hg * self.Wg

    def offsets(self, taps) -> np.ndarray:
        return np.array([(dd * self.Hg + dy) * self.Wg + dx for dd, dy, dx in taps], dtype=np.int64)

    def layer_positions(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices of layer ``layer``'s activations (0…3) and their times T = 4d + 2i + j.

        Layer ℓ is defined on depths ℓ−3 … C−1 and rows/cols ℓ−3 … H+2−ℓ (in volume
        coordinates); layer 3 is the logits, one per symbol.
        """
        lo = layer - 3
        d = np.arange(lo, self.C)
        i = np.arange(lo, self.H + 2 - layer + 1)
        j = np.arange(lo, self.W + 2 - layer + 1)
        dd, ii, jj = np.meshgrid(d, i, j, indexing="ij")
        flat = ((dd + PAD) * self.Hg + (ii + PAD)) * self.Wg + (jj + PAD)
        return flat.ravel(), (4 * dd + 2 * ii + jj).ravel()

    def volume_flat(self) -> np.ndarray:
        """Flat grid indices of the volume's own positions, (C, H, W) order."""
        return self.layer_positions(3)[0].reshape(self.C, self.H, self.W)


def coding_order(grid: VolumeGrid, coded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The coded positions (indices into the (C,H,W) volume, raveled) sorted by (T, position),
    and the T of each."""
    C, H, W = coded.shape
    d, i, j = np.meshgrid(np.arange(C), np.arange(H), np.arange(W), indexing="ij")
    t = (4 * d + 2 * i + j).ravel()
    pos = np.flatnonzero(coded.ravel())
    order = pos[np.argsort(t[pos], kind="stable")]
    return order, t[order]


class _Window:
    """The rows [base, base + size) of one layer's activations on the flat grid (encoder sweep)."""

    def __init__(self, size: int, channels: int):
        self.data = torch.zeros((size, channels), dtype=torch.float64)
        self.base = 0

    def ensure(self, lo: int, hi: int) -> None:
        """Make rows lo…hi−1 addressable, keeping rows ≥ lo that are held already."""
        lo = max(lo, 0)
        if lo >= self.base and hi - self.base <= len(self.data):
            return
        if hi - lo > len(self.data):
            raise ValueError("window too small")
        keep = self.data[max(lo - self.base, 0) :].clone()
        self.data[: len(keep)] = keep
        self.base = lo

    def rows(self, i: int, j: int) -> torch.Tensor:
        return self.data[i - self.base : j - self.base]


class FixedPointContextModel:
    """The res_shallow context model in exact fixed point (see the module docstring).

    ``layers``: four (weight (cout, cin, 2, 3, 3), bias (cout,)) pairs in the order conv0,
    res conv1, res conv2, logits conv; ``centers``: the L quantisation centres.
    """

    def __init__(self, layers, centers: np.ndarray):
        if len(layers) != 4:
            raise ValueError("res_shallow has 4 masked conv layers")
        (w0, b0), (w1, b1), (w2, b2), (w3, b3) = layers
        self.layers = [
            _quantize_layer(w0, b0, first=True, relu=True),
            _quantize_layer(w1, b1, first=False, relu=True),
            _quantize_layer(w2, b2, first=False, relu=False),  # + skip from layer 0
            _quantize_layer(w3, b3, first=False, relu=True),  # the seed's logits pass a ReLU
        ]
        self.channels = [lay.weight.shape[1] for lay in self.layers]
        centers = np.asarray(centers, dtype=np.float64)
        self.L = len(centers)
        self.center_values = np.clip(np.rint(centers * 2.0**ACT_FRAC), -ACT_LIMIT, ACT_LIMIT)
        #: symbol of masked positions: the centre nearest zero (what 0·z quantises to)
        self.zero_symbol = int(np.argmin(np.abs(centers)))
        self.pad_value = self.center_values[0]

    def _input(self, grid: VolumeGrid, values: np.ndarray) -> np.ndarray:
        x = np.full((grid.D, grid.Hg, grid.Wg), self.pad_value, dtype=np.float64)
        x[PAD:, PAD:-PAD, PAD:-PAD] = values
        return x.reshape(-1, 1)

    # -- encoder: every logit at once ---------------------------------------------------------
    def logits(self, symbols: np.ndarray, positions: np.ndarray, chunk: int = 4096,
               workers: int | None = None) -> np.ndarray:
        """Integer logits (n, L) of the volume ``symbols`` (C, H, W) at ``positions``
        (raveled volume indices): every layer over the whole volume, in one sweep.

        Every tap offset is ≤ 0 in the flat grid index, so one sweep in increasing flat index
        can compute all four layers chunk by chunk, each reading only the last
        ``Hg·Wg + Wg + 1`` rows of the layer below: activations live in windows of about one
        channel slice (memory O(H·W), cache-resident), not in (C, H, W) arrays. Within a
        chunk a layer is evaluated one tap at a time on contiguous slices (no gathering), over
        a contiguous range (positions outside a layer's domain are computed too and never
        read); each layer-chunk is split over ``workers`` threads (default: torch's thread
        count, at most 4).
        """
        if workers is None:
            workers = max(1, min(torch.get_num_threads(), 4))
        if workers == 1:
            return _one_torch_thread(self._logits, symbols, positions, chunk, None)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            return _one_torch_thread(self._logits, symbols, positions, chunk, pool)

    def _logits(self, symbols, positions, chunk, pool):
        C, H, W = symbols.shape
        grid = VolumeGrid(C, H, W)
        x = torch.from_numpy(self._input(grid, self.center_values[symbols]))
        offsets = [grid.offsets(lay.taps) for lay in self.layers]
        reach = -min(int(o.min()) for o in offsets)
        spans = []
        for k in range(4):
            flat, _ = grid.layer_positions(k)
            spans.append((int(flat[0]), int(flat[-1]) + 1))
        windows = [_Window(reach + 4 * chunk, c) for c in self.channels[:3]]
        # where each wanted logit lives: sorted by flat index, to fill chunk by chunk
        target = grid.volume_flat().ravel()[positions]
        by_flat = np.argsort(target, kind="stable")
        target_sorted = target[by_flat]
        out = np.empty((len(target), self.L), dtype=np.float64)
        start, stop = spans[0]
        for s in range(start, stop, chunk):
            e = min(s + chunk, stop)
            for w in windows:
                w.ensure(s - reach, e)
            for k in range(4):
                a, b = max(s, spans[k][0]), min(e, spans[k][1])
                if a >= b:
                    continue
                src = (lambda i, j: x[i:j]) if k == 0 else windows[k - 1].rows
                skip = windows[0].rows(a, b) if k == 2 else None
                if k < 3:
                    dst = windows[k].rows(a, b)
                else:
                    dst = torch.empty((b - a, self.L), dtype=torch.float64)
                self._dense(k, src, dst, a, b, offsets[k], skip, pool)
                if k == 3:
                    i, j = np.searchsorted(target_sorted, [a, b])
                    out[by_flat[i:j]] = dst.numpy()[target_sorted[i:j] - a]
        return out

    def _dense(self, k, src, dst, a, b, offsets, skip, pool) -> None:
        """Layer ``k`` at flat positions [a, b) into ``dst`` (b − a rows); ``src(i, j)`` gives
        the lower layer's rows i…j−1."""
        lay = self.layers[k]
        taps = [(int(o), lay.weight_t[n * lay.cin : (n + 1) * lay.cin]) for n, o in enumerate(offsets)]
        bias = torch.from_numpy(lay.bias)
        floor_at = 0.0 if lay.relu else -ACT_LIMIT

        def run(i: int, j: int) -> None:
            o0, w0 = taps[0]
            acc = torch.mm(src(i + o0, j + o0), w0)
            for o, w in taps[1:]:
                acc.addmm_(src(i + o, j + o), w)  # exact integer sums, any order
            acc.add_(bias).mul_(_RESCALE).add_(0.5).floor_()
            if skip is not None:
                acc.add_(skip[i - a : j - a])
            dst[i - a : j - a] = acc.clamp_(floor_at, ACT_LIMIT)

        parts = pool._max_workers if pool is not None else 1
        if parts == 1 or b - a < 1024 * parts:
            run(a, b)
            return
        cuts = np.linspace(a, b, parts + 1).astype(int)
        for f in [pool.submit(run, int(i), int(j)) for i, j in zip(cuts[:-1], cuts[1:])]:
            f.result()

    # -- decoder: wavefronts --------------------------------------------------------------------
    def decode(self, shape: tuple[int, int, int], coded: np.ndarray, decode_step) -> np.ndarray:
        """Decode a volume: ``coded`` (C, H, W) bool says which symbols are in the stream;
        ``decode_step(logits (n, L)) -> symbols (n,)`` decodes one wavefront's symbols.

        Returns the (C, H, W) int symbol volume (masked positions hold the zero symbol).
        """
        return _one_torch_thread(self._decode, shape, coded, decode_step)

    def _decode(self, shape, coded, decode_step):
        C, H, W = shape
        grid = VolumeGrid(C, H, W)
        symbols = np.full(shape, self.zero_symbol, dtype=np.int64)
        order, t_order = coding_order(grid, coded)
        if len(order) == 0:
            return symbols
        x = self._input(grid, self.center_values[symbols])
        offs = [grid.offsets(lay.taps) for lay in self.layers]
        # how far back in T a layer reads the layer below (7: the previous channel, one row down)
        lag = -min(int(4 * dd + 2 * dy + dx) for dd, dy, dx in OTHER_TAPS + FIRST_TAPS)
        t_max = int(t_order[-1])
        # layers 0-2: positions in T-major order; each layer's activations live in a ring of
        # rows (T-major), large enough for the last `lag` wavefronts: small and cache-resident
        sched, ranks, rings, sizes = [], [], [], []
        for k in range(3):
            flat, t = grid.layer_positions(k)
            keep = t <= t_max
            flat, t = flat[keep], t[keep]
            o = np.argsort(t, kind="stable")
            sched.append((flat[o], t[o]))
        t_min = min(int(ts[0]) for _, ts in sched)
        steps = np.arange(t_min, t_max + 2)
        bounds = [np.searchsorted(ts, steps) for _, ts in sched]
        for k in range(3):
            rank = np.zeros(grid.size, dtype=np.int64)
            rank[sched[k][0]] = np.arange(len(sched[k][0]))
            b = bounds[k]
            size = int(np.max(b[1:] - b[np.maximum(np.arange(1, len(b)) - 1 - lag, 0)])) + 1
            ranks.append(rank)
            sizes.append(size)
            rings.append(np.zeros((size, self.channels[k]), dtype=np.float64))
        code_bounds = np.searchsorted(t_order, steps)
        vol_flat = grid.volume_flat().ravel()
        for n in range(len(steps) - 1):
            for k in range(3):
                a, b = bounds[k][n], bounds[k][n + 1]
                if a == b:
                    continue
                f = sched[k][0][a:b]
                if k == 0:
                    g = np.take(x, f[:, None] + offs[0], axis=0)
                else:
                    g = np.take(rings[k - 1], ranks[k - 1][f[:, None] + offs[k]] % sizes[k - 1], axis=0)
                skip = np.take(rings[0], ranks[0][f] % sizes[0], axis=0) if k == 2 else None
                rings[k][np.arange(a, b) % sizes[k]] = self._apply(k, g.reshape(b - a, -1), skip)
            a, b = code_bounds[n], code_bounds[n + 1]
            if a == b:
                continue
            pos = order[a:b]
            f = vol_flat[pos]
            g = np.take(rings[2], ranks[2][f[:, None] + offs[3]] % sizes[2], axis=0)
            sym = np.asarray(decode_step(self._apply(3, g.reshape(b - a, -1))), dtype=np.int64)
            symbols.reshape(-1)[pos] = sym
            x[f, 0] = self.center_values[sym]
        return symbols

    def _apply(self, k: int, g: np.ndarray, skip: np.ndarray | None = None) -> np.ndarray:
        """Layer ``k`` on gathered inputs ``g`` (n, ntaps·cin): exact integer arithmetic."""
        lay = self.layers[k]
        acc = torch.mm(torch.from_numpy(g), lay.weight_t).numpy()  # exact: integers < 2^51
        acc += lay.bias
        out = np.floor(acc * _RESCALE + 0.5)
        if skip is not None:
            out += skip
        np.clip(out, 0.0 if lay.relu else -ACT_LIMIT, ACT_LIMIT, out=out)
        return out


# -- the importance map ---------------------------------------------------------------------------

_MAP_INCREMENT = 24
_MAP_RESCALE_AT = 1 << 16
_MAP_CONTEXTS = 5


def _map_context(a: int, b: int, c: int, C: int) -> tuple[int, int]:
    """LOCO-I median prediction and a gradient-activity context (0…4)."""
    if c >= max(a, b):
        pred = min(a, b)
    elif c <= min(a, b):
        pred = max(a, b)
    else:
        pred = a + b - c
    g = ((abs(a - c) + abs(b - c)) * 32) // max(C, 1)
    ctx = 0 if g == 0 else 1 if g <= 2 else 2 if g <= 6 else 3 if g <= 14 else 4
    return pred, ctx


def _neighbours(v: np.ndarray, i: int, j: int, C: int) -> tuple[int, int, int]:
    if i == 0 and j == 0:
        return C // 2, C // 2, C // 2
    if i == 0:
        a = int(v[0, j - 1])
        return a, a, a
    if j == 0:
        b = int(v[i - 1, 0])
        return b, b, b
    return int(v[i, j - 1]), int(v[i - 1, j]), int(v[i - 1, j - 1])


class _AdaptiveCounts:
    def __init__(self, C: int):
        self.counts = np.ones((_MAP_CONTEXTS, C + 1), dtype=np.int64)
        self.totals = self.counts.sum(axis=1)

    def row(self, ctx: int) -> np.ndarray:
        return self.counts[ctx].astype(np.float64)

    def update(self, ctx: int, r: int) -> None:
        self.counts[ctx, r] += _MAP_INCREMENT
        self.totals[ctx] += _MAP_INCREMENT
        if self.totals[ctx] > _MAP_RESCALE_AT:
            self.counts[ctx] = (self.counts[ctx] + 1) >> 1
            self.totals[ctx] = self.counts[ctx].sum()


def encode_importance_map(nmap: np.ndarray, C: int) -> tuple[bytes, float]:
    """Range-code the map ``nmap`` (h, w) of values 0…C; returns the bytes and −Σ log2 p."""
    import constriction

    h, w = nmap.shape
    model = _AdaptiveCounts(C)
    rows = np.empty((h * w, C + 1), dtype=np.float64)
    residuals = np.empty(h * w, dtype=np.int32)
    bits = 0.0
    n = 0
    for i in range(h):
        for j in range(w):
            pred, ctx = _map_context(*_neighbours(nmap, i, j, C), C)
            r = (int(nmap[i, j]) - pred) % (C + 1)
            rows[n] = model.row(ctx)
            bits -= np.log2(rows[n, r] / model.totals[ctx])
            residuals[n] = r
            model.update(ctx, r)
            n += 1
    enc = constriction.stream.queue.RangeEncoder()
    if n:
        enc.encode(residuals, constriction.stream.model.Categorical(perfect=False), rows)
    return _words_to_bytes(enc.get_compressed()), float(bits)


def decode_importance_map(data: bytes, shape: tuple[int, int], C: int) -> np.ndarray:
    import constriction

    h, w = shape
    dec = constriction.stream.queue.RangeDecoder(_bytes_to_words(data))
    family = constriction.stream.model.Categorical(perfect=False)
    model = _AdaptiveCounts(C)
    nmap = np.zeros((h, w), dtype=np.int64)
    for i in range(h):
        for j in range(w):
            pred, ctx = _map_context(*_neighbours(nmap, i, j, C), C)
            r = int(dec.decode(family, model.row(ctx)[None, :])[0])
            nmap[i, j] = (pred + r) % (C + 1)
            model.update(ctx, r)
    return nmap


# -- constriction glue -------------------------------------------------------------------------------


def _words_to_bytes(words: np.ndarray) -> bytes:
    return np.asarray(words, dtype="<u4").tobytes()


def _bytes_to_words(data: bytes) -> np.ndarray:
    if len(data) % 4:
        raise ValueError(f"entropy-coded string of {len(data)} bytes is not a whole number of 32-bit words")
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def encode_symbols(logits: np.ndarray, symbols: np.ndarray) -> bytes:
    """Range-code ``symbols`` (n,) with the rows of integer ``logits`` (n, L), in order."""
    import constriction

    enc = constriction.stream.queue.RangeEncoder()
    if len(symbols):
        enc.encode(symbols.astype(np.int32), constriction.stream.model.Categorical(perfect=False),
                   probability_rows(logits))
    return _words_to_bytes(enc.get_compressed())


class SymbolDecoder:
    """The decoder side of :func:`encode_symbols`, one wavefront at a time."""

    def __init__(self, data: bytes):
        import constriction

        self._dec = constriction.stream.queue.RangeDecoder(_bytes_to_words(data))
        self._family = constriction.stream.model.Categorical(perfect=False)
        self.wall = self.cpu = 0.0  # seconds spent here (probabilities + range decoding)

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        w, c = time.perf_counter(), time.process_time()
        out = self._dec.decode(self._family, probability_rows(logits))
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c
        return out
