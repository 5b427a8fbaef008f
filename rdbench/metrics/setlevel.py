"""FID and KID of a set of reconstructions, patch-based (FID/256, KID/256), as a Beam combine.

Per (dataset, codec, quality): 256×256 patches (a grid plus a half-shifted grid), torch-fidelity's
Inception-v3 pool3 features, and FID and KID as torch-fidelity computes them, so values compare
with HiFiC's and NeuralCompression's. :class:`SetStatsCombineFn` folds features into bounded
statistics (centred scatter matrices; a deterministic bottom-k sample for KID), so results do not
depend on the runner. Image keys must be unique within a set (e.g. ``f"{dataset}/{image_id}"``).
Method and memory bounds: docs/metrics.md, section FID and KID.
"""
from __future__ import annotations

import hashlib
import io
import math
import os
import threading
from dataclasses import dataclass

import numpy as np
import torch

from rdbench.codecs.weights import ENV_ROOT, load_state_dict
from rdbench.metrics.perceptual import INCEPTION_WEIGHTS

__all__ = [
    "FEATURE_DIM",
    "INCEPTION_WEIGHTS",
    "PATCH_SIZE",
    "FeatureExtractor",
    "Moments",
    "PatchFeatures",
    "SetStats",
    "extract_patches",
    "feature_extractor",
    "fid_from_features",
    "fid_from_stats",
    "kid_from_features",
    "patch_origins",
]

PATCH_SIZE = 256
FEATURE_DIM = 2048
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_SEED = 2020
KID_MAX_PATCHES = 4000

# -- patches and features ------------------------------------------------------------------------


def patch_origins(height: int, width: int, patch: int = PATCH_SIZE) -> list[tuple[int, int]]:
    """(top, left) of every patch: the aligned grid, then the half-patch-shifted grid (row-major)."""
    origins = [(top, left) for top in range(0, height - patch + 1, patch)
               for left in range(0, width - patch + 1, patch)]
    half = patch // 2
    if height >= patch + half and width >= patch + half:
        origins += [(top, left) for top in range(half, height - patch + 1, patch)
                    for left in range(half, width - patch + 1, patch)]
    return origins


def extract_patches(image: np.ndarray, patch: int = PATCH_SIZE) -> np.ndarray:
    """The patches of a uint8 (H, W, 3) image as a uint8 (n, patch, patch, 3) array (n may be 0)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    origins = patch_origins(image.shape[0], image.shape[1], patch)
    out = np.empty((len(origins), patch, patch, 3), dtype=image.dtype)
    for i, (top, left) in enumerate(origins):
        out[i] = image[top:top + patch, left:left + patch]
    return out


class FeatureExtractor:
    """Inception-v3 pool3 features of an image's patches: ``extractor(image) -> (n, 2048) float32``.

    Build once per worker (the network loads here); calls are thread-safe. ``weights``: an explicit
    state-dict file for torch-fidelity's ``FeatureExtractorInceptionV3`` (loaded unverified, e.g.
    random weights for tests); by default the published file is located as the module docstring
    says. ``batch_size``: patches per forward pass.
    """

    name = "inception-v3-pool3"

    def __init__(self, device: str | torch.device = "cpu", *, weights: str | os.PathLike | None = None,
                 weights_root: str | os.PathLike | None = None, download: bool | None = None,
                 batch_size: int = 16, patch_size: int = PATCH_SIZE):
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError as exc:
            raise ImportError(
                "FID/KID need the torch-fidelity package (its Inception-v3 is the network FID is "
                "defined with): pip install 'torch-fidelity>=0.4,<0.5'") from exc
        path = weights if weights else INCEPTION_WEIGHTS.locate(weights_root, download=download)
        # torch-fidelity reads the file with torch.load(weights_only=False); hand it a copy of the
        # state dict read safely (tensors only), so no code can run from a weights file.
        state = load_state_dict(path)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        del state
        self.device = torch.device(device)
        self.weights = str(path)
        self.batch_size = int(batch_size)
        self.patch_size = int(patch_size)
        self._net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                feature_extractor_weights_path=buffer).to(self.device)

    def features_of_patches(self, patches: np.ndarray) -> np.ndarray:
        """Features of uint8 (n, h, w, 3) patches as float32 (n, 2048)."""
        out = np.empty((len(patches), FEATURE_DIM), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(patches), self.batch_size):
                batch = np.ascontiguousarray(patches[start:start + self.batch_size].transpose(0, 3, 1, 2))
                x = torch.from_numpy(batch).to(self.device)
                (features,) = self._net(x)
                out[start:start + len(batch)] = features.float().cpu().numpy()
        return out

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image, got {image.dtype}")
        return self.features_of_patches(extract_patches(image, self.patch_size))


_extractors: dict[tuple, FeatureExtractor] = {}
_extractors_lock = threading.Lock()


def feature_extractor(device: str | torch.device = "cpu", *,
                      weights_root: str | os.PathLike | None = None) -> FeatureExtractor:
    """The process's :class:`FeatureExtractor` for ``device`` (built on first use, then shared)."""
    key = (str(torch.device(device)), str(weights_root or ""), os.environ.get(ENV_ROOT, ""))
    with _extractors_lock:
        extractor = _extractors.get(key)
        if extractor is None:
            extractor = _extractors[key] = FeatureExtractor(device, weights_root=weights_root)
        return extractor


# -- FID -------------------------------------------------------------------------------------------


class Moments:
    """Count, float64 mean and centred scatter matrix Σ(x − μ)(x − μ)ᵀ of a stream of d-vectors.

    Rows are kept as given (float32 features) and folded in by blocks of :data:`BLOCK_ROWS` — one
    in-place rank-k BLAS update (``dsyrk``) of the d×d matrix per block instead of a pass over it
    per image — with Chan et al.'s pairwise update, as are other accumulators' moments in
    :meth:`merge`. A block is as large as the float64 d×d matrix it replaces, so a set of fewer
    patches (Kodak's 192, CLIC's few thousand) never allocates that matrix: Beam's partial
    accumulators stay small. Only the upper triangle of the stored matrix is maintained;
    :meth:`scatter` returns the full symmetric one.
    """

    __slots__ = ("_folded", "_mean", "_scatter", "_pending", "_pending_rows")
    BLOCK_ROWS = 4096  # as much memory as the d×d matrix it avoids (d = 2048, float32 rows)

    def __init__(self):
        self._folded = 0  # rows in _mean and _scatter
        self._mean: np.ndarray | None = None
        self._scatter: np.ndarray | None = None  # Fortran order, upper triangle valid
        self._pending: list[np.ndarray] = []  # rows not folded in yet
        self._pending_rows = 0

    @property
    def n(self) -> int:
        return self._folded + self._pending_rows

    @property
    def dim(self) -> int | None:
        if self._mean is not None:
            return len(self._mean)
        return self._pending[0].shape[1] if self._pending else None

    def add(self, rows: np.ndarray) -> "Moments":
        """Add the rows of an (m, d) array."""
        rows = np.asarray(rows)
        if rows.ndim != 2:
            raise ValueError(f"expected an (m, d) array of feature rows, got shape {rows.shape}")
        if not len(rows):
            return self
        if self.dim is not None and rows.shape[1] != self.dim:
            raise ValueError(f"feature dimensions differ: {self.dim} vs {rows.shape[1]}")
        self._pending.append(rows)
        self._pending_rows += len(rows)
        if self._pending_rows >= self.BLOCK_ROWS:
            self._fold()
        return self

    def _fold(self) -> None:
        if not self._pending:
            return
        block = np.concatenate(self._pending).astype(np.float64)
        self._pending, self._pending_rows = [], 0
        self._merge_block(len(block), block.mean(axis=0), rows=block)

    def _merge_block(self, m: int, mean_b: np.ndarray, *, rows: np.ndarray | None = None,
                     scatter_b: np.ndarray | None = None) -> None:
        """Merge m vectors of mean ``mean_b``, given as ``rows`` or by their (upper) scatter."""
        from scipy.linalg.blas import dsyrk

        n_a = self._folded
        if self._scatter is None:
            self._mean = np.zeros(len(mean_b))
            self._scatter = np.zeros((len(mean_b), len(mean_b)), order="F")
        delta = mean_b - self._mean
        if scatter_b is not None:
            self._scatter += scatter_b
        parts = [] if rows is None else [rows - mean_b]
        if n_a:  # the between-means term n_a·m/(n_a + m)·δδᵀ
            parts.append((delta * math.sqrt(n_a * m / (n_a + m)))[None])
        if parts:
            update = np.asfortranarray(np.concatenate(parts))
            self._scatter = dsyrk(1.0, update, beta=1.0, c=self._scatter, trans=1, lower=0, overwrite_c=1)
        self._mean = self._mean + delta * (m / (n_a + m))
        self._folded = n_a + m

    def merge(self, other: "Moments") -> "Moments":
        """Add another stream's moments into this one; ``other`` is left unchanged. Returns self."""
        if other.dim is not None and self.dim is not None and other.dim != self.dim:
            raise ValueError(f"feature dimensions differ: {self.dim} vs {other.dim}")
        if other._folded:
            self._merge_block(other._folded, other._mean, scatter_b=other._scatter)
        for rows in other._pending:
            self.add(rows)
        return self

    @property
    def mean(self) -> np.ndarray | None:
        """The float64 mean (None before any row)."""
        self._fold()
        return self._mean

    def scatter(self) -> np.ndarray:
        """The full symmetric d×d scatter matrix."""
        self._fold()
        upper = np.triu(self._scatter)
        return upper + np.triu(upper, 1).T

    def covariance(self) -> np.ndarray:
        """The unbiased (n − 1) covariance matrix; needs n ≥ 2."""
        if self.n < 2:
            raise ValueError(f"a covariance needs at least 2 vectors, got {self.n}")
        return self.scatter() / (self.n - 1)


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr (Σ1 Σ2)^½ for PSD Σ1, Σ2: Σ √λ over the eigenvalues λ of the symmetric Lᵀ Σ2 L (L Lᵀ = Σ1).

    With the Cholesky factor Σ1 = L Lᵀ, Σ1 Σ2 is similar to Lᵀ Σ2 L (symmetric PSD), so its
    eigenvalues come from a symmetric solver (no complex round-off, about 3x faster than an
    eigendecomposition of Σ1). A singular Σ1 (no Cholesky factor) takes its PSD square root from
    an eigendecomposition instead. Negative round-off eigenvalues count as 0.
    """
    s1 = torch.from_numpy(np.ascontiguousarray((sigma1 + sigma1.T) / 2))
    s2 = torch.from_numpy(np.ascontiguousarray((sigma2 + sigma2.T) / 2))
    factor, info = torch.linalg.cholesky_ex(s1)
    if int(info) != 0:  # singular: a factor from the eigendecomposition, V·diag(√w)
        w, v = np.linalg.eigh(s1.numpy())  # (numpy's eigh is about 2x faster than torch's here)
        factor = torch.from_numpy(v * np.sqrt(np.clip(w, 0.0, None)))
    middle = (factor.T @ s2 @ factor).numpy()
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None))))


def fid_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The Fréchet distance of two Gaussians N(mu1, sigma1), N(mu2, sigma2) (float64).

    ‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr (Σ1 Σ2)^½, what torch-fidelity's
    ``fid_statistics_to_metric`` computes (it gets the same trace from the eigenvalues of the
    non-symmetric Σ1 Σ2).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"mismatched statistics: {mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * _trace_sqrt_product(sigma1, sigma2))


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID of two (n, d) feature arrays, computed through n×n matrices: fast when n < d.

    With A = (X − μ)/√(n − 1) per side, Σ = AᵀA, and the nonzero eigenvalues of Σr Σf are those of
    B Bᵀ with B = Ar Afᵀ, an nr×nr matrix (so tr (Σr Σf)^½ is the sum of B's singular values);
    tr Σ = ‖A‖²_F. Equal to :func:`fid_from_stats` of the
    features' means and covariances.
    """
    x = np.asarray(real, dtype=np.float64)
    y = np.asarray(fake, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected two (n, d) arrays of one d, got {x.shape} and {y.shape}")
    if min(len(x), len(y)) < 2:
        raise ValueError(f"FID needs at least 2 feature vectors per side, got {len(x)} and {len(y)}")
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    a1 = (x - mu1) / math.sqrt(len(x) - 1)
    a2 = (y - mu2) / math.sqrt(len(y) - 1)
    b = a1 @ a2.T
    eigenvalues = np.linalg.eigvalsh(b @ b.T)
    tr_sqrt = float(np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None))))
    diff = mu1 - mu2
    return float(diff @ diff + np.sum(a1 * a1) + np.sum(a2 * a2) - 2.0 * tr_sqrt)


# -- KID -------------------------------------------------------------------------------------------


def _kernel(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef0: float) -> np.ndarray:
    k = x @ y.T  # (x·y·γ + c0)^degree, in place: one n×n matrix in memory
    k *= gamma
    k += coef0
    return np.power(k, degree, out=k)


def _unbiased_mmd2(k_xx_sum: float, k_xx_trace: float, k_yy_sum: float, k_yy_trace: float,
                   k_xy_sum: float, m: int) -> float:
    return ((k_xx_sum - k_xx_trace) + (k_yy_sum - k_yy_trace)) / (m * (m - 1)) - 2.0 * k_xy_sum / (m * m)


#: Compute the whole kernel matrices once (instead of three per subset) up to this many entries
#: (float64: 2**24 entries = 128 MiB, one matrix at a time: up to 4096 patches per side). That is
#: 3·n²·d multiply-adds instead of 3·subsets·m²·d: 6x less work at the default 4000 patches.
_KERNEL_CACHE_ENTRIES = 2**24


def kid_from_features(real: np.ndarray, fake: np.ndarray, *, subsets: int = KID_SUBSETS,
                      subset_size: int = KID_SUBSET_SIZE, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0, seed: int = KID_SEED) -> tuple[float, float]:
    """KID (mean, std over subsets) of two (n, d) feature arrays; see the module docstring.

    The subset size is ``min(subset_size, n_real, n_fake)``; it must be at least 2.
    """
    x = np.asarray(real, dtype=np.float64)
    y = np.asarray(fake, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected two (n, d) arrays of one d, got {x.shape} and {y.shape}")
    n1, n2 = len(x), len(y)
    m = min(int(subset_size), n1, n2)
    if m < 2:
        raise ValueError(f"KID needs at least 2 feature vectors per side, got {n1} and {n2}")
    gamma = 1.0 / x.shape[1] if gamma is None else float(gamma)

    def kernel(a, b):
        return _kernel(a, b, degree, gamma, coef0)

    if m == n1 == n2:  # every subset is the whole set (in some order): one exact value
        k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
        value = _unbiased_mmd2(k_xx.sum(), np.trace(k_xx), k_yy.sum(), np.trace(k_yy), k_xy.sum(), m)
        return float(value), 0.0

    rng = np.random.RandomState(seed)
    draws = [(rng.choice(n1, m, replace=False), rng.choice(n2, m, replace=False)) for _ in range(int(subsets))]
    if max(n1, n2) ** 2 <= _KERNEL_CACHE_ENTRIES:
        # Each whole kernel matrix once (one at a time, to bound memory), then every subset's sums.
        k = kernel(x, x)
        xx = [(k[np.ix_(i, i)].sum(), k[i, i].sum()) for i, _ in draws]
        del k
        k = kernel(y, y)
        yy = [(k[np.ix_(j, j)].sum(), k[j, j].sum()) for _, j in draws]
        del k
        k = kernel(x, y)
        xy = [k[np.ix_(i, j)].sum() for i, j in draws]
        del k
    else:
        xx, yy, xy = [], [], []
        for i, j in draws:
            k_xx, k_yy = kernel(x[i], x[i]), kernel(y[j], y[j])
            xx.append((k_xx.sum(), np.trace(k_xx)))
            yy.append((k_yy.sum(), np.trace(k_yy)))
            xy.append(kernel(x[i], y[j]).sum())
    values = np.array([_unbiased_mmd2(*xx[s], *yy[s], xy[s], m) for s in range(len(draws))])
    return float(values.mean()), float(values.std())


# -- the accumulator and the CombineFn ----------------------------------------------------------------


@dataclass(frozen=True)
class PatchFeatures:
    """The patch features of one image and of its reconstruction: the combine's input element.

    ``key`` identifies the image within its set (unique, e.g. ``"kodak/kodim01"``); ``real`` and
    ``fake`` are (n, d) arrays with row i the features of patch i (same patch positions).
    """

    key: str
    real: np.ndarray
    fake: np.ndarray


def _priorities(key: str, count: int, seed: int) -> np.ndarray:
    out = np.empty(count, dtype=np.uint64)
    for i in range(count):
        digest = hashlib.blake2b(f"{seed}\x00{key}\x00{i}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big")
    return out


class SetStats:
    """The accumulator of one set's FID/KID statistics: add images' features, merge, compute.

    See the module docstring. ``kid_max_patches`` bounds the features kept for KID; ``seed`` salts
    the priorities that choose them (:meth:`kid` takes the seed of its subsets separately).
    """

    def __init__(self, kid_max_patches: int = KID_MAX_PATCHES, seed: int = KID_SEED):
        self.kid_max_patches = int(kid_max_patches)
        self.seed = int(seed)
        self.n_images = 0
        self.n_images_skipped = 0  # images that gave no patch (a side below the patch size)
        self.real = Moments()
        self.fake = Moments()
        # KID sample: chunks of (priorities, real rows, fake rows); one sorted chunk after compact().
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._chunk_rows = 0

    @property
    def n_patches(self) -> int:
        return self.real.n

    def add(self, key: str, real: np.ndarray, fake: np.ndarray) -> "SetStats":
        """Add one image: the (n, d) features of its original and of its reconstruction's patches."""
        real = np.asarray(real, dtype=np.float32)
        fake = np.asarray(fake, dtype=np.float32)
        if real.shape != fake.shape or real.ndim != 2:
            raise ValueError(f"{key}: original and reconstruction features must be (n, d) arrays of one "
                             f"shape, got {real.shape} and {fake.shape}")
        self.n_images += 1
        if not len(real):
            self.n_images_skipped += 1
            return self
        self.real.add(real)
        self.fake.add(fake)
        self._add_chunk(_priorities(key, len(real), self.seed), real, fake)
        return self

    def _add_chunk(self, priorities, real, fake) -> None:
        self._chunks.append((priorities, real, fake))
        self._chunk_rows += len(priorities)
        if self._chunk_rows > 2 * max(self.kid_max_patches, 1024):
            self.compact()

    def merge(self, other: "SetStats") -> "SetStats":
        """Add another accumulator into this one (``other`` is left unchanged); returns self."""
        self.n_images += other.n_images
        self.n_images_skipped += other.n_images_skipped
        self.real.merge(other.real)
        self.fake.merge(other.fake)
        for chunk in other._chunks:
            self._add_chunk(*chunk)
        return self

    def compact(self) -> "SetStats":
        """Keep only the ``kid_max_patches`` lowest-priority pairs, as one chunk in priority order."""
        if len(self._chunks) <= 1 and self._chunk_rows <= self.kid_max_patches and (
                not self._chunks or self._is_sorted(self._chunks[0][0])):
            return self
        priorities = np.concatenate([c[0] for c in self._chunks])
        order = np.argsort(priorities, kind="stable")[: self.kid_max_patches]
        real = np.concatenate([c[1] for c in self._chunks])[order]
        fake = np.concatenate([c[2] for c in self._chunks])[order]
        self._chunks = [(priorities[order], real, fake)]
        self._chunk_rows = len(order)
        return self

    @staticmethod
    def _is_sorted(priorities: np.ndarray) -> bool:
        return bool(np.all(priorities[:-1] <= priorities[1:]))

    def kid_features(self) -> tuple[np.ndarray, np.ndarray]:
        """The (k, d) original and reconstruction features kept for KID, in their canonical order."""
        self.compact()
        if not self._chunks:
            return np.empty((0, 0), np.float32), np.empty((0, 0), np.float32)
        _, real, fake = self._chunks[0]
        return real, fake

    def fid(self) -> float | None:
        """FID of the set; None with fewer than 2 patches.

        With fewer patches than feature dimensions, and all of them kept for KID, it is computed
        from the features through n×n matrices (:func:`fid_from_features`: milliseconds for
        Kodak's 192 patches, instead of seconds for the 2048×2048 covariances).
        """
        if self.n_patches < 2:
            return None
        real, fake = self.kid_features()
        if len(real) == self.n_patches and self.n_patches < real.shape[1]:
            return fid_from_features(real, fake)
        return fid_from_stats(self.real.mean, self.real.covariance(), self.fake.mean, self.fake.covariance())

    def kid(self, *, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
            seed: int = KID_SEED) -> tuple[float | None, float | None]:
        """(KID, its std over subsets) of the kept features; (None, None) with fewer than 2 patches."""
        real, fake = self.kid_features()
        if len(real) < 2:
            return None, None
        return kid_from_features(real, fake, subsets=subsets, subset_size=subset_size, seed=seed)

    def result(self, *, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
               seed: int = KID_SEED, fid: bool = True, kid: bool = True) -> dict:
        """The set's figures: n_images, n_images_skipped, n_patches, fid, kid, kid_std, kid_patches.

        ``fid=False`` / ``kid=False`` leave that metric None without computing it.
        """
        kid, kid_std = self.kid(subsets=subsets, subset_size=subset_size, seed=seed) if kid else (None, None)
        return {
            "n_images": self.n_images,
            "n_images_skipped": self.n_images_skipped,
            "n_patches": self.n_patches,
            "fid": self.fid() if fid else None,
            "kid": kid,
            "kid_std": kid_std,
            "kid_patches": len(self.kid_features()[0]),
        }
