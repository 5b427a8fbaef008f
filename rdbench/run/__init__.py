"""The run core: one benchmark run in plain Python, with no Luigi or Beam import.

=====================  ========================================================================
module                 responsibility
=====================  ========================================================================
``config``             :class:`RunConfig`: the parameters, validated, serialisable, with a digest
``plan``               work units and shards; which shards of a run folder are pending
``ladder``             one codec × one image × its quality ladder: encode, decode twice, measure
``shard``              one shard → results rows, errors rows (with their stage), FID/KID features
``folder``             the run folder: layout, atomic writes, shard files, run.json reading
``schema``             the Parquet schemas of results/ and errors/
``setmetrics``         features/ files → FID/KID per set → set_metrics.csv
``benchmark``          prepare → evaluate → finish → report; :func:`run_benchmark` in-process
=====================  ========================================================================

    from rdbench.run import RunConfig, run_benchmark
    report = run_benchmark(RunConfig(codecs=("jpeg", "webp"), limit=2))
"""
from rdbench.run.benchmark import PreparedRun, evaluate_shards, finish_run, prepare_run, run_benchmark
from rdbench.run.config import ConfigError, RunConfig

__all__ = ["ConfigError", "PreparedRun", "RunConfig", "evaluate_shards", "finish_run", "prepare_run", "run_benchmark"]
