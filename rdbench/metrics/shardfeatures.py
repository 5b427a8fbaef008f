"""``features/<shard>.npz``: the FID/KID patch features of one shard, written beside its results.

Workers keep the Inception features of the patches, never the images; a later Beam combine
(:class:`~rdbench.metrics.setlevel.SetStatsCombineFn`) folds every shard's file into each set's
statistics. The file is written before the shard's results file, so every completed shard has its
features. Array layout: docs/metrics.md, section The features file.
"""
from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator

import numpy as np

from rdbench.metrics.setlevel import FEATURE_DIM, PatchFeatures

__all__ = ["SetKey", "ShardFeatures"]

#: A set of reconstructions that FID/KID are computed over: (dataset, codec spec, quality).
SetKey = tuple[str, str, float]


class ShardFeatures:
    """The patch features of a shard's originals and reconstructions; see the module docstring."""

    def __init__(self, dim: int = FEATURE_DIM):
        self.dim = int(dim)
        self.originals: dict[tuple[str, str], np.ndarray] = {}
        self.reconstructions: dict[tuple[str, str, str, float], np.ndarray] = {}

    def __len__(self) -> int:
        """The number of reconstructions held."""
        return len(self.reconstructions)

    def _check(self, what: str, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"{what}: expected (n, {self.dim}) patch features, got shape {features.shape}")
        return features

    def add_original(self, dataset: str, image_id: str, features: np.ndarray) -> None:
        """The (n, d) features of an original image's patches."""
        self.originals[(dataset, image_id)] = self._check(f"{dataset}/{image_id}", features)

    def add_reconstruction(self, dataset: str, image_id: str, codec: str, quality: float,
                           features: np.ndarray) -> None:
        """The (n, d) features of one reconstruction's patches; its original must be added too."""
        original = self.originals.get((dataset, image_id))
        if original is None:
            raise KeyError(f"{dataset}/{image_id}: add the original's features before its reconstructions")
        features = self._check(f"{dataset}/{image_id} {codec} q{quality}", features)
        if len(features) != len(original):
            raise ValueError(f"{dataset}/{image_id} {codec} q{quality}: {len(features)} reconstruction "
                             f"patches for {len(original)} original patches")
        self.reconstructions[(dataset, image_id, codec, float(quality))] = features

    def set_elements(self) -> Iterator[tuple[SetKey, PatchFeatures]]:
        """``((dataset, codec, quality), PatchFeatures)`` per reconstruction: the combine's input."""
        for (dataset, image_id, codec, quality), fake in self.reconstructions.items():
            real = self.originals[(dataset, image_id)]
            yield (dataset, codec, quality), PatchFeatures(f"{dataset}/{image_id}", real, fake)

    # -- the file --------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The ``.npz`` file's bytes."""
        def stack(arrays):
            return np.concatenate(arrays) if arrays else np.empty((0, self.dim), np.float32)

        originals_index = [[d, i, len(f)] for (d, i), f in self.originals.items()]
        reconstructions_index = [[d, i, c, q, len(f)] for (d, i, c, q), f in self.reconstructions.items()]
        buffer = io.BytesIO()
        np.savez(buffer,
                 originals=stack(list(self.originals.values())),
                 originals_index=np.array(json.dumps(originals_index)),
                 reconstructions=stack(list(self.reconstructions.values())),
                 reconstructions_index=np.array(json.dumps(reconstructions_index)))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "features file") -> "ShardFeatures":
        """Read what :meth:`to_bytes` wrote; ``source`` names the file in errors."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                originals, reconstructions = npz["originals"], npz["reconstructions"]
                originals_index = json.loads(str(npz["originals_index"]))
                reconstructions_index = json.loads(str(npz["reconstructions_index"]))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{source}: not a readable rdbench features file ({exc})") from exc
        out = cls(originals.shape[1] if originals.ndim == 2 else FEATURE_DIM)
        start = 0
        for dataset, image_id, n in originals_index:
            out.add_original(dataset, image_id, originals[start:start + n])
            start += n
        start = 0
        for dataset, image_id, codec, quality, n in reconstructions_index:
            out.add_reconstruction(dataset, image_id, codec, quality, reconstructions[start:start + n])
            start += n
        return out
