"""What a run shows on the console: a progress bar and a closing summary; the chatter goes to run.log.

Beam's local workers are subprocesses that log at INFO to the stderr they inherit, and Beam adds a
root handler in this process that doubles Luigi's lines. During a job, :func:`job_console` sends
file descriptor 2 (this process's and so its workers') to ``<run>/run.log`` and hands the progress
bar a stream to the real console; afterwards it restores stderr and removes the handlers the job
added. ``--verbose`` leaves everything on the console.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO

from tqdm import tqdm

from rdbench.run import folder

#: The run's full log, in the run folder.
RUN_LOG = "run.log"
#: Seconds between two progress updates (the bar refreshes at least this often).
POLL_S = 2.0


@contextlib.contextmanager
def job_console(run_dir: str, verbose: bool = False) -> Iterator[TextIO]:
    """Run a job with its output in ``<run_dir>/run.log``; yields a stream to the console."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    local = folder.is_local(run_dir)
    if local:
        log_path = os.path.join(run_dir.removeprefix("file://"), RUN_LOG)
    else:  # an object store: written locally, uploaded at the end
        fd, log_path = tempfile.mkstemp(prefix="rdbench-run-", suffix=".log")
        os.close(fd)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    file_handler = logging.FileHandler(log_path)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(file_handler)
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    sys.stderr.flush()
    console_fd = os.dup(2)
    console = os.fdopen(os.dup(console_fd), "w", buffering=1)
    if not verbose:
        with open(log_path, "ab") as log_file:
            os.dup2(log_file.fileno(), 2)
    try:
        yield console
    finally:
        sys.stderr.flush()
        os.dup2(console_fd, 2)
        os.close(console_fd)
        console.close()
        for handler in set(root.handlers) - set(handlers):
            root.removeHandler(handler)
        root.setLevel(level)
        file_handler.close()
        if not local:
            with open(log_path, "rb") as f:
                folder.write_bytes_atomic(folder.join(run_dir, RUN_LOG), f.read())
            os.unlink(log_path)


def run_with_progress(job: Callable[[], dict], run_dir: str, shards: Sequence, console: TextIO,
                      report: Callable[[int, str], None] | None = None) -> dict:
    """Run the (synchronous) Beam ``job`` in a thread; meanwhile show items done, errors, rate and ETA.

    Progress is read from the run folder (a shard's items count when its results file exists), so
    it works with every runner. ``report(percent, message)`` also gets it (Luigi's progress).
    """
    outcome: dict = {}

    def target():
        try:
            outcome["counters"] = job()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    items = {s.name: s.n_items for s in shards}
    already = folder.completed_shards(run_dir)
    bar = tqdm(total=sum(items.values()), initial=sum(n for name, n in items.items() if name in already),
               unit="item", desc="evaluating", file=console, mininterval=POLL_S, dynamic_ncols=True)
    thread = threading.Thread(target=target, name="beam-job", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(timeout=POLL_S)
            done = folder.completed_shards(run_dir)
            n_done = sum(n for name, n in items.items() if name in done)
            bar.set_postfix(errors=folder.count_rows(run_dir, "errors"), refresh=False)
            bar.update(n_done - bar.n)
            if report is not None:
                report(int(100 * n_done / max(bar.total, 1)), f"{n_done}/{bar.total} items evaluated")
    finally:
        bar.close()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["counters"]


def closing_summary(run_dir: str) -> str:
    """The lines printed when a run ends: rows, errors, wall time, the BD-rate table, the report's path."""
    import pandas as pd

    info = folder.read_json(folder.join(run_dir, "run.json"))
    started = pd.Timestamp(info["started"])
    wall = (pd.Timestamp.now(tz="UTC") - started).total_seconds()
    lines = [f"rdbench: run {info['run_id']}: {info['rows']['results']} results, {info['rows']['errors']} errors, "
             f"{wall:.1f} s since the evaluation started"]
    bd_path = folder.join(run_dir, "bd_rate.csv")
    if folder.exists(bd_path):
        import io

        bd = pd.read_csv(io.BytesIO(folder.read_bytes(bd_path)))
        bd = bd[bd["bd_rate_percent"].notna()]
        if len(bd):
            table = bd.pivot_table(index=["dataset", "codec"], columns="metric", values="bd_rate_percent")
            lines.append(f"BD-rate vs {bd['anchor'].iloc[0]} (%, negative = fewer bits):")
            lines.append(table.round(2).to_string())
    report = folder.join(run_dir, "report.html")
    lines.append(f"report: {os.path.abspath(report) if folder.is_local(report) else report}")
    return "\n".join(lines)


def say(text: str) -> None:
    """A line for the user on the console (not through logging: it shows whatever the log level)."""
    print(text, file=sys.stderr, flush=True)

