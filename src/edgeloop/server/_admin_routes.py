"""Routes for API tokens (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from edgeloop import governance
from edgeloop.governance import TokenInfo
from edgeloop.server._deps import as_role
from edgeloop.server._schemas import TokenIn
from edgeloop.workspace import Workspace

router = APIRouter(tags=["tokens"])
admin = Depends(as_role("admin"))


@router.post("/tokens", status_code=201)
def create_token(body: TokenIn, ws: Workspace = admin) -> dict[str, object]:
    info, token = governance.create_token(ws, body.name, body.role)
    return {"info": info.model_dump(), "token": token}


@router.get("/tokens")
def list_tokens(ws: Workspace = admin) -> list[TokenInfo]:
    return governance.list_tokens(ws)


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: str, ws: Workspace = admin) -> TokenInfo:
    return governance.revoke_token(ws, token_id)
