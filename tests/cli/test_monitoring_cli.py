"""``edgeloop monitors ingest``: a Parquet or CSV table sketched against a version's reference
and stored as a monitoring window."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.cli.test_cli import run_cli

from edgeloop import registry, tracking
from edgeloop.client import set_backend
from edgeloop.config import load_settings
from edgeloop.monitoring import build_reference, merged_windows
from edgeloop.monitoring.reference import REFERENCE_PATH
from edgeloop.workspace import Workspace

RNG = np.random.default_rng(2)
REFERENCE = build_reference(
    RNG.normal(size=(200, 2)),
    ["rms", "peak"],
    labels=["ok", "worn"],
    proba=RNG.dirichlet([1, 1], 200),
)
T0 = 1_764_000_000_000


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    monkeypatch.setenv("EDGELOOP_HOME", str(path))
    monkeypatch.setenv("COLUMNS", "200")
    ws = Workspace.open(load_settings(home=str(path)))
    run = tracking.create_run(ws, "cli")
    tracking.put_artifact(ws, run.id, "model/model.bin", io.BytesIO(b"m"))
    registry.create_model_version(ws, "pump", run_id=run.id)
    registry.attach_files(ws, "pump", 1, {REFERENCE_PATH: REFERENCE.to_json()})
    ws.close()
    set_backend(None)
    return path


def test_ingest_a_parquet_and_a_csv_table(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = RNG.normal(size=(25, 2))
    table = pa.table({"rms": x[:, 0], "peak": x[:, 1], "prediction": ["ok"] * 20 + ["worn"] * 5})
    pq.write_table(table, tmp_path / "nightly.parquet")
    code, out, err = run_cli(
        capsys,
        "monitors",
        "ingest",
        "--model",
        "pump",
        "--version",
        "1",
        "--file",
        str(tmp_path / "nightly.parquet"),
        "--start",
        str(T0),
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["stored"] and result["samples"] == 25 and result["source"] == "batch:nightly"
    (tmp_path / "api.csv").write_text("rms,peak\n0.1,0.2\n0.3,0.4\n")
    code, out, err = run_cli(
        capsys,
        "monitors",
        "ingest",
        "--model",
        "pump",
        "--version",
        "1",
        "--file",
        str(tmp_path / "api.csv"),
        "--source",
        "endpoint:api",
        "--start",
        str(T0 + 1000),
        "--tag",
        "site=cloud",
    )
    assert code == 0 and "stored: 2 samples" in out, err

    ws = Workspace.open(load_settings(home=str(home)))
    try:
        merged = merged_windows(
            ws, "pump", 1, start_ms=T0, end_ms=T0 + 3_600_000, window_ms=3_600_000
        )
        assert merged[0].sketch.count == 27 and merged[0].sources == 2
        assert merged[0].sketch.prediction is not None
        assert merged[0].sketch.prediction.counts.tolist() == [20, 5]
    finally:
        ws.close()

    code, _, err = run_cli(
        capsys,
        "monitors",
        "ingest",
        "--model",
        "pump",
        "--version",
        "1",
        "--file",
        str(tmp_path / "missing.csv"),
    )
    assert code == 2 and "is not a file" in err
