"""The device agent (``edgeloop-agent``): runs on a Linux device with numpy and a model
runtime, and nothing of the server.

It enrolls, checks in on the server's schedule (with jitter; exponential backoff on errors),
downloads releases with resume and size limits, verifies the signature and every hash,
installs into the idle A/B slot, switches atomically, runs the self-test, and commits or
switches back, reporting each state. A journal makes every step crash-safe. It serves the
active model in-process (:meth:`Agent.predict`) and on a local HTTP endpoint, and sends
health telemetry windows, buffered while offline.

>>> from edgeloop.agent import Agent
>>> agent = Agent("/var/lib/edgeloop", "https://fleet.example", target="rpi4",
...               enrollment_token="…")  # doctest: +SKIP
>>> agent.recover(); agent.run_once(); agent.predict([[0.1, 0.2, 0.3]])  # doctest: +SKIP

Imports: the standard library, numpy, ``cryptography``, :mod:`edgeloop.errors`,
:mod:`edgeloop.edge.runtime`, :mod:`edgeloop.edge.trees` and :mod:`edgeloop.fleet.bundle`
(onnxruntime only for an ONNX bundle).
"""

from __future__ import annotations

from edgeloop.agent._agent import DEFAULT_MAX_BUNDLE_BYTES, Agent
from edgeloop.agent._cli import main
from edgeloop.agent._crash import CRASH_ENV
from edgeloop.agent._errors import NoModel, UpdateFailed
from edgeloop.agent._journal import STEPS, Journal, JournalState, UpdateRecord
from edgeloop.agent._model import LoadedModel
from edgeloop.agent._serve import Inference, LocalServer
from edgeloop.agent._telemetry import LATENCY_EDGES_MS
from edgeloop.agent._transport import Request, Response, Transport, http_transport

__all__ = [
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
