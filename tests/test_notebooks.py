"""Both notebooks execute top to bottom (stored without outputs) on real run files."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["leaderboard.ipynb", "compare_models.ipynb"])
def test_notebook_executes(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_RUNS_DIR", str(DATA))
    monkeypatch.setenv("HARNESS_NOTEBOOK_OUT", str(tmp_path / "charts"))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "stored with outputs"
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    if name == "leaderboard.ipynb":
        assert sorted(p.name for p in (tmp_path / "charts").glob("*.png")) == [
            "gap.png", "leaderboard.png", "radar.png", "size.png"]
        assert sum(out.output_type == "display_data" for out in outputs) >= 4
    else:
        text = "".join(str(out.get("data", {}).get("text/plain", "")) for out in outputs)
        assert "ci_low" in text and "mcnemar_p" in text
