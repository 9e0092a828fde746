"""The asyncio client, for FastAPI, Starlette and other ASGI apps: the cache is followed by a
task on the running event loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, List, Mapping, Optional, Sequence

import httpx

from ._claims import Query
from ._core import (
    STREAM_READ_TIMEOUT,
    BatchPlan,
    CheckInput,
    ClientBase,
    Following,
    ServerError,
    StreamReader,
    UnreadableEvent,
    Verdict,
    batch_answer,
    check_answer,
    check_batch_body,
    error_from_response,
    make_query,
    snapshot_answer,
)
from ._snapshot import Snapshot

__all__ = ["AsyncRevokeClient"]


class AsyncRevokeClient(ClientBase):
    """:class:`RevokeClient` for asyncio: the same options, policy and cache; ``await start()``
    (or ``async with``) inside the event loop that will use it, typically in an app's lifespan."""

    def __init__(
        self,
        url: str,
        api_key: Optional[str] = None,
        cache: bool = True,
        staleness: float = 5.0,
        fail_closed: bool = True,
        timeout: float = 2.0,
        refresh_interval: float = 600.0,
        on_event: Optional[Callable[[str, str], None]] = None,
    ) -> None:
        super().__init__(url, api_key, cache, staleness, fail_closed, timeout, refresh_interval, on_event)
        self._task: Optional[asyncio.Task[None]] = None
        self._closed = False
        self._http = httpx.AsyncClient(base_url=self.url, headers=self._headers, timeout=httpx.Timeout(timeout), limits=self._limits)
        self._stream_http = httpx.AsyncClient(
            base_url=self.url, headers=self._headers, timeout=httpx.Timeout(timeout, read=STREAM_READ_TIMEOUT), limits=self._limits
        )

    async def start(self) -> "AsyncRevokeClient":
        """Starts following the server on the running loop (with a cache). Idempotent."""
        if self._closed:
            raise RuntimeError("the client is closed")
        if self._cache is not None and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._follow(), name="revoke-client")
        return self

    async def aclose(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._stream_http.aclose()
        await self._http.aclose()
        if self._cache is not None:
            self._cache.lost()

    async def __aenter__(self) -> "AsyncRevokeClient":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    @property
    def is_fresh(self) -> bool:
        return self._cache is not None and self._cache.fresh

    async def wait_fresh(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.is_fresh:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # -- checks

    def cached_verdict(self, query: Query) -> Optional[Verdict]:
        """The cache's answer at once, or None when the server must answer."""
        answer = self._lookup(query)
        return answer if isinstance(answer, Verdict) else None

    async def check(
        self,
        token: Optional[str] = None,
        *,
        jti: Optional[str] = None,
        iat: Optional[float] = None,
        claims: Optional[Mapping[str, str]] = None,
        kid: Optional[str] = None,
    ) -> Verdict:
        """As :meth:`RevokeClient.check`: with a token, ``kid`` is the ``kid`` of the key that
        verified it (a token without ``kid``, verified by its issuer's only key for its
        algorithm, is still refused when that key is blocked), compared byte for byte."""
        query = make_query(token, jti, iat, claims, kid)
        answer = self._lookup(query)
        if isinstance(answer, Verdict):
            return answer
        try:
            return self._confirmed(answer.possible_hit, await self.check_remotely(query))
        except (ServerError, httpx.HTTPError) as error:
            return self._failed(error)

    async def check_many(self, checks: Sequence[CheckInput]) -> List[Verdict]:
        """As :meth:`RevokeClient.check_many`."""
        plan = BatchPlan(self._cache, checks)
        if not plan.ask:
            return plan.finish([])
        try:
            remote = await self.check_remotely_many(plan.remote)
        except (ServerError, httpx.HTTPError) as error:
            return plan.failed(self.fail_closed, error)
        return plan.finish(remote)

    async def check_remotely(self, query: Query) -> Verdict:
        return check_answer(await self._http.post("/v1/check", json=query.json()))

    async def check_remotely_many(self, queries: Sequence[Query]) -> List[Verdict]:
        return batch_answer(await self._http.post("/v1/check/batch", json=check_batch_body(queries)), len(queries))

    # -- following

    async def _load_snapshot(self) -> Snapshot:
        return snapshot_answer(await self._stream_http.get("/v1/snapshot", timeout=httpx.Timeout(self.timeout * 5)))

    async def _follow(self) -> None:
        assert self._cache is not None
        following = Following(self._cache, self.refresh_interval)
        while True:
            try:
                if following.cursor is None:
                    following.loaded(await self._load_snapshot())
                assert following.cursor is not None
                wait = following.ended(await self._stream(following, following.cursor))
            except asyncio.CancelledError:
                self._cache.lost()
                raise
            except UnreadableEvent as error:
                wait = following.unreadable(error)
            except Exception as error:  # the server, the network or a bad snapshot: retry
                wait = following.failed(error)
            if wait:
                await asyncio.sleep(wait)

    async def _stream(self, following: Following, cursor: str) -> str:
        reader = StreamReader(following.cache, following.reload)
        headers = {"Accept": "text/event-stream"}
        async with self._stream_http.stream("GET", "/v1/events", params={"since": cursor}, headers=headers) as response:
            if response.status_code == 410:
                return "gone"
            if response.status_code != 200:
                await response.aread()
                raise error_from_response(response.status_code, response.text, "GET /v1/events")
            async for chunk in response.aiter_raw():
                reader.feed(chunk)
                if time.monotonic() >= following.refresh_at:
                    return "refresh"
        return "ended"
