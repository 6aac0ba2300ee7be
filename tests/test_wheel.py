"""The built wheel carries the task YAMLs, their helpers and the published scores, and works from any folder.

The wheel goes into a fresh virtualenv whose only other packages are this venv's installed dependencies
(added as a plain path, so the checkout's editable install is not seen); `harness` then runs from a
temporary folder outside the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from harness.paths import CHECKOUT, PUBLISHED_CSV, TASKS_DIR
from harness.provenance import sha256_file
from tests.conftest import MIRROR, needs, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the fresh venv's bin folder, the wheel file)."""
    if CHECKOUT is None:
        pytest.fail("the tests run from a checkout (pyproject.toml above the package)")
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "-w", str(root / "dist"), str(CHECKOUT)], check=True, capture_output=True, text=True)
    [wheel] = (root / "dist").glob("open_llm_harness-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "--quiet", str(wheel)], check=True, capture_output=True, text=True)
    return venv / "bin", wheel


def _harness(bin_dir: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"HARNESS_DATA_DIR", "PYTHONPATH"}}
    return subprocess.run([str(bin_dir / "harness"), *args], cwd=cwd, capture_output=True, text=True, timeout=1200,
                          env={**clean, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                               "HARNESS_CACHE_DIR": str(cwd / "cache"), **env})


def test_the_wheel_holds_every_task_file_and_the_published_scores(installed) -> None:
    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    ours = {f"harness/{path.relative_to(TASKS_DIR.parent).as_posix()}" for path in TASKS_DIR.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}
    assert ours and ours <= names, sorted(ours - names)
    assert "harness/task_definitions/mmlu/_default_template_yaml" in names  # an include without a .yaml suffix
    assert f"harness/{PUBLISHED_CSV.name}" in names


def test_installed_harness_lists_the_checkouts_tasks_from_another_folder(installed, tmp_path: Path) -> None:
    bin_dir, _ = installed
    done = _harness(bin_dir, tmp_path, "tasks")
    assert done.returncode == 0, done.stderr
    assert done.stdout == run_cli("tasks").stdout
    module = _harness(bin_dir, tmp_path, "data", "--tasks", "arc_easy")  # no checkout beside it: no mirror
    assert module.returncode == 0, module.stderr
    assert module.stderr.strip().splitlines()[-1].startswith("no benchmark mirror found: set HARNESS_DATA_DIR")
    assert "hub:allenai/ai2_arc/ARC-Easy" in module.stdout


@needs("mirror", "embedded_model")
def test_installed_harness_runs_from_another_folder(installed, tmp_path: Path) -> None:
    bin_dir, _ = installed
    done = _harness(bin_dir, tmp_path, "run", "--model", "smollm2-135m-instruct", "--tasks", "arc_easy",
                    "--limit", "2", HARNESS_DATA_DIR=str(MIRROR))
    assert done.returncode == 0, done.stderr[-3000:]
    [path] = (tmp_path / "results" / "runs").glob("*__arc_easy__*[0-9]Z.json")
    result = json.loads(path.read_text())
    assert result["status"] == "complete" and result["n"] == 2
    site = next((bin_dir.parent / "lib").glob("python*/site-packages"))
    assert result["provenance"]["task_yaml"] == {
        "harness/task_definitions/arc_easy.yaml": sha256_file(TASKS_DIR / "arc_easy.yaml")}
    assert (site / "harness" / "task_definitions" / "arc_easy.yaml").is_file()
    assert result["provenance"]["data"]["mirror_dir"] == str(MIRROR)
