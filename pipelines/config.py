"""The ``[rdbench]`` section of luigi.cfg: where data, weights and outputs live."""
from __future__ import annotations

import luigi


class rdbench(luigi.Config):  # noqa: N801 - Luigi maps the class name to the config section
    """Roots shared by every task; override in luigi.cfg or with ``--rdbench-data-root`` etc."""

    data_root = luigi.Parameter(default="datasets", description="downloads and prepared datasets")
    weights_root = luigi.Parameter(default="codecs", description="model checkpoints, by codec")
    output_root = luigi.Parameter(default="reports", description="benchmark run folders")
