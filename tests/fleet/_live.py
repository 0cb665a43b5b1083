"""The real app served by uvicorn on a loopback port in this process, with a fast reconciler:
the simulator's end-to-end tests drive it over HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import uvicorn

from edgeloop.config import Settings
from edgeloop.fleet._reconciler import reconcile_once
from edgeloop.server import create_app
from edgeloop.workspace import Workspace


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(
    settings: Settings,
    *,
    reconcile_every: float | None = 0.2,
    lifespan: Literal["on", "off", "auto"] = "off",
) -> Iterator[tuple[str, Workspace]]:
    """``(base URL, workspace)`` of the app (auth off) while the block runs; a reconciler
    pass every ``reconcile_every`` seconds (None: none)."""
    ws = Workspace.open(settings)
    port = free_port()
    app = create_app(settings, workspace=ws, auth=False)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    stop = threading.Event()

    def reconcile(every: float) -> None:
        while not stop.wait(every):
            reconcile_once(ws)

    reconciler = None
    if reconcile_every is not None:
        reconciler = threading.Thread(target=reconcile, args=(reconcile_every,), daemon=True)
        reconciler.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", ws
    finally:
        stop.set()
        server.should_exit = True
        thread.join(10)
        if reconciler is not None:
            reconciler.join(10)
        ws.close()
