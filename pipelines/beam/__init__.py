"""The Apache Beam job that evaluates a benchmark's shards (see :mod:`pipelines.beam.job`)."""
