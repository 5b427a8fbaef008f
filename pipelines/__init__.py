"""rdbench's orchestration layer: Luigi tasks (and the Beam job they run).

    luigi --module pipelines RunBenchmark --local-scheduler
"""
from pipelines.benchmark import EvaluateRun, ReportRun, RunBenchmark
from pipelines.config import rdbench
from pipelines.datasets import FetchDataset, PrepareDataset, PrepareDatasets

__all__ = ["EvaluateRun", "FetchDataset", "PrepareDataset", "PrepareDatasets", "ReportRun", "RunBenchmark", "rdbench"]
