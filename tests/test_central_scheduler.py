"""Two concurrent clients against a real luigid: every task runs exactly once."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests._http import serve
from tests.conftest import kodak_dir

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def luigid(tmp_path):
    port = _free_port()
    luigid_main = "import sys, luigi.cmdline; luigi.cmdline.luigid(sys.argv[1:])"
    proc = subprocess.Popen([sys.executable, "-c", luigid_main, "--port", str(port), "--address", "127.0.0.1",
                             "--state-path", str(tmp_path / "luigid-state.pickle"), "--logdir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("luigid did not start")
    yield port
    proc.terminate()
    proc.wait(timeout=30)


def _clients(port: int, args: list[str], env: dict, n: int = 2) -> list[str]:
    """Run ``n`` identical Luigi clients concurrently; return their logs."""
    cmd = [sys.executable, "-m", "luigi", "--module", "pipelines", *args, "--scheduler-host", "127.0.0.1",
           "--scheduler-port", str(port), "--worker-keep-alive", "--worker-wait-interval", "0.2",
           "--no-lock"]  # the process lock would refuse the twin; the scheduler is what de-duplicates
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(n)]
    logs = [p.communicate(timeout=400)[0] for p in procs]
    # A client that found its tasks run by the other one exits with luigi.cfg's
    # [retcode] already_running (10); nothing may fail.
    codes = sorted(p.returncode for p in procs)
    assert codes[0] == 0 and set(codes) <= {0, 10}, "\n".join(log[-3000:] for log in logs)
    return logs


def _runs(logs: list[str]) -> Counter:
    """How many times each task family was started, over all clients (worker pid, task) pairs."""
    started = {(m.group(1), m.group(2)) for log in logs
               for m in re.finditer(r"\[pid (\d+)\] Worker Worker\(.*?\) running\s+(\w+\(.*\))", log)}
    return Counter(task.partition("(")[0] for _, task in started)


def test_two_clients_share_one_luigid_and_each_task_runs_once(tmp_path, luigid):
    kodak = kodak_dir()
    with serve(kodak) as srv:
        env = {**os.environ, "RDBENCH_MIRROR": srv.url}
        common = ["--rdbench-data-root", str(tmp_path / "data")]
        prep_logs = _clients(luigid, ["PrepareDatasets", "--names", '["kodak"]', "--num-workers", "1", *common], env)
        bench_logs = _clients(luigid, ["RunBenchmark", "--datasets", '["kodak"]', "--limit", "2",
                                       "--codecs", '["jpeg"]', "--qualities", '{"jpeg": [50]}',
                                       "--output-root", str(tmp_path / "out"), "--run-name", "shared",
                                       "--num-workers", "1", *common], env)
    prep_runs, bench_runs = _runs(prep_logs), _runs(bench_logs)
    assert prep_runs == Counter({"FetchDataset": 1, "PrepareDataset": 1, "PrepareDatasets": 1}), prep_runs
    assert bench_runs == Counter({"EvaluateRun": 1, "ReportRun": 1, "RunBenchmark": 1}), bench_runs
    info = json.loads((tmp_path / "out" / "shared" / "run.json").read_text())
    assert info["rows"] == {"results": 2, "errors": 0}
    assert len(list((tmp_path / "data" / "downloads").rglob("kodim*.png"))) == 24
