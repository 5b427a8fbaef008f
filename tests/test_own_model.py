"""README "Evaluate your own model": the example project's codec, registered by its entry point, run by RunBenchmark.

The example (examples/own_model) is installed the way the README says, minus pip: a dist-info
with its pyproject's entry point, and the project on PYTHONPATH, so that Beam's worker
processes find the codec by name as the Luigi process does.
"""
from __future__ import annotations

import os
import re
import sys
import tomllib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("compressai")

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "own_model"


def _readme_section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Evaluate your own model\n", 1)[1].split("\n## ", 1)[0]


def test_readme_shows_the_example_as_it_is():
    blocks = dict(re.findall(r"```(python|toml)\n(.*?)```", _readme_section(), re.S))
    assert blocks["python"] == (EXAMPLE / "mymodel" / "codec.py").read_text(encoding="utf-8")
    entry_points = tomllib.loads(blocks["toml"])["project"]["entry-points"]
    pyproject = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))
    assert entry_points == pyproject["project"]["entry-points"]


@pytest.fixture
def installed_example(tmp_path, monkeypatch):
    """``pip install -e examples/own_model``, as far as rdbench can tell (sys.path and PYTHONPATH)."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    site = tmp_path / "site"
    dist = site / f"{project['name']}-{project['version']}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    group = project["entry-points"]["rdbench.codecs"]
    (dist / "entry_points.txt").write_text("[rdbench.codecs]\n" + "".join(f"{k} = {v}\n" for k, v in group.items()))
    paths = [str(site), str(EXAMPLE)]
    for path in reversed(paths):
        monkeypatch.syspath_prepend(path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    yield
    for name in [m for m in sys.modules if m == "mymodel" or m.startswith("mymodel.")]:
        del sys.modules[name]


def test_own_model_through_run_benchmark(installed_example, small_folder, tmp_path):
    import luigi

    from mymodel.network import MyModel
    from pipelines import RunBenchmark
    from rdbench.codecs import family, known

    assert "mymodel" in known() and family("mymodel") == "learned"
    runs = tmp_path / "runs"
    runs.mkdir()
    for q in (1, 2):  # the user's trained weights: here random ones, one state dict per quality
        torch.manual_seed(q)
        torch.save(MyModel(N=64, M=96).state_dict(), runs / f"q{q}.pth")
    spec = f"mymodel:checkpoint={runs}/q{{quality}}.pth"

    result = luigi.build(
        [RunBenchmark(datasets=[f"folder:{small_folder}"], codecs=[spec], qualities={"mymodel": [1, 2]},
                      num_workers=2, limit=2, output_root=str(tmp_path / "out"), run_name="own")],
        local_scheduler=True, detailed_summary=True)  # two worker processes: each finds the codec anew
    assert result.status.name == "SUCCESS", result.summary_text

    run = tmp_path / "out" / "own"
    errors = sorted(run.glob("errors/*.parquet"))  # e.g. a worker that cannot find the codec
    assert not errors, pq.read_table(errors[0]).to_pandas().message.tolist()
    rows = pq.read_table(run / "results").to_pandas()
    assert len(rows) == 2 * 2 and set(rows.codec) == {spec} and sorted(set(rows.quality)) == [1.0, 2.0]
    assert (rows.bpp > 0).all() and (rows.bpp_estimated > 0).all()
    assert np.isfinite(rows.psnr_rgb).all() and rows.roundtrip_ok.all()
    assert rows.codec_version.str.contains(r"q1\.pth sha256 [0-9a-f]{8}").any()
