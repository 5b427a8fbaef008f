"""``python -m rdbench.codecs``: one codec on one image, from the command line."""
from __future__ import annotations

import subprocess
import sys

from PIL import Image


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rdbench.codecs", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_cli_prints_one_line_per_quality_and_keeps_outputs(tmp_path, photos):
    Image.fromarray(photos["coffee"][:180, :200]).save(tmp_path / "coffee.png")
    out = run_cli("jpeg", str(tmp_path / "coffee.png"), "-q", "20", "-q", "80", "-o", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    lines = [line.split() for line in out.stdout.splitlines()[2:]]
    assert [line[0] for line in lines] == ["20", "80"]
    sizes = [int(line[1]) for line in lines]
    assert sizes[0] < sizes[1]
    assert (tmp_path / "out" / "coffee.jpeg.q20.bin").stat().st_size == sizes[0]
    assert (tmp_path / "out" / "coffee.jpeg.q80.png").is_file()
    assert 0 < float(lines[0][4]) < float(lines[1][4]) < 1  # MS-SSIM grows with the rate
