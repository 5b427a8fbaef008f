"""What a dataset is to the rest of rdbench: a name and an ordered list of image files."""
from __future__ import annotations

from dataclasses import dataclass


class DatasetError(ValueError):
    """A dataset spec cannot be resolved (unknown name, missing folder, not prepared yet)."""


@dataclass(frozen=True)
class ImageRef:
    """One image of a dataset: a stable id (unique within the dataset) and where to read it."""

    image_id: str
    path: str


@dataclass(frozen=True)
class Dataset:
    """A resolved dataset: its spec string (used as the ``dataset`` column) and its images."""

    spec: str
    images: tuple[ImageRef, ...]
    root: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def limit(self, n: int | None) -> "Dataset":
        """The first ``n`` images (all when ``n`` is None)."""
        return self if n is None else Dataset(self.spec, self.images[: max(n, 0)], self.root)
