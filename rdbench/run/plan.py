"""Plan a benchmark: datasets × codecs × qualities → work units → shards.

A *work unit* is one image with one codec over its whole quality ladder (progressive codecs
need the ladder together; the image is loaded once for it). A *shard* is a group of units
that are evaluated and written together: the unit of parallelism and of resumption. The plan
is a pure function of the configuration, so a re-run with the same configuration finds the
same shards and skips the ones already written.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass

from rdbench.datasets.base import Dataset

__all__ = ["WorkUnit", "Shard", "auto_images_per_shard", "pending_shards", "plan_digest", "plan_shards"]

#: Aim for at most this many shards per run when choosing images per shard automatically:
#: enough to balance work over many workers, few enough to keep the file count sane.
TARGET_MAX_SHARDS = 512


@dataclass(frozen=True)
class WorkUnit:
    dataset: str
    image_id: str
    path: str
    codec: str  # the full codec spec
    qualities: tuple[float, ...]


@dataclass(frozen=True)
class Shard:
    index: int
    units: tuple[WorkUnit, ...]

    @property
    def name(self) -> str:
        return f"shard-{self.index:05d}"

    @property
    def n_items(self) -> int:
        return sum(len(u.qualities) for u in self.units)


def auto_images_per_shard(n_images: int) -> int:
    return max(1, math.ceil(n_images / TARGET_MAX_SHARDS))


def plan_shards(
    datasets: Sequence[Dataset],
    ladders: dict[str, Sequence[float]],
    images_per_shard: int | None = None,
) -> list[Shard]:
    """Group (image × codec ladder) units into shards of ``images_per_shard`` images.

    ``ladders`` maps each codec spec to its qualities. A shard holds every codec of its
    images, so an image is read once per shard and slow and fast codecs mix evenly.
    """
    images = [(ds.spec, ref) for ds in datasets for ref in ds.images]
    per_shard = images_per_shard or auto_images_per_shard(len(images))
    shards = []
    for start in range(0, len(images), per_shard):
        units = tuple(
            WorkUnit(spec, ref.image_id, ref.path, codec, tuple(float(q) for q in qualities))
            for spec, ref in images[start : start + per_shard]
            for codec, qualities in ladders.items()
        )
        shards.append(Shard(len(shards), units))
    return shards


def plan_digest(shards: Sequence[Shard], metrics: Sequence[str] = ()) -> str:
    """A short hash of the whole plan (and the metrics computed), stored in the run folder to
    refuse mixing two plans in one folder."""
    payload = json.dumps([[[asdict(u) for u in s.units] for s in shards], sorted(metrics)], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def pending_shards(shards: Sequence[Shard], done: Collection[str]) -> list[Shard]:
    """The shards of the plan whose names are not in ``done`` (those already written), in order."""
    return [s for s in shards if s.name not in done]
