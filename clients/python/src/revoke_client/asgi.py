"""A pure ASGI middleware (Starlette, FastAPI, Quart, Django's ASGI, ...): refuses an HTTP
request whose bearer token is revoked before the app sees it.

    from revoke_client import AsyncRevokeClient
    from revoke_client.asgi import RevocationMiddleware

    revoke = AsyncRevokeClient("http://revoke:8080", api_key=VERIFIER_KEY)
    app = RevocationMiddleware(app, revoke)   # start the client in the app's lifespan

The ``Authorization`` header is read as the most lenient common authenticator reads it
(Starlette's ``auth.split()``, DRF SimpleJWT's ``header.split()``): the scheme ``Bearer`` in
any case, any run of whitespace (spaces, tabs), the token; surrounding whitespace ignored.

- **Passes, unchecked** (the app's own authentication decides): a request without an
  ``Authorization`` header, with an empty one, or with one of another scheme (``Basic ...``,
  ``Token ...``) that holds no ``Bearer`` credential.
- **Checked**: exactly one ``Authorization`` header holding one bearer token. A revoked token,
  or one whose claims cannot be read, gets 401 with ``WWW-Authenticate: Bearer
  error="invalid_token"`` and ``{"error": "invalid_token", "message": ...}``; a check the
  server could not answer, failing closed, 503. The verdict is put in
  ``scope["state"]["revoke_verdict"]``.
- **Refused with that 401, never passed on**: several ``Authorization`` headers; ``Bearer``
  with an empty credential or with more than one word (``Bearer a b``); a credential with
  characters no token has (control, non-ASCII, ``,``); a scheme that runs into its credential
  (``Bearer:x``); a ``Bearer`` credential after another one (``Basic x, Bearer y``). An app
  or authenticator might read a token out of any of these that the check never saw.

Claims are read, not verified: the app still verifies the signature. ``kid_of(scope, token)``,
optional, returns the ``kid`` of the key that verifies the token (it may be a coroutine
function; it runs on the event loop), or None for the header's: a token whose header names
no ``kid`` (an issuer with one key per algorithm) is still refused when that key is blocked.
With PyJWT: ``lambda scope, token: jwks.get_signing_key_from_jwt(token).key_id`` (a
:class:`TokenError` it raises refuses the request with 401).
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Dict, MutableMapping, Optional, Union

from ._aio import AsyncRevokeClient
from ._claims import TokenError
from ._http import PASS, REFUSE, read_authorization, refusal, verifying_kid

__all__ = ["RevocationMiddleware"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
KidOf = Callable[[Scope, str], Union[Optional[str], Awaitable[Optional[str]]]]


class RevocationMiddleware:
    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], client: AsyncRevokeClient, kid_of: Optional[KidOf] = None
    ) -> None:
        self.app = app
        self.client = client
        self.kid_of = kid_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Every Authorization header: a scope may hold the name more than once.
        values = [value for name, value in scope.get("headers", []) if name.lower() == b"authorization"]
        authorization = read_authorization(values)
        if authorization.action == PASS:
            await self.app(scope, receive, send)
            return
        if authorization.action == REFUSE:
            answer = refusal(None, authorization.message)
        else:
            token = authorization.token
            assert token is not None
            try:
                kid = await verifying_kid(self.kid_of, scope, token)
                verdict = await self.client.check(token, kid=kid)
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
