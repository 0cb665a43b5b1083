"""The local inference endpoint (:class:`http.server.ThreadingHTTPServer`, loopback by
default): ``POST /predict`` ``{"inputs": [[...], ...]}`` → ``{"predictions": [...],
"ids": [...], "model_version": N, "release": "rel_…"}`` (a prediction id per sample),
``POST /feedback`` ``{"id": "<prediction id>", "label": "imbalance"}`` → 200 ``{"id",
"label", "accepted": true}`` (404 for an id this device did not make, or a kept sample's
number that is gone) and ``GET /healthz`` (200 with a model, 503 without). Errors use the
server's body ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import numpy.typing as npt

from edgeloop.agent._predictions import check_label
from edgeloop.errors import EdgeloopError, NotFound, PayloadTooLarge, ValidationFailed

__all__ = ["MAX_REQUEST_BYTES", "Inference", "LocalServer"]

log = logging.getLogger("edgeloop.agent")
MAX_REQUEST_BYTES = 8 << 20


@dataclass(frozen=True)
class Inference:
    """Labels for a batch, with the model version and release that produced them and the
    prediction id of each sample."""

    predictions: list[str]
    model_version: int
    release: str
    ids: list[str] = field(default_factory=list)


class _Serves(Protocol):
    def infer(self, x: npt.ArrayLike) -> Inference: ...

    def feedback(self, sample_id: str | int, label: str) -> bool: ...

    def status(self) -> dict[str, Any]: ...


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("local endpoint: " + format, *args)

    def _send(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, exc: EdgeloopError) -> None:
        self._send(exc.http_status, exc.to_body())

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/healthz":
            self._send(404, {"error": {"code": "not_found", "message": self.path, "details": {}}})
            return
        status = self.server.agent.status()
        self._send(200 if status.get("status") == "ok" else 503, status)

    def do_POST(self) -> None:
        route = self.path.split("?", 1)[0]
        if route == "/feedback":
            self._feedback()
            return
        if route != "/predict":
            self.close_connection = True
            self._send(404, {"error": {"code": "not_found", "message": self.path, "details": {}}})
            return
        try:
            inputs = self._body().get("inputs")
            if not isinstance(inputs, list):
                raise ValidationFailed(
                    'send {"inputs": [[feature, ...], ...]}: a list of samples',
                    details={"field": "inputs"},
                )
            result = self.server.agent.infer(inputs)
        except EdgeloopError as exc:
            self._error(exc)
            return
        except (ValueError, TypeError) as exc:
            self._error(ValidationFailed(f"inputs: {exc}", details={"field": "inputs"}))
            return
        self._send(
            200,
            {
                "predictions": result.predictions,
                "ids": result.ids,
                "model_version": result.model_version,
                "release": result.release,
            },
        )

    def _feedback(self) -> None:
        try:
            body = self._body()
            sample_id = body.get("id")
            if (
                isinstance(sample_id, bool)
                or not isinstance(sample_id, str | int)
                or (sample_id == "")
            ):
                raise ValidationFailed(
                    'send {"id": "<prediction id>", "label": "<class>"}: id is the prediction '
                    "id /predict returned (or a kept sample's number)",
                    details={"field": "id"},
                )
            label = check_label(body.get("label"))
            if not self.server.agent.feedback(sample_id, label):
                raise NotFound(
                    f"{sample_id!r} is not a prediction id of this device (or the sample with "
                    "that number is no longer kept)",
                    details={"field": "id"},
                )
        except EdgeloopError as exc:
            self._error(exc)
            return
        self._send(200, {"id": sample_id, "label": label, "accepted": True})

    def _body(self) -> dict[str, Any]:
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self.close_connection = True
            raise ValidationFailed("send a JSON body with a Content-Length")
        size = int(length)
        if size > MAX_REQUEST_BYTES:
            self.close_connection = True
            raise PayloadTooLarge(f"the body has {size} bytes; the limit is {MAX_REQUEST_BYTES}")
        try:
            body = json.loads(self.rfile.read(size))
        except ValueError as exc:
            raise ValidationFailed(f"the body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ValidationFailed("send a JSON object", details={"field": "body"})
        return body


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], agent: _Serves) -> None:
        self.agent = agent
        super().__init__(address, _Handler)


class LocalServer:
    """The endpoint, serving from a background thread; :meth:`close` stops it."""

    def __init__(self, agent: _Serves, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), agent)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="edgeloop-agent-http",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
