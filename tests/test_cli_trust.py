"""The command line a researcher can trust: bad configurations refused in one line before any work,
exit codes that do not depend on the working directory, run-name reuse, progress and a final pointer."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from luigi.retcodes import run_with_retcodes
from luigi.task_register import Register
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def two_images(tmp_path, photos) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("coffee", "rocket"):
        Image.fromarray(photos[name][:64, :96]).save(folder / f"{name}.png")
    return folder


def luigi_cli(*args: str) -> int:
    """``luigi --module pipelines RunBenchmark --local-scheduler ARGS`` in this process; its exit status."""
    Register.clear_instance_cache()  # as in a new process: tasks are created (and validated) anew
    with pytest.raises(SystemExit) as exit_:
        run_with_retcodes(["--module", "pipelines", "RunBenchmark", "--local-scheduler", "--no-lock", *args])
    return exit_.value.code


REFUSED = [
    (["--anchor", "jpge"], "--anchor: 'jpge' is not a codec of the run"),
    (["--codecs", '["jpeg", "webp"'], "--codecs: '[\"jpeg\", \"webp\"' is not valid JSON"),
    (["--codecs", "jpeg,webpp"], "--codecs: unknown codec 'webpp'"),
    (["--codecs", "jpeg:qualty=3"], "--codecs: codec 'jpeg' does not accept parameter(s) qualty"),
    (["--qualities", '{"jpge": [50]}'], "--qualities: codec 'jpge' is not in the run"),
    (["--qualities", '{"jpeg": [150]}'], "--qualities: codec 'jpeg': quality 150 is outside its range 0 to 100"),
    (["--qualities", '{"jpeg": [-5]}'], "--qualities: codec 'jpeg': quality -5 is outside its range"),
    (["--qualities", '{"jpeg": [5'], "--qualities: '{\"jpeg\": [5' is not valid JSON"),
    (["--codecs", "rdbench-small", "--qualities", '{"rdbench-small": [7]}'],
     "--qualities: rdbench-small: quality must be one of 1, 2, 3, 4"),
    (["--metrics", "psnr_rgb,psnr"], "--metrics: unknown metric 'psnr'"),
    (["--reference", '["vtn"]'], "--reference: unknown reference"),
    (["--datasets", "sample", "--reference", "vtm"], "--reference: reference curves were asked for, but no dataset"),
    (["--datasets", "folder:/does/not/exist"], "--datasets: 'folder:/does/not/exist': dataset folder"),
    (["--datasets", "kodakk"], "--datasets: unknown dataset 'kodakk'"),
    (["--limit", "0"], "--limit: 0 is not allowed"),
    (["--num-workers", "-2"], "--num-workers: -2 is not allowed"),
    (["--images-per-shard", "0"], "--images-per-shard: 0 is not allowed"),
    (["--batch-size", "-1"], "--batch-size: -1 is not allowed"),
    (["--device", "cuda"], "--device: device 'cuda' requested but CUDA is not available here"),
    (["--device", "gpu"], "--device: unknown device 'gpu'"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_a_bad_parameter_is_refused_in_one_line_before_any_work(args, message, tmp_path, two_images, capsys,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)  # no luigi.cfg here
    if "--device" in args and "cuda" in args:
        pytest.importorskip("torch").cuda.is_available() and pytest.skip("CUDA is present here")
    datasets = [] if "--datasets" in args else ["--datasets", f"folder:{two_images}"]
    code = luigi_cli(*datasets, "--output-root", str(tmp_path / "out"), *args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"rdbench: error: {message}"), err
    assert not (tmp_path / "out").exists()


def test_metric_weights_absent_are_refused_before_any_work(tmp_path, two_images, capsys, monkeypatch):
    monkeypatch.setenv("RDBENCH_WEIGHTS_ROOT", str(tmp_path / "weights"))
    monkeypatch.setenv("RDBENCH_WEIGHTS_DOWNLOAD", "0")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("RDBENCH_INCEPTION_WEIGHTS", raising=False)
    code = luigi_cli("--datasets", f"folder:{two_images}", "--codecs", "jpeg", "--metrics", "psnr_rgb,fid",
                     "--output-root", str(tmp_path / "out"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("rdbench: error: --metrics:") and "weights-inception-2015-12-05-6726825d.pth" in err[0]
    assert not (tmp_path / "out").exists()


def test_run_name_reuse_refuses_another_configuration_and_reports_a_complete_one(tmp_path, two_images, capfd):
    capsys = capfd  # the progress bar writes to file descriptor 2 itself
    common = ["--datasets", f"folder:{two_images}", "--codecs", "jpeg", "--num-workers", "1",
              "--output-root", str(tmp_path / "out"), "--run-name", "mine"]
    assert luigi_cli(*common, "--qualities", '{"jpeg": [30, 70]}') == 0
    err = capsys.readouterr().err
    report = tmp_path / "out" / "mine" / "report.html"
    assert f"report: {report}" in err  # the closing pointer, an absolute path
    assert "evaluating" in err and "item" in err  # the progress bar
    assert (tmp_path / "out" / "mine" / "run.log").stat().st_size > 0

    assert luigi_cli(*common, "--qualities", '{"jpeg": [30, 80]}') == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"rdbench: error: --run-name: run folder {tmp_path / 'out' / 'mine'} holds a run of another configuration: "
        "qualities")

    assert luigi_cli(*common, "--qualities", "{\"jpeg\": [30, 70]}") == 0
    assert f"already complete; report: {report}" in capsys.readouterr().err


def test_a_failed_task_exits_non_zero_outside_the_repository(tmp_path, two_images):
    """No luigi.cfg in the working directory: the package's own [retcode] defaults apply."""
    (two_images / "broken.png").write_bytes(b"not an image")
    env = {k: v for k, v in os.environ.items() if k != "LUIGI_CONFIG_PATH"}
    env["PYTHONPATH"] = str(REPO)
    run = subprocess.run([sys.executable, "-m", "luigi", "--module", "pipelines", "RunBenchmark", "--local-scheduler",
                          "--datasets", f"folder:{two_images}", "--codecs", "jpeg", "--qualities", '{"jpeg": [50]}',
                          "--num-workers", "1", "--strict", "--output-root", str(tmp_path / "out")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 30, run.stderr[-2000:]  # task_failed
    assert "rdbench: EvaluateRun failed: RuntimeError: --strict: 1 item(s) failed" in run.stderr
    assert "full log: " in run.stderr and "run.log" in run.stderr
