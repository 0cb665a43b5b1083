"""The agent runs on a device: importing it must not pull in the server's libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import edgeloop.agent

HEAVY = ("sqlalchemy", "httpx", "pydantic", "pandas", "sklearn", "pyarrow", "fastapi")


@pytest.mark.slow
def test_importing_the_agent_loads_nothing_heavy() -> None:
    code = (
        "import json, sys, edgeloop.agent\n"
        "from edgeloop.agent import Agent, main\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert json.loads(out.stdout) == []


def test_the_public_names() -> None:
    assert sorted(edgeloop.agent.__all__) == sorted(
        [
            "CRASH_ENV",
            "DEFAULT_MAX_BUNDLE_BYTES",
            "LATENCY_EDGES_MS",
            "STEPS",
            "Agent",
            "Inference",
            "Journal",
            "JournalState",
            "LoadedModel",
            "LocalServer",
            "NoModel",
            "Request",
            "Response",
            "Transport",
            "UpdateFailed",
            "UpdateRecord",
            "http_transport",
            "main",
        ]
    )
    for name in edgeloop.agent.__all__:
        assert hasattr(edgeloop.agent, name)
