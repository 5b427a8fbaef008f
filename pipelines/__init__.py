"""rdbench's orchestration layer: Luigi tasks (and the Beam job they run).

    luigi --module pipelines RunBenchmark --local-scheduler
"""
import logging as _logging

_root_handlers = list(_logging.getLogger().handlers)
import apache_beam  # noqa: E402,F401  (see below)

# Importing Beam logs a warning through the root logger before any handler exists, so logging
# installs a default stderr handler and every Luigi log line would then print twice.
for _handler in set(_logging.getLogger().handlers) - set(_root_handlers):
    _logging.getLogger().removeHandler(_handler)

from pipelines.benchmark import ComputeSetMetrics, EvaluateRun, ReportRun, RunBenchmark
from pipelines.config import rdbench, set_retcode_defaults
from pipelines.datasets import FetchDataset, PrepareDataset, PrepareDatasets
from pipelines.training import TrainCodec

set_retcode_defaults()

__all__ = ["ComputeSetMetrics", "EvaluateRun", "FetchDataset", "PrepareDataset", "PrepareDatasets", "ReportRun", "RunBenchmark", "TrainCodec", "rdbench"]
