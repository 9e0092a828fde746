"""A pure ASGI middleware (Starlette, FastAPI, Quart, Django's ASGI, ...): refuses an HTTP
request whose bearer token is revoked before the app sees it.

    from revoke_client import AsyncRevokeClient
    from revoke_client.asgi import RevocationMiddleware

    revoke = AsyncRevokeClient("http://revoke:8080", api_key=VERIFIER_KEY)
    app = RevocationMiddleware(app, revoke)   # start the client in the app's lifespan

A request without a bearer token passes; a revoked or unreadable token gets 401 with
``WWW-Authenticate: Bearer error="invalid_token"``, and a check the server could not answer,
failing closed, 503. The verdict is put in ``scope["state"]["revoke_verdict"]``. Claims are
read, not verified: the app still verifies the signature.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Dict, MutableMapping

from ._aio import AsyncRevokeClient
from ._claims import TokenError
from ._http import bearer_token, refusal

__all__ = ["RevocationMiddleware"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class RevocationMiddleware:
    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], client: AsyncRevokeClient) -> None:
        self.app = app
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = None
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                authorization = value.decode("latin-1")
                break
        token = bearer_token(authorization)
        if token is None:
            await self.app(scope, receive, send)
            return
        try:
            verdict = await self.client.check(token)
        except TokenError as error:
            answer = refusal(None, str(error))
        else:
            scope.setdefault("state", {})["revoke_verdict"] = verdict
            answer = refusal(verdict)
        if answer is None:
            await self.app(scope, receive, send)
            return
        status, headers, body = answer
        await _respond(send, status, headers, body)


async def _respond(send: Send, status: int, headers: Dict[str, str], body: Dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
