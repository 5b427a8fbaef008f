"""Luigi tasks that fetch, verify and prepare catalog datasets.

- ``FetchDataset(name)`` — downloads (or, for login datasets, finds) and verifies the source
  files; output: the verification stamp ``<data_root>/downloads/.verified/<name>.json``. It is
  complete only while every listed file is still there, unchanged.
- ``PrepareDataset(name)`` — extracts and converts to RGB PNG; output:
  ``<data_root>/prepared/<name>/manifest.json`` (the folder is swapped into place whole, the
  manifest written last).
- ``PrepareDatasets(names)`` — a WrapperTask over several names; what a cron entry or a central
  ``luigid`` runs.

The data root is ``[rdbench] data_root`` unless ``--data-root`` is given; the mirror is
``--mirror`` or ``$RDBENCH_MIRROR``. Downloads take one unit of the ``rdbench_download``
resource (a limit of 1 unless ``[resources]`` says otherwise), so parallel workers or a shared
scheduler do not download many large archives at once.
"""
from __future__ import annotations

import time

import luigi

from pipelines.config import rdbench
from rdbench.datasets.base import DatasetError
from rdbench.datasets.catalog import get_entry, is_catalogued, known_specs_message
from rdbench.datasets.fetch import fetch_dataset, read_stamp, stamp_is_current, stamp_path
from rdbench.datasets.prepare import manifest_path, prepare_dataset

__all__ = ["FetchDataset", "PrepareDataset", "PrepareDatasets"]


def _check_name(name: str) -> None:
    if not is_catalogued(name):
        if name == "sample" or name.startswith(("folder:", "glob:")):
            raise DatasetError(f"{name!r} is read directly from disk and needs no preparation "
                               f"(only catalog datasets are prepared; {known_specs_message()})")
        raise DatasetError(f"unknown dataset {name!r}; {known_specs_message()}")


class _DatasetTask(luigi.Task):
    name = luigi.Parameter(description="catalog name of the dataset, e.g. kodak")
    data_root = luigi.OptionalParameter(default=None, description="downloads and prepared datasets "
                                        "(default: [rdbench] data_root)")
    mirror = luigi.OptionalParameter(default=None, significant=False,
                                     description="base URL replacing the catalog's (default: $RDBENCH_MIRROR)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_name(self.name)

    @property
    def root(self) -> str:
        return self.data_root if self.data_root is not None else rdbench().data_root

    def _progress(self, fraction: float | None, message: str) -> None:
        """Forward progress to the scheduler; a no-op when run outside a Luigi worker."""
        setter = getattr(self, "set_status_message", None)
        if callable(setter):
            setter(message)
        pct = getattr(self, "set_progress_percentage", None)
        if fraction is not None and callable(pct):
            pct(round(100 * fraction))


class FetchDataset(_DatasetTask):
    """Download (or find) and verify every source file of one dataset."""

    retry_count = 3  # only used with --worker-keep-alive; network errors are transient

    @property
    def resources(self):
        return {"rdbench_download": 1} if get_entry(self.name).access == "open" else {}

    def output(self):
        return luigi.LocalTarget(str(stamp_path(self.root, self.name)))

    def complete(self) -> bool:
        return stamp_is_current(self.root, self.name)

    def run(self):
        fetch_dataset(self.name, self.root, mirror=self.mirror, progressbar=True, progress=self._progress)


class PrepareDataset(_DatasetTask):
    """Extract and normalise one dataset to RGB PNGs plus ``manifest.json``."""

    num_workers = luigi.IntParameter(default=0, significant=False,
                                     description="image-conversion processes (0: one per core, up to 8); "
                                     "not --workers, which is Luigi's own flag")

    def requires(self):
        return FetchDataset(name=self.name, data_root=self.data_root, mirror=self.mirror)

    def output(self):
        return luigi.LocalTarget(str(manifest_path(self.root, self.name)))

    def run(self):
        start = time.monotonic()
        record = read_stamp(self.root, self.name)
        manifest = prepare_dataset(self.name, self.root, record=record, workers=self.num_workers,
                                   progress=self._progress)
        self._progress(1.0, f"{self.name}: {len(manifest.images)} images, {len(manifest.errors)} errors "
                            f"in {time.monotonic() - start:.0f} s")


class PrepareDatasets(luigi.WrapperTask):
    """Prepare several datasets: ``--names '["kodak", "clic2020-professional-valid"]'``."""

    names = luigi.ListParameter(default=["kodak"], description="JSON list of catalog names")
    data_root = luigi.OptionalParameter(default=None)
    mirror = luigi.OptionalParameter(default=None, significant=False)
    num_workers = luigi.IntParameter(default=0, significant=False)

    def requires(self):
        return [PrepareDataset(name=n, data_root=self.data_root, mirror=self.mirror, num_workers=self.num_workers)
                for n in self.names]
