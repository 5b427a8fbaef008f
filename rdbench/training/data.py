"""Training data: images of a dataset in memory, random crops by step, a fixed held-out set.

The crops of step ``s`` are drawn from ``numpy.random.default_rng([seed, s])``: they depend
only on the seed and the step, never on what ran before, so the sampler's whole state is its
position (the step) and a resumed run sees exactly the batches an uninterrupted one would.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rdbench.images import load_image

__all__ = ["CropSampler", "HOLDOUT_SEED", "eval_crops", "load_images", "split_holdout"]

#: The held-out split does not depend on the training seed: runs with different seeds are
#: evaluated on the same images.
HOLDOUT_SEED = 20240611


def load_images(paths: Sequence[str]) -> list[np.ndarray]:
    """Every image as a ``uint8 (H, W, 3)`` array (training sets are small enough to hold)."""
    return [load_image(p) for p in paths]


def split_holdout(n: int, n_eval: int) -> tuple[list[int], list[int]]:
    """Indices (train, held-out): ``n_eval`` images picked by a fixed permutation (≥ 1 left to train)."""
    n_eval = max(0, min(n_eval, n - 1))
    order = np.random.default_rng(HOLDOUT_SEED).permutation(n)
    held = sorted(int(i) for i in order[:n_eval])
    held_set = set(held)
    return [i for i in range(n) if i not in held_set], held


@dataclass
class CropSampler:
    """Batches of random ``crop``×``crop`` patches (random horizontal flips) by step number."""

    images: Sequence[np.ndarray]
    crop: int
    batch_size: int
    seed: int

    def __post_init__(self):
        self.usable = [i for i, im in enumerate(self.images) if im.shape[0] >= self.crop and im.shape[1] >= self.crop]
        if not self.usable:
            sizes = sorted({im.shape[:2] for im in self.images})[:5]
            raise ValueError(f"no training image is at least {self.crop}×{self.crop} (sizes: {sizes}); lower --crop")

    def batch(self, step: int) -> np.ndarray:
        """The ``(B, crop, crop, 3)`` uint8 batch of ``step``."""
        rng = np.random.default_rng([self.seed, step])
        picks = rng.integers(0, len(self.usable), size=self.batch_size)
        out = np.empty((self.batch_size, self.crop, self.crop, 3), dtype=np.uint8)
        for b, p in enumerate(picks):
            im = self.images[self.usable[p]]
            top = int(rng.integers(0, im.shape[0] - self.crop + 1))
            left = int(rng.integers(0, im.shape[1] - self.crop + 1))
            patch = im[top : top + self.crop, left : left + self.crop]
            out[b] = patch[:, ::-1] if rng.random() < 0.5 else patch
        return out


def eval_crops(images: Sequence[np.ndarray], size: int, multiple: int = 64) -> list[np.ndarray]:
    """Centre crops of at most ``size``×``size``, each side a multiple of ``multiple``."""
    out = []
    for im in images:
        h = min(size, im.shape[0] // multiple * multiple)
        w = min(size, im.shape[1] // multiple * multiple)
        if h < multiple or w < multiple:
            continue
        top, left = (im.shape[0] - h) // 2, (im.shape[1] - w) // 2
        out.append(np.ascontiguousarray(im[top : top + h, left : left + w]))
    return out
