"""The set-level metrics of a run (FID, KID): its features/ files → one SetStats per set → set_metrics.csv.

The pieces a runner combines: :func:`read_set_elements` per features file, a
:class:`~rdbench.metrics.setlevel.SetStats` accumulator per (dataset, codec, quality), and
:func:`write_set_metrics`. :func:`compute_set_metrics` does it all in this process; the Beam job
(pipelines/beam/set_metrics.py) spreads the same steps over workers.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from rdbench.metrics.setlevel import PatchFeatures, SetStats
from rdbench.metrics.shardfeatures import SetKey, ShardFeatures
from rdbench.reports.set_metrics import SET_METRICS_FILE, set_metrics_csv
from rdbench.run import folder

__all__ = ["compute_set_metrics", "read_set_elements", "set_result", "write_set_metrics"]


def read_set_elements(path: str) -> Iterator[tuple[SetKey, PatchFeatures]]:
    """One features file's ``((dataset, codec, quality), PatchFeatures)`` elements."""
    features = ShardFeatures.from_bytes(folder.read_bytes(path), source=path)
    yield from features.set_elements()


def set_result(stats: SetStats, metrics: Iterable[str]) -> dict:
    """A set's figures with only the set-level ``metrics`` asked for computed (the others None)."""
    metrics = set(metrics)
    return stats.result(fid="fid" in metrics, kid="kid" in metrics)


def write_set_metrics(run_dir: str, sets: Iterable[tuple[SetKey, dict]]) -> int:
    """Write set_metrics.csv from ``(key, result)`` pairs; returns the number of sets."""
    sets = list(sets)
    folder.write_bytes_atomic(folder.join(run_dir, SET_METRICS_FILE), set_metrics_csv(sets))
    return len(sets)


def compute_set_metrics(run_dir: str, metrics: Sequence[str] = ("fid", "kid")) -> int:
    """FID/KID of every set of ``run_dir`` in this process, into set_metrics.csv; returns the set count."""
    stats: dict[SetKey, SetStats] = {}
    for path in folder.feature_files(run_dir):
        for key, element in read_set_elements(path):
            stats.setdefault(key, SetStats()).add(element.key, element.real, element.fake)
    return write_set_metrics(run_dir, ((key, set_result(s, metrics)) for key, s in stats.items()))
