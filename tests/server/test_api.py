"""REST specifics: status codes, the error body, limits, auth, health and metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from tests._asgi import asgi_client

from edgeloop import governance
from edgeloop.server import create_app
from edgeloop.workspace import Principal, Workspace

API = "/api/v1"


@pytest.fixture
def ws(make_workspace: Callable[..., Workspace]) -> Workspace:
    return make_workspace(max_body_bytes=4096, max_artifact_bytes=10_000)


@pytest.fixture
def client(ws: Workspace) -> Iterator[httpx.Client]:
    with asgi_client(create_app(workspace=ws)) as c:
        yield c


def _error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code
    assert set(body) == {"code", "message", "details"}
    assert isinstance(body["message"], str) and body["message"]
    return dict(body)


def _run(client: httpx.Client) -> str:
    response = client.post(f"{API}/runs", json={"experiment": "api", "params": {"lr": "0.1"}})
    assert response.status_code == 201
    return str(response.json()["id"])


def test_unknown_ids_are_404(client: httpx.Client) -> None:
    _error(client.get(f"{API}/runs/{'0' * 32}"), 404, "not_found")
    _error(client.get(f"{API}/experiments/nope"), 404, "not_found")
    _error(client.get(f"{API}/models/nope"), 404, "not_found")
    _error(client.get(f"{API}/no/such/route"), 404, "not_found")


def test_duplicates_and_rewritten_params_are_409(client: httpx.Client) -> None:
    assert client.post(f"{API}/experiments", json={"name": "dup"}).status_code == 201
    _error(client.post(f"{API}/experiments", json={"name": "dup"}), 409, "conflict")
    run_id = _run(client)
    body = _error(
        client.post(f"{API}/runs/{run_id}/params", json={"params": {"lr": "0.2"}}), 409, "conflict"
    )
    assert "write-once" in str(body["message"])


def test_invalid_filter_is_400_with_the_position(client: httpx.Client) -> None:
    _run(client)
    body = _error(
        client.post(f"{API}/runs/search", json={"filter": "metrics.f1 > 'x'"}),
        400,
        "filter_syntax",
    )
    details = body["details"]
    assert isinstance(details, dict)
    assert details["position"] == 13


def test_schema_violations_are_400_naming_the_field(client: httpx.Client) -> None:
    body = _error(client.post(f"{API}/experiments", json={"nam": "x"}), 400, "validation_failed")
    assert "name" in str(body["message"])
    _error(client.post(f"{API}/runs", content=b"{not json"), 400, "validation_failed")
    run_id = _run(client)
    _error(
        client.post(f"{API}/runs/{run_id}/metrics", json={"points": [{"key": "a", "value": "x"}]}),
        400,
        "validation_failed",
    )


@pytest.mark.parametrize("path", ["%2E%2E/secret", "a/%2E%2E/%2E%2E/b", "%2Fetc%2Fpasswd", "a//b"])
def test_artifact_paths_escaping_the_run_are_400(client: httpx.Client, path: str) -> None:
    run_id = _run(client)
    response = client.put(f"{API}/runs/{run_id}/artifacts/{path}", content=b"x")
    _error(response, 400, "validation_failed")
    assert client.get(f"{API}/runs/{run_id}/artifacts").json() == []


def test_oversized_bodies_are_413_and_store_nothing(client: httpx.Client) -> None:
    run_id = _run(client)
    big_json = {"params": {f"k{i}": "v" * 50 for i in range(200)}}
    _error(client.post(f"{API}/runs/{run_id}/params", json=big_json), 413, "payload_too_large")
    assert client.get(f"{API}/runs/{run_id}").json()["params"] == {"lr": "0.1"}
    response = client.put(f"{API}/runs/{run_id}/artifacts/big.bin", content=b"x" * 20_000)
    _error(response, 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts the stream
        for _ in range(20):
            yield b"y" * 1000

    response = client.put(f"{API}/runs/{run_id}/artifacts/streamed.bin", content=chunks())
    _error(response, 413, "payload_too_large")
    assert client.get(f"{API}/runs/{run_id}/artifacts").json() == []


def test_artifact_download_is_verified(client: httpx.Client, ws: Workspace) -> None:
    run_id = _run(client)
    entry = client.put(f"{API}/runs/{run_id}/artifacts/w.bin", content=b"weights").json()
    response = client.get(f"{API}/runs/{run_id}/artifacts/w.bin")
    assert response.content == b"weights"
    assert response.headers["etag"] == f'"{entry["digest"]}"'
    digest = str(entry["digest"])
    blob = ws.settings.home / "artifacts" / "blobs" / digest[:2] / digest[2:]
    blob.chmod(0o644)
    blob.write_bytes(b"tampered")
    _error(client.get(f"{API}/runs/{run_id}/artifacts/w.bin"), 500, "integrity_error")


def test_health_ready_metrics_and_openapi(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["database"] == "sqlite"
    client.get(f"{API}/experiments")
    metrics = client.get("/metrics").text
    assert (
        'edgeloop_http_requests_total{method="GET",route="/api/v1/experiments",status="200"}'
        in metrics
    )
    spec = client.get(f"{API}/openapi.json").json()
    assert "/api/v1/runs/search" in spec["paths"]
    assert client.get("/docs").status_code == 200


@pytest.fixture
def secured(ws: Workspace) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    admin = ws.acting_as(Principal("test", "admin"))
    tokens = {
        role: governance.create_token(admin, role, role)[1]
        for role in ("viewer", "editor", "admin")
    }
    with asgi_client(create_app(workspace=ws, auth=True)) as c:
        yield c, tokens


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_auth_no_or_bad_token_is_401(secured: tuple[httpx.Client, dict[str, str]]) -> None:
    client, _ = secured
    _error(client.get(f"{API}/experiments"), 401, "unauthenticated")
    _error(
        client.get(f"{API}/experiments", headers=_auth("el_aaaaaaaaaaaa_" + "x" * 40)),
        401,
        "unauthenticated",
    )
    _error(client.get(f"{API}/experiments", headers=_auth("garbage")), 401, "unauthenticated")
    assert client.get("/healthz").status_code == 200  # probes stay open


def test_auth_roles_are_enforced_per_endpoint(secured: tuple[httpx.Client, dict[str, str]]) -> None:
    client, tokens = secured
    viewer, editor, admin = (_auth(tokens[r]) for r in ("viewer", "editor", "admin"))
    assert client.get(f"{API}/experiments", headers=viewer).status_code == 200
    _error(
        client.post(f"{API}/experiments", json={"name": "x"}, headers=viewer),
        403,
        "permission_denied",
    )
    assert client.post(f"{API}/experiments", json={"name": "x"}, headers=editor).status_code == 201
    _error(client.get(f"{API}/tokens", headers=editor), 403, "permission_denied")
    listed = client.get(f"{API}/tokens", headers=admin).json()
    assert {t["role"] for t in listed} == {"viewer", "editor", "admin"}
    run = client.post(f"{API}/runs", json={"experiment": "x"}, headers=editor).json()
    assert run["created_by"] == "token:editor"


def test_revoked_tokens_stop_working(secured: tuple[httpx.Client, dict[str, str]]) -> None:
    client, tokens = secured
    admin = _auth(tokens["admin"])
    editor_id = next(
        t["id"] for t in client.get(f"{API}/tokens", headers=admin).json() if t["role"] == "editor"
    )
    assert client.delete(f"{API}/tokens/{editor_id}", headers=admin).status_code == 200
    _error(
        client.get(f"{API}/experiments", headers=_auth(tokens["editor"])), 401, "unauthenticated"
    )


def test_first_admin_token_is_created_once(ws: Workspace) -> None:
    first = governance.ensure_admin_token(ws)
    assert first is not None
    assert governance.ensure_admin_token(ws) is None
    assert governance.authenticate(ws, first).role == "admin"
