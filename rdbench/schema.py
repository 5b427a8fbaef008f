"""The Parquet schemas of a run folder: ``results/`` rows and ``errors/`` rows.

These are contracts (see DESIGN.md): every writer uses them explicitly, nothing is inferred.
"""
from __future__ import annotations

import pyarrow as pa

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
        pa.field("psnr_rgb", pa.float64()),
        pa.field("psnr_y", pa.float64()),
        pa.field("ms_ssim_rgb", pa.float64()),  # null when the image is below MS-SSIM's minimum size
        pa.field("ms_ssim_db", pa.float64()),
        pa.field("lpips", pa.float64()),  # AlexNet LPIPS v0.1; null unless --metrics asks for it
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
        pa.field("stage", pa.string(), nullable=False),  # load | encode | decode | metrics
        pa.field("error_type", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
    ]
)

STAGES = ("load", "encode", "decode", "metrics")
