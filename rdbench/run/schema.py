"""The Parquet schemas of a run folder: ``results/`` rows and ``errors/`` rows.

Contracts (docs/contracts.md): every writer uses them explicitly, nothing is inferred. The metric
columns of a results row come from the metric registry (:mod:`rdbench.metrics.registry`), in its order.
"""
from __future__ import annotations

import pyarrow as pa

from rdbench.metrics.registry import image_columns

#: Where a failed item stopped: reading the image, encoding, decoding (or its checks), measuring.
STAGES = ("load", "encode", "decode", "metrics")

RESULTS_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("codec", pa.string(), nullable=False),  # the full spec, e.g. "jpeg:subsampling=444"
        pa.field("codec_version", pa.string(), nullable=False),
        pa.field("quality", pa.float64(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("num_bytes", pa.int64(), nullable=False),  # the whole bitstream, header included
        pa.field("bpp", pa.float64(), nullable=False),  # num_bytes * 8 / (height * width)
        pa.field("bpp_estimated", pa.float64()),  # learned codecs only: -sum(log2 p) / pixels
        # One nullable double per metric column (null when not asked for or the image is too small).
        *(pa.field(name, pa.float64()) for name in image_columns()),
        pa.field("encode_s", pa.float64(), nullable=False),
        pa.field("decode_s", pa.float64(), nullable=False),
        pa.field("device", pa.string(), nullable=False),
        pa.field("roundtrip_ok", pa.bool_(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
    ]
)

ERRORS_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("codec", pa.string(), nullable=False),
        pa.field("quality", pa.float64()),  # null when the failure precedes any quality (e.g. load)
        pa.field("stage", pa.string(), nullable=False),  # one of STAGES
        pa.field("error_type", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
    ]
)
