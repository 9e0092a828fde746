"""The synchronous client: checks from any thread, the cache followed on a daemon thread."""

from __future__ import annotations

import os
import threading
import time
import weakref
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

__all__ = ["RevokeClient"]


class RevokeClient(ClientBase):
    """Asks a Revoke server whether tokens are revoked, answering from a local cache when it can.

    With ``cache=True`` (the default), :meth:`start` loads ``GET /v1/snapshot`` and follows
    ``GET /v1/events`` on a daemon thread. A check is answered "not revoked" locally only when
    the cache is fresh (it heard the live stream within ``staleness`` seconds), the Bloom filter
    says the ``jti`` is absent and no cutoff or key block matches; a blocked key or a matching
    cutoff is refused locally; a filter "maybe" is confirmed with the server. When the server
    cannot answer, ``fail_closed`` decides (revoked by default). No call waits on one network
    phase (connect, send, each read) longer than ``timeout`` seconds. ``on_event(type, cursor)``
    is called on the following thread after each event is applied.

    Under a forking server (gunicorn), create the client anywhere but start it in each worker
    (``post_fork``); a client started before a fork restarts its follower in the child on the
    child's first check, never sharing the parent's connections.
    """

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
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._started = False
        self._closed = False
        self._pid = os.getpid()
        self._http = self._make_http()
        self._stream_http = self._make_http(read=STREAM_READ_TIMEOUT)
        if hasattr(os, "register_at_fork"):
            this = weakref.ref(self)

            def after_fork_in_child() -> None:
                client = this()
                if client is not None:
                    client._forked()

            os.register_at_fork(after_in_child=after_fork_in_child)

    def _make_http(self, read: Optional[float] = None) -> httpx.Client:
        timeout = httpx.Timeout(self.timeout, read=read if read is not None else self.timeout)
        return httpx.Client(base_url=self.url, headers=self._headers, timeout=timeout, limits=self._limits)

    def _forked(self) -> None:
        # The parent's thread does not exist here, and its sockets are the parent's.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._pid = os.getpid()
        self._http = self._make_http()
        self._stream_http = self._make_http(read=STREAM_READ_TIMEOUT)
        if self._cache is not None:
            self._cache.lost()

    # -- lifecycle

    def start(self) -> "RevokeClient":
        """Starts following the server (with a cache; otherwise does nothing). Idempotent."""
        if self._closed:
            raise RuntimeError("the client is closed")
        self._started = True
        self._ensure_following()
        return self

    def _ensure_following(self) -> None:
        # On every check: the common case costs two attribute reads. A fork resets `_thread` in
        # the child (`register_at_fork`), so a started client follows again there.
        if self._thread is not None or self._cache is None or not self._started or self._closed:
            return
        if os.getpid() != self._pid:
            self._forked()
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._follow, name="revoke-client", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stops following and closes the connections; later checks ask nobody and answer by
        the failure policy."""
        self._closed = True
        self._stop.set()
        self._stream_http.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=STREAM_READ_TIMEOUT + self.timeout)
        self._http.close()
        if self._cache is not None:
            self._cache.lost()

    def __enter__(self) -> "RevokeClient":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def is_fresh(self) -> bool:
        """Whether the cache can answer now without the network."""
        self._ensure_following()
        return self._cache is not None and self._cache.fresh

    def wait_fresh(self, timeout: float) -> bool:
        """Waits until the cache is fresh, at most ``timeout`` seconds; whether it is."""
        self._ensure_following()
        return self._cache is not None and self._cache.wait_fresh(timeout)

    # -- checks

    def check(
        self,
        token: Optional[str] = None,
        *,
        jti: Optional[str] = None,
        iat: Optional[float] = None,
        claims: Optional[Mapping[str, str]] = None,
        kid: Optional[str] = None,
    ) -> Verdict:
        """Whether a token is revoked: by its compact JWS (claims read, signature not verified:
        verify it first), or by ``jti``, ``iat``, the claims cutoffs may name and the ``kid`` of
        its header. Never raises for the server's failures (the policy answers); raises
        :class:`TokenError` for a token whose claims cannot be read, ``TypeError`` for a token
        with ``jti``, ``iat`` or ``claims``.

        With a token, ``kid`` is the ``kid`` of the key that verified it, and both the cache and
        the server check that key's block rather than the header's ``kid`` (which the token may
        not have). It matters: an issuer's JWKS often has one key per algorithm, and a token
        without ``kid`` is verified by the only key for its algorithm; its header names no key,
        so only the caller knows which one verified it, and a block on that key must still
        refuse it. With PyJWT, ``jwks.get_signing_key_from_jwt(token).key_id``. It is compared
        byte for byte with the blocked kids (no case folding or Unicode normalisation)."""
        query = make_query(token, jti, iat, claims, kid)
        self._ensure_following()
        answer = self._lookup(query)
        if isinstance(answer, Verdict):
            return answer
        try:
            return self._confirmed(answer.possible_hit, self.check_remotely(query))
        except (ServerError, httpx.HTTPError) as error:
            return self._failed(error)

    def check_many(self, checks: Sequence[CheckInput]) -> List[Verdict]:
        """Checks many tokens (compact JWSs, mappings with ``token`` and optionally ``kid``, as
        :meth:`check` takes them, or with ``jti``/``iat``/``claims``/``kid``, or queries): the
        cache answers what it can, the rest go in one ``POST /v1/check/batch`` (at most 1000
        per call)."""
        plan = BatchPlan(self._cache, checks)
        if not plan.ask:
            return plan.finish([])
        try:
            remote = self.check_remotely_many(plan.remote)
        except (ServerError, httpx.HTTPError) as error:
            return plan.failed(self.fail_closed, error)
        return plan.finish(remote)

    def check_remotely(self, query: Query) -> Verdict:
        """Asks the server (``POST /v1/check``), bypassing the cache.
        :raises ServerError: for any answer but 200; ``httpx.HTTPError`` for the transport's."""
        return check_answer(self._http.post("/v1/check", json=query.json()))

    def check_remotely_many(self, queries: Sequence[Query]) -> List[Verdict]:
        return batch_answer(self._http.post("/v1/check/batch", json=check_batch_body(queries)), len(queries))

    # -- following

    def _load_snapshot(self) -> Snapshot:
        return snapshot_answer(self._stream_http.get("/v1/snapshot", timeout=httpx.Timeout(self.timeout * 5)))

    def _follow(self) -> None:
        assert self._cache is not None
        following = Following(self._cache, self.refresh_interval)
        while not self._stop.is_set():
            try:
                if following.cursor is None:
                    following.loaded(self._load_snapshot())
                assert following.cursor is not None
                wait = following.ended(self._stream(following, following.cursor))
            except UnreadableEvent as error:
                wait = following.unreadable(error)
            except Exception as error:  # the server, the network or a bad snapshot: retry
                if self._stop.is_set():
                    self._cache.lost()
                    return
                wait = following.failed(error)
            if wait:
                self._stop.wait(wait)

    def _stream(self, following: Following, cursor: str) -> str:
        reader = StreamReader(following.cache, following.reload)
        headers = {"Accept": "text/event-stream"}
        with self._stream_http.stream("GET", "/v1/events", params={"since": cursor}, headers=headers) as response:
            if response.status_code == 410:
                return "gone"
            if response.status_code != 200:
                response.read()
                raise error_from_response(response.status_code, response.text, "GET /v1/events")
            for chunk in response.iter_raw():
                reader.feed(chunk)
                if self._stop.is_set():
                    return "ended"
                if time.monotonic() >= following.refresh_at:
                    return "refresh"
        return "ended"
