"""README's two commands: what they run, and that CI finds the test command."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import REPO

DATA = 'DOTREC_DATA="${DOTREC_DATA:-../shared/data}"'


def _block_after(marker: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    after = text[text.index(marker) :]
    start = after.index("```sh\n") + len("```sh\n")
    return after[start : after.index("```", start)].strip()


def test_run_command_reads_the_bundled_data_like_the_test_command():
    run = _block_after("<!-- run-command -->")
    assert run.endswith(f"{DATA} dotrec quickstart")
    assert f"{DATA} python -m pytest" in _block_after("<!-- test-command -->")


@pytest.mark.skipif(shutil.which("awk") is None, reason="needs awk")
def test_ci_extracts_the_test_command():
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    extract = next(line for line in script.splitlines() if line.startswith("cmd=$("))
    command = extract.removeprefix("cmd=$(").removesuffix(")")
    found = subprocess.run(
        ["bash", "-c", command], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == _block_after("<!-- test-command -->")
