"""Classical codecs start without torch: the codec CLI and a worker's shard evaluation import
neither torch nor CompressAI when only classical codecs and torch-free metrics run.

Each check runs in a fresh interpreter (this test process has torch imported already) and
reports which heavy modules that interpreter ended up with. The start-up time itself is a
benchmark, not a test: ``benchmarks/bench_cold_start.py``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
#: Modules a classical-only run has no use for (torch and what is built on it).
HEAVY = ("torch", "torchvision", "compressai", "pytorch_msssim", "lpips", "piq", "torch_fidelity")

# Runs ``python -m rdbench.codecs ARGS`` in-process, then prints the heavy modules it imported.
CLI_PROBE = """
import json, runpy, sys
args = json.loads(sys.argv[1])
sys.argv = ["rdbench.codecs", *args]
try:
    runpy.run_module("rdbench.codecs", run_name="__main__", alter_sys=True)
    status = 0
except SystemExit as exc:
    status = exc.code or 0
heavy = sorted(m for m in {heavy} if m in sys.modules)
print("PROBE " + json.dumps({{"status": status, "heavy": heavy}}))
"""

# Plans a classical-only run and evaluates its shards in this process, as a worker does.
WORKER_PROBE = """
import json, sys
from rdbench.run import RunConfig, evaluate_shards, prepare_run
config = RunConfig(datasets=[sys.argv[1]], codecs=("jpeg", "webp"), qualities={{"jpeg": [30], "webp": [30]}},
                   metrics=("psnr_rgb", "psnr_y", "ms_ssim_rgb"), device="cpu", output_root=sys.argv[2],
                   run_name="cold")
counters = evaluate_shards(prepare_run(config))
heavy = sorted(m for m in {heavy} if m in sys.modules)
print("PROBE " + json.dumps({{"items_ok": counters.get("items_ok", 0), "heavy": heavy}}))
"""


def probe(code: str, *args: str) -> tuple[dict, subprocess.CompletedProcess]:
    out = subprocess.run([sys.executable, "-c", code.format(heavy=HEAVY), *args], capture_output=True,
                         text=True, cwd=REPO, timeout=300)
    lines = [line for line in out.stdout.splitlines() if line.startswith("PROBE ")]
    assert lines, f"probe failed (exit {out.returncode}):\n{out.stderr[-3000:]}"
    return json.loads(lines[-1][len("PROBE "):]), out


@pytest.fixture
def png(tmp_path, photos) -> Path:
    """A 200×176 crop of a sample photograph: large enough for MS-SSIM (161 px)."""
    path = tmp_path / "crop.png"
    Image.fromarray(photos["coffee"][:176, :200]).save(path)
    return path


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_classical_codec_cli_imports_no_torch(png, device):
    result, out = probe(CLI_PROBE, json.dumps(["jpeg", str(png), "-q", "50", "--device", device]))
    assert result["status"] == 0, out.stderr
    ms_ssim = float(out.stdout.splitlines()[2].split()[4])  # the MS-SSIM was computed, without torch
    assert 0.8 < ms_ssim < 1
    assert result["heavy"] == []


def test_codec_cli_help_imports_no_torch():
    result, out = probe(CLI_PROBE, json.dumps(["--help"]))
    assert result["status"] == 0 and "usage:" in out.stdout
    assert result["heavy"] == []


def test_classical_codec_cli_still_rejects_a_malformed_device(png):
    result, out = probe(CLI_PROBE, json.dumps(["jpeg", str(png), "-q", "50", "--device", "gpu0"]))
    assert result["status"] == 2
    assert "unknown device 'gpu0'" in out.stderr
    assert result["heavy"] == []


def test_classical_worker_path_imports_no_torch(tmp_path, png):
    images = png.parent
    result, out = probe(WORKER_PROBE, f"folder:{images}", str(tmp_path / "reports"))
    assert result["items_ok"] == 2, out.stderr  # one image × (jpeg, webp) × one quality
    assert result["heavy"] == []


def test_resolve_device_auto_without_torch_users_is_the_cpu():
    code = ("import sys; from rdbench.device import resolve_device; "
            "print(resolve_device('auto', uses_torch=False), resolve_device('cpu'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.stdout.split() == ["cpu", "cpu", "False"], out.stderr


# A whole in-process run (validate with --device auto, plan, evaluate, report) of classical codecs.
RUN_PROBE = """
import json, sys
from rdbench.run import RunConfig, run_benchmark
config = RunConfig(datasets=[sys.argv[1]], codecs=("jpeg",), qualities={{"jpeg": [20, 40, 60, 80]}},
                   device="auto", output_root=sys.argv[2], run_name="whole")
config.validate()
report = run_benchmark(config)
info = json.load(open(sys.argv[2] + "/whole/run.json"))
heavy = sorted(m for m in {heavy} if m in sys.modules)
print("PROBE " + json.dumps({{"report": str(report), "device": info["device"], "heavy": heavy}}))
"""

# Every per-image metric the registry says needs no torch, computed on one pair.
METRICS_PROBE = """
import json, sys
import numpy as np
from PIL import Image
from rdbench.metrics.registry import METRICS
x = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
y = np.clip(x.astype(int) + np.random.default_rng(0).integers(-9, 10, x.shape), 0, 255).astype(np.uint8)
names = [m.name for m in METRICS.values() if m.level == "image" and not m.uses_torch]
values = {{name: METRICS[name].load("cpu")(x, y) for name in names}}
heavy = sorted(m for m in {heavy} if m in sys.modules)
print("PROBE " + json.dumps({{"values": values, "heavy": heavy}}))
"""


def test_a_classical_run_with_device_auto_imports_no_torch(tmp_path, png):
    result, out = probe(RUN_PROBE, f"folder:{png.parent}", str(tmp_path / "reports"))
    assert result["report"].endswith("report.html") and result["device"] == "cpu", out.stderr
    assert result["heavy"] == []


def test_metrics_declared_torch_free_import_no_torch(png):
    result, out = probe(METRICS_PROBE, str(png))
    values = result["values"]
    assert {"psnr_rgb", "ms_ssim_rgb", "ssim", "vif", "nlpd", "psnr_yuv709", "ms_ssim_y709", "psnr_hvs_m",
            "vmaf"} <= set(values), out.stderr
    assert all(v is not None for cols in values.values() for v in cols.values())
    assert result["heavy"] == []
