"""Store for API tokens (only their SHA-256 hashes are kept)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgeloop.store._models import Token

__all__ = ["TokenStore"]


class TokenStore:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, token: Token) -> Token:
        self.s.add(token)
        self.s.flush()
        return token

    def get(self, token_id: str) -> Token | None:
        return self.s.get(Token, token_id)

    def all(self) -> list[Token]:
        return list(self.s.scalars(select(Token).order_by(Token.created_at, Token.id)))

    def active_with_role(self, role: str) -> list[Token]:
        stmt = select(Token).where(Token.role == role, Token.revoked_at.is_(None))
        return list(self.s.scalars(stmt))
