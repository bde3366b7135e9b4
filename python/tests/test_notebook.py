"""examples/quickstart.ipynb, top to bottom, against a real server (nbclient, a fresh kernel)."""

from __future__ import annotations

import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

from gradlab.testing import LocalServer

NOTEBOOK = pathlib.Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"


@pytest.mark.notebook
@pytest.mark.timeout(1200)
def test_quickstart_notebook_runs(server: LocalServer, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("GRADLAB_SERVER", server.url)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("GRADLAB_TOKEN", raising=False)
    monkeypatch.delenv("GRADLAB_CA_CERT", raising=False)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    out = pathlib.Path(os.environ.get("GRADLAB_NOTEBOOK_OUT", tmp_path / "quickstart.ipynb"))
    nbformat.write(nb, out)

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "logistic job" in text and "tanh" in text and "verdict" in text
    assert "288/288 jobs done" in text
    for activation in ("logistic", "tanh", "atan", "softsign", "logsig", "ramp", "softplus", "logmin", "semisigmoid"):
        assert activation in text
    assert "<= 2" in text and "unbounded" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1, "one figure: both heat maps"
