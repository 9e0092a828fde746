"""FastAPI: a dependency that refuses a revoked bearer token.

    from contextlib import asynccontextmanager
    from fastapi import Depends, FastAPI
    from revoke_client import AsyncRevokeClient
    from revoke_client.fastapi import RevocationCheck

    revoke = AsyncRevokeClient("http://revoke:8080", api_key=VERIFIER_KEY)

    @asynccontextmanager
    async def lifespan(app):
        async with revoke:
            yield

    app = FastAPI(lifespan=lifespan)
    not_revoked = RevocationCheck(revoke)

    @app.get("/me", dependencies=[Depends(not_revoked)])
    async def me(): ...

The ``Authorization`` header is read as the most lenient common authenticator reads it
(Starlette's ``auth.split()``, DRF SimpleJWT's ``header.split()``): the scheme ``Bearer`` in
any case, any run of whitespace (spaces, tabs), the token; surrounding whitespace ignored.

- **No bearer token**: no ``Authorization`` header, an empty one, or one of another scheme
  (``Basic ...``) that holds no ``Bearer`` credential. The dependency raises 401 with
  ``WWW-Authenticate: Bearer``, or with ``required=False`` returns None (the app's own
  authentication decides).
- **Checked**: exactly one ``Authorization`` header holding one bearer token. A revoked or
  unreadable token is 401 with ``WWW-Authenticate: Bearer error="invalid_token"``; a check
  the server could not answer, failing closed, is 503. It returns the verdict.
- **Refused with that 401, even with** ``required=False``: several ``Authorization`` headers;
  ``Bearer`` with an empty credential or with more than one word (``Bearer a b``); a
  credential with characters no token has; a scheme that runs into its credential
  (``Bearer:x``); a ``Bearer`` credential after another one (``Basic x, Bearer y``).

A synchronous :class:`RevokeClient` works too: its checks run in the thread pool, since one
may wait on the network. ``kid_of(request, token)``, optional, returns the ``kid`` of the key
that verifies the token (it may be a coroutine function; it runs on the event loop), or None
for the header's: a token whose header names no ``kid`` (an issuer with one key per
algorithm) is still refused when that key is blocked.
"""

from __future__ import annotations

from typing import Awaitable, Callable, Dict, NoReturn, Optional, Tuple, Union

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ._aio import AsyncRevokeClient
from ._claims import TokenError
from ._client import RevokeClient
from ._core import Verdict
from ._http import PASS, REFUSE, read_authorization, refusal, verifying_kid

__all__ = ["RevocationCheck"]


KidOf = Callable[[Request, str], Union[Optional[str], Awaitable[Optional[str]]]]


class RevocationCheck:
    def __init__(self, client: Union[AsyncRevokeClient, RevokeClient], required: bool = True, kid_of: Optional[KidOf] = None) -> None:
        self.client = client
        self.required = required
        self.kid_of = kid_of

    async def __call__(self, request: Request) -> Optional[Verdict]:
        # Every Authorization header: a request may hold the name more than once.
        authorization = read_authorization(request.headers.getlist("authorization"))
        if authorization.action == PASS:
            if not self.required:
                return None
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        if authorization.action == REFUSE:
            _raise(refusal(None, authorization.message))
        token = authorization.token
        assert token is not None
        try:
            kid = await verifying_kid(self.kid_of, request, token)
            if isinstance(self.client, AsyncRevokeClient):
                verdict = await self.client.check(token, kid=kid)
            else:
                verdict = await run_in_threadpool(self.client.check, token, kid=kid)
        except TokenError as error:
            _raise(refusal(None, str(error)))
        answer = refusal(verdict)
        if answer is not None:
            _raise(answer)
        return verdict


def _raise(answer: Optional[Tuple[int, Dict[str, str], Dict[str, str]]]) -> NoReturn:
    """Raises the 401 (or 503) of :func:`refusal`'s answer."""
    assert answer is not None
    status, headers, body = answer
    raise HTTPException(status, body["message"], headers=headers) from None
