"""rdbench's orchestration layer: Luigi tasks (and the Beam job they run).

    luigi --module pipelines RunBenchmark --local-scheduler
"""
import logging as _logging

# Importing Beam logs a warning through the root logger (its optional Google Cloud clients, which
# rdbench does not use); with no root handler, logging would install a stderr handler for it that
# then doubles every Luigi line. A NullHandler meanwhile takes the warning and is removed after.
_quiet = _logging.NullHandler()
_logging.getLogger().addHandler(_quiet)
import apache_beam  # noqa: E402,F401

_logging.getLogger().removeHandler(_quiet)

from pipelines.benchmark import ComputeSetMetrics, EvaluateRun, ReportRun, RunBenchmark
from pipelines.build import BuildCodec
from pipelines.config import rdbench, set_retcode_defaults
from pipelines.datasets import FetchDataset, PrepareDataset, PrepareDatasets
from pipelines.training import TrainCodec

set_retcode_defaults()

__all__ = ["BuildCodec", "ComputeSetMetrics", "EvaluateRun", "FetchDataset", "PrepareDataset", "PrepareDatasets", "ReportRun", "RunBenchmark", "TrainCodec", "rdbench"]
