"""The installed commands, as a user runs them: ``edgeloop demo`` and ``edgeloop server``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGELOOP_")}
    env["EDGELOOP_HOME"] = str(home)
    env["COLUMNS"] = "120"
    return env


def _edgeloop(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgeloop", *args]


def test_demo_trains_registers_and_aliases(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    done = subprocess.run(
        _edgeloop("demo", "--epochs", "3", "--no-fleet"),  # the fleet: test_closed_loop
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "datasets:/digits@1" in done.stdout
    assert "models:/digits@production" in done.stdout
    assert "models:/machine-condition/1" in done.stdout  # the maintenance pipeline registered
    again = subprocess.run(
        _edgeloop("demo", "--epochs", "3", "--no-fleet"),  # the fleet: test_closed_loop
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert again.returncode == 0, again.stderr  # a second demo reuses what exists
    assert "features cached" in again.stdout
    assert "edgeloop server" in done.stdout
    listed = subprocess.run(
        _edgeloop("models", "list", "--json"),
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert '"production": 1' in listed.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_with_auth_prints_the_admin_token_once(tmp_path: Path) -> None:
    home, port = tmp_path / "ws", _free_port()
    cmd = _edgeloop("server", "--port", str(port), "--auth")
    proc = subprocess.Popen(
        cmd, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert httpx.get(f"{base}/api/v1/experiments").status_code == 401
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    token = next(line for line in output.splitlines() if line.startswith("el_"))
    proc = subprocess.Popen(
        cmd, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        for _ in range(100):
            try:
                response = httpx.get(
                    f"{base}/api/v1/experiments",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=1,
                )
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert response.status_code == 200
    finally:
        proc.terminate()
        second = proc.communicate(timeout=20)[0]
    assert "el_" not in second  # shown once, on the first start only
