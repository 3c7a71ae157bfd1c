"""Every script in examples/ runs to the end (the standards: every example runs in CI)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 2, EXAMPLES


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    # in a scratch directory, so any file an example writes lands there; with a
    # non-interactive matplotlib backend for examples that plot
    env = dict(os.environ, MPLBACKEND="Agg")
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip(), f"{script.name} printed nothing"
    if "savefig(" in script.read_text():  # an example that draws writes its PNGs
        written = sorted(tmp_path.glob("*.png"))
        assert written, f"{script.name} wrote no PNG"
        for png in written:
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
            assert f"wrote {png.name}" in out.stdout, png.name
