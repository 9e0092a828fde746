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

Without a bearer token the dependency raises 401 (``required=False`` lets such requests
through); a revoked or unreadable token is 401 with ``WWW-Authenticate: Bearer
error="invalid_token"``; a check the server could not answer, failing closed, is 503. It
returns the verdict. A synchronous :class:`RevokeClient` works too: its checks run in the
thread pool, since one may wait on the network.
"""

from __future__ import annotations

from typing import Optional, Union

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ._aio import AsyncRevokeClient
from ._claims import TokenError
from ._client import RevokeClient
from ._core import Verdict
from ._http import bearer_token, refusal

__all__ = ["RevocationCheck"]


class RevocationCheck:
    def __init__(self, client: Union[AsyncRevokeClient, RevokeClient], required: bool = True) -> None:
        self.client = client
        self.required = required

    async def __call__(self, request: Request) -> Optional[Verdict]:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            if not self.required:
                return None
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        try:
            if isinstance(self.client, AsyncRevokeClient):
                verdict = await self.client.check(token)
            else:
                verdict = await run_in_threadpool(self.client.check, token)
        except TokenError as error:
            answer = refusal(None, str(error))
            assert answer is not None
            raise HTTPException(answer[0], answer[2]["message"], headers=answer[1]) from None
        answer = refusal(verdict)
        if answer is not None:
            status, headers, body = answer
            raise HTTPException(status, body["message"], headers=headers)
        return verdict
