"""The ``[rdbench]`` section of luigi.cfg: where data, weights and outputs live."""
from __future__ import annotations

import luigi


class rdbench(luigi.Config):  # noqa: N801 - Luigi maps the class name to the config section
    """Roots shared by every task; override in luigi.cfg or with ``--rdbench-data-root`` etc."""

    data_root = luigi.Parameter(default="datasets", description="downloads and prepared datasets")
    weights_root = luigi.Parameter(default="codecs", description="model checkpoints, by codec")
    output_root = luigi.Parameter(default="reports", description="benchmark run folders")


#: Exit codes of ``luigi --module pipelines …`` when luigi.cfg does not set them: without a
#: ``[retcode]`` section Luigi exits 0 even when a task failed, so the package sets these itself
#: and a failed run exits non-zero whatever the working directory. luigi.cfg may override each.
RETCODES = {"already_running": 10, "missing_data": 20, "not_run": 25, "task_failed": 30,
            "scheduling_error": 35, "unhandled_exception": 40}


def set_retcode_defaults() -> None:
    """Fill in the ``[retcode]`` options no configuration file set."""
    config = luigi.configuration.get_config()
    if not config.has_section("retcode"):
        config.add_section("retcode")
    for name, code in RETCODES.items():
        if not config.has_option("retcode", name):
            config.set("retcode", name, str(code))
