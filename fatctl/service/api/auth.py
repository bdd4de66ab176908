"""Bearer tokens and scopes, checked before a handler does anything.

`require(scope)` is a route dependency: no token, or one unknown, expired or revoked, is 401
(all alike, so a replayed expired token learns nothing); a live token without the scope is
403. The token's name goes on the request, for the audit line every request gets.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from fatctl.service.errors import Forbidden, Unauthorized
from fatctl.service.tokens import TokenInfo, authenticate

SCHEME = "bearer"


def bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != SCHEME or not token.strip():
        raise Unauthorized("an API token is needed: Authorization: Bearer <token>")
    return token.strip()


def require(scope: str) -> Callable[[Request], TokenInfo]:
    def check(request: Request) -> TokenInfo:
        info = authenticate(request.app.state.runtime.db, bearer(request))
        if info is None:
            raise Unauthorized("the API token is unknown, expired or revoked")
        request.state.token_name = info.name
        if not info.allows(scope):
            raise Forbidden(f"token {info.name} lacks the scope {scope}")
        return info

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return check
