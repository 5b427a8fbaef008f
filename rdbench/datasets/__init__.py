"""Datasets by spec: ``sample``, ``folder:PATH``, ``glob:PATTERN`` or a catalog name.

>>> ds = get_dataset("sample")
>>> ds.images[0].image_id
'astronaut'
"""
from __future__ import annotations

import os

from rdbench.datasets.base import Dataset, DatasetError, ImageRef
from rdbench.datasets.local import folder_dataset, glob_dataset
from rdbench.datasets.sample import sample_dataset

__all__ = ["Dataset", "DatasetError", "ImageRef", "get_dataset", "is_local_spec", "DEFAULT_DATA_ROOT"]

#: Where downloads and prepared datasets land unless configured otherwise.
DEFAULT_DATA_ROOT = os.environ.get("RDBENCH_DATA_ROOT", "datasets")


def is_local_spec(spec: str) -> bool:
    """True for specs that need no preparation step (``sample``, ``folder:``, ``glob:``)."""
    return spec == "sample" or spec.startswith(("folder:", "glob:"))


def get_dataset(spec: str, data_root: str | os.PathLike | None = None) -> Dataset:
    """Resolve a dataset spec to its ordered list of images.

    Catalog names (``kodak``, ``clic2020-professional-valid``, …) resolve to the manifest that
    ``PrepareDataset`` wrote under ``data_root``; an unprepared one raises :class:`DatasetError`
    saying how to prepare it.
    """
    if spec == "sample":
        return sample_dataset()
    kind, _, arg = spec.partition(":")
    if kind == "folder" and arg:
        return folder_dataset(arg, spec)
    if kind == "glob" and arg:
        return glob_dataset(arg, spec)
    from rdbench.datasets.prepare import load_prepared  # catalog datasets

    return load_prepared(spec, data_root if data_root is not None else DEFAULT_DATA_ROOT)
