"""What the synchronous and the asyncio clients share: the verdict, the cache and how it
applies the event log, the checks' request and answer bodies, and the backoffs."""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple, Union

import httpx

from ._claims import NO_CLAIMS, Query, TokenError, query_from_token
from ._snapshot import BloomFilter, Snapshot, decode_snapshot
from ._sse import Comment, Event, EventStreamParser, Oversized

logger = logging.getLogger("revoke_client")

#: The most checks one ``POST /v1/check/batch`` carries.
BATCH_LIMIT = 1000
#: The server sends a heartbeat every second: three without a byte is a dead stream.
STREAM_READ_TIMEOUT = 3.0

__all__ = ["Verdict", "ServerError", "CheckInput"]

#: What ``check_many`` takes: a compact JWS, a mapping with ``token`` (and optionally ``kid``, the
#: key that verified it) or with ``jti``, ``iat``, ``claims``, ``kid``, or a :class:`Query`.
CheckInput = Union[str, Mapping[str, Any], Query]


@dataclass(frozen=True)
class Verdict:
    """The answer to a check.

    ``reason`` is ``"jti"``, ``"cutoff"`` (``claim`` names the claim), ``"key"`` (``kid`` names
    the blocked key), ``"unavailable"`` (the server could not answer and the failure policy
    decided) or None; ``source`` is ``"cache"``, ``"server"`` or ``"policy"``. A cache answer
    also carries ``cursor``, the cache's position in the server's event log, and ``heard_at``,
    the ``time.monotonic()`` instant it last heard from the server.
    """

    revoked: bool
    reason: Optional[str] = None
    source: str = "server"
    claim: Optional[str] = None
    kid: Optional[str] = None
    cursor: Optional[str] = None
    heard_at: Optional[float] = None


class ServerError(Exception):
    """The server did not answer a call: ``status`` and ``code`` when it answered otherwise."""

    def __init__(self, message: str, status: Optional[int] = None, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class UnreadableEvent(Exception):
    """An event the cache cannot apply: it must load a snapshot again, never skip it."""


def policy_verdict(fail_closed: bool) -> Verdict:
    return Verdict(revoked=fail_closed, reason="unavailable", source="policy")


def make_query(
    token: Optional[str], jti: Optional[str], iat: Optional[float], claims: Optional[Mapping[str, str]], kid: Optional[str]
) -> Query:
    """The query for ``check``'s arguments: a token (with, optionally, the ``kid`` of the key
    that verified it, which replaces its header's: see :func:`query_from_token`), or the
    explicit form."""
    if token is not None:
        if jti is not None or iat is not None or claims is not None:
            raise TypeError("check() takes a token (and the kid of the key that verified it) or jti/iat/claims/kid, not both")
        return query_from_token(token, kid=kid)
    if jti is not None and not isinstance(jti, str):
        raise TokenError("jti must be a string")
    if iat is not None and (isinstance(iat, bool) or not isinstance(iat, (int, float)) or not math.isfinite(iat)):
        raise TokenError("iat must be a number of seconds")
    if claims is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in claims.items()):
        raise TokenError("claims must map names to strings")
    if kid is not None and not isinstance(kid, str):
        raise TokenError("kid must be a string")
    return Query(jti, None if iat is None else float(iat), dict(claims) if claims else NO_CLAIMS, kid)


def query_of(item: CheckInput) -> Query:
    if isinstance(item, Query):
        return item
    if isinstance(item, str):
        return query_from_token(item)
    if isinstance(item, Mapping):
        unknown = set(item) - {"jti", "iat", "claims", "kid", "token"}
        if unknown:
            raise TypeError(f"unknown check fields: {sorted(unknown)}")
        return make_query(item.get("token"), item.get("jti"), item.get("iat"), item.get("claims"), item.get("kid"))
    raise TypeError("a check is a token, a mapping or a Query")


def verdict_from_json(body: Any) -> Verdict:
    """A verdict from the server's answer body (``POST /v1/check``, or one batch result)."""
    if not isinstance(body, dict) or not isinstance(body.get("revoked"), bool):
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            raise ServerError(f"the server refused the check: {body.get('message', body['error'])}", code=body["error"])
        raise ServerError("the server's answer is not a verdict")
    reason = body.get("reason")
    return Verdict(
        revoked=body["revoked"],
        reason=reason if isinstance(reason, str) else None,
        source="server",
        claim=body.get("claim") if isinstance(body.get("claim"), str) else None,
        kid=body.get("kid") if isinstance(body.get("kid"), str) else None,
    )


def error_from_response(status: int, text: str, what: str) -> ServerError:
    code = None
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            code = parsed["error"]
    except ValueError:
        pass
    return ServerError(f"{what}: HTTP {status}" + (f" ({code})" if code else ""), status=status, code=code)


class Backoff:
    """Waits that double from ``initial`` up to ``maximum``, with jitter so that a fleet that lost
    the same server does not come back in lockstep: each wait is between ``1 - jitter`` and 1
    times the current step (the Swift side's ``Backoff``, the same way)."""

    def __init__(self, initial: float, maximum: float, jitter: float = 0.5) -> None:
        self.initial = max(initial, 0.001)
        self.maximum = max(maximum, self.initial)
        self.jitter = min(max(jitter, 0.0), 1.0)
        self._next = self.initial

    def next(self) -> float:
        step = self._next
        self._next = min(self._next * 2, self.maximum)
        return step if self.jitter == 0 else step * random.uniform(1 - self.jitter, 1)

    def reset(self) -> None:
        self._next = self.initial


@dataclass(frozen=True)
class _View:
    filter: BloomFilter
    #: claim -> value -> before
    cutoffs: Mapping[str, Mapping[str, int]]
    #: the claims in the server's order (the snapshot's), so a verdict names the server's claim
    claim_order: Tuple[str, ...]
    key_blocks: FrozenSet[str]
    cursor: str


#: What a lookup returns when the server must answer; ``possible_hit`` when the filter said "maybe".
@dataclass(frozen=True)
class AskServer:
    possible_hit: bool


class Cache:
    """The local copy of what is revoked: the snapshot's filter with the ``jti``s of later
    events added, every cutoff and every blocked key, exactly. Only the following thread or
    task changes it; lookups read one reference to an immutable view (the filter's bits are
    only ever set)."""

    def __init__(self, staleness: float, on_event: Optional[Callable[[str, str], None]] = None) -> None:
        self.staleness = staleness
        self.on_event = on_event
        self._view: Optional[_View] = None
        self._live = False
        self._last_heard = 0.0
        self._not_revoked: Optional[Verdict] = None
        self._heard = threading.Condition()
        self.snapshots_loaded = 0
        self.events_applied = 0
        self.stats: Dict[str, int] = {"cache_answers": 0, "server_checks": 0, "false_positives": 0, "policy_answers": 0}

    # -- reading

    @property
    def fresh(self) -> bool:
        return self._view is not None and self._live and time.monotonic() - self._last_heard <= self.staleness

    @property
    def cursor(self) -> Optional[str]:
        view = self._view
        return view.cursor if view is not None else None

    def lookup(self, query: Query) -> Union[Verdict, AskServer]:
        view = self._view
        if view is None or not self._live or time.monotonic() - self._last_heard > self.staleness:
            return AskServer(possible_hit=False)
        if view.key_blocks and query.kid is not None and query.kid in view.key_blocks:
            self.stats["cache_answers"] += 1
            return Verdict(True, "key", "cache", kid=query.kid, cursor=view.cursor, heard_at=self._last_heard)
        if view.cutoffs:
            for claim in view.claim_order:
                value = query.claims.get(claim)
                if value is None:
                    continue
                before = view.cutoffs.get(claim, {}).get(value)
                if before is not None and (query.iat is None or query.iat <= before):
                    self.stats["cache_answers"] += 1
                    return Verdict(True, "cutoff", "cache", claim=claim, cursor=view.cursor, heard_at=self._last_heard)
        if query.jti is not None and view.filter.might_contain(query.jti):
            return AskServer(possible_hit=True)
        self.stats["cache_answers"] += 1
        # The common answer, built once per cursor and heartbeat rather than per check.
        answer = self._not_revoked
        if answer is None or answer.cursor != view.cursor or answer.heard_at != self._last_heard:
            answer = self._not_revoked = Verdict(False, None, "cache", cursor=view.cursor, heard_at=self._last_heard)
        return answer

    def confirmed(self, possible_hit: bool, verdict: Verdict) -> None:
        self.stats["server_checks"] += 1
        if possible_hit and not verdict.revoked:
            self.stats["false_positives"] += 1

    # -- changes, from the following thread or task only

    def load(self, snapshot: Snapshot) -> None:
        cutoffs: Dict[str, Dict[str, int]] = {}
        order: List[str] = []
        for cutoff in snapshot.cutoffs:
            if cutoff.claim not in cutoffs:
                order.append(cutoff.claim)
            cutoffs.setdefault(cutoff.claim, {})[cutoff.value] = cutoff.before
        self.lost()
        self._view = _View(snapshot.filter, cutoffs, tuple(order), frozenset(snapshot.key_blocks), snapshot.cursor)
        self.snapshots_loaded += 1

    def apply(self, event_type: str, data: Any, cursor: Optional[str]) -> None:
        """Applies one event of the log, then takes its cursor.
        :raises UnreadableEvent: for an event it cannot read or does not know."""
        view = self._view
        if view is None or not isinstance(data, dict) or cursor is None:
            raise UnreadableEvent(event_type)
        if event_type == "revocation":
            jti = data.get("jti")
            if not isinstance(jti, str):
                raise UnreadableEvent(event_type)
            view.filter.add(jti)
            new = view
        elif event_type == "unrevocation":
            # It cannot leave a Bloom filter: the server answers its "maybe" until the next snapshot.
            if not isinstance(data.get("jti"), str):
                raise UnreadableEvent(event_type)
            new = view
        elif event_type in ("cutoff", "uncutoff"):
            claim, value = data.get("claim"), data.get("value")
            if not isinstance(claim, str) or not isinstance(value, str):
                raise UnreadableEvent(event_type)
            before: Optional[int] = None
            if event_type == "cutoff":
                raw = data.get("before")
                if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
                    raise UnreadableEvent(event_type)
                before = math.floor(raw)
            cutoffs = {name: dict(values) for name, values in view.cutoffs.items()}
            values = cutoffs.setdefault(claim, {})
            if before is None:
                values.pop(value, None)
                if not values:
                    del cutoffs[claim]
            else:
                values[value] = before
            order = view.claim_order if claim in view.claim_order or before is None else view.claim_order + (claim,)
            new = _View(view.filter, cutoffs, order, view.key_blocks, view.cursor)
        elif event_type in ("keyblock", "unkeyblock"):
            kid = data.get("kid")
            if not isinstance(kid, str):
                raise UnreadableEvent(event_type)
            blocks = view.key_blocks | {kid} if event_type == "keyblock" else view.key_blocks - {kid}
            new = _View(view.filter, view.cutoffs, view.claim_order, blocks, view.cursor)
        else:
            raise UnreadableEvent(event_type)
        self._view = _View(new.filter, new.cutoffs, new.claim_order, new.key_blocks, cursor)
        self.events_applied += 1
        if self.on_event is not None:
            self.on_event(event_type, cursor)

    def heard(self) -> None:
        """A heartbeat: the server sends one only on a stream that has caught up with the log."""
        with self._heard:
            self._last_heard = time.monotonic()
            self._live = True
            self._heard.notify_all()

    def lost(self) -> None:
        """The cache is not following the live log: until a heartbeat, the server answers."""
        self._live = False

    def wait_fresh(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._heard:
            while not self.fresh:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._heard.wait(min(left, 0.1))
        return True


def parse_event_data(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


class StreamReader:
    """Applies one event stream's bytes to the cache, as they come."""

    def __init__(self, cache: Cache, reload: Backoff) -> None:
        self.cache = cache
        self.reload = reload
        self.parser = EventStreamParser()
        self.live = False

    def feed(self, chunk: bytes) -> None:
        """:raises UnreadableEvent: for an event the cache cannot apply, or one too long."""
        for message in self.parser.feed(chunk):
            if isinstance(message, Comment):
                # The server comments only on a stream that has caught up with the log.
                if not self.live:
                    self.live = True
                    self.reload.reset()
                self.cache.heard()
            elif isinstance(message, Event):
                self.cache.apply(message.type, parse_event_data(message.data), message.id)
            elif isinstance(message, Oversized):
                raise UnreadableEvent("an event longer than the stream's limit")


def policy_answer(cache: Optional[Cache], fail_closed: bool, error: Exception) -> Verdict:
    logger.debug("the server did not answer a check; applying the failure policy: %s", error)
    if cache is not None:
        cache.stats["policy_answers"] += 1
    return policy_verdict(fail_closed)


class BatchPlan:
    """A batch of checks: what the cache answered, and what goes to the server in one request."""

    def __init__(self, cache: Optional[Cache], checks: Sequence[CheckInput]) -> None:
        self.cache = cache
        self.queries = [query_of(item) for item in checks]
        if len(self.queries) > BATCH_LIMIT:
            raise ValueError(f"at most {BATCH_LIMIT} checks per call")
        self.verdicts: List[Optional[Verdict]] = [None] * len(self.queries)
        self.ask: List[int] = []
        self.hits: List[bool] = []
        for index, query in enumerate(self.queries):
            answer = cache.lookup(query) if cache is not None else AskServer(False)
            if isinstance(answer, Verdict):
                self.verdicts[index] = answer
            else:
                self.ask.append(index)
                self.hits.append(answer.possible_hit)

    @property
    def remote(self) -> List[Query]:
        return [self.queries[index] for index in self.ask]

    def finish(self, remote: Sequence[Verdict]) -> List[Verdict]:
        for index, hit, verdict in zip(self.ask, self.hits, remote):
            self.verdicts[index] = verdict
            if self.cache is not None and verdict.source == "server":
                self.cache.confirmed(hit, verdict)
        return [verdict for verdict in self.verdicts if verdict is not None]

    def failed(self, fail_closed: bool, error: Exception) -> List[Verdict]:
        return self.finish([policy_answer(self.cache, fail_closed, error) for _ in self.ask])


def check_batch_body(queries: Sequence[Query]) -> Dict[str, Any]:
    return {"checks": [query.json() for query in queries]}


def check_answer(response: httpx.Response) -> Verdict:
    """The verdict of ``POST /v1/check``. :raises ServerError: for any answer but 200."""
    if response.status_code != 200:
        raise error_from_response(response.status_code, response.text, "POST /v1/check")
    return verdict_from_json(response.json())


def batch_answer(response: httpx.Response, count: int) -> List[Verdict]:
    """The verdicts of ``POST /v1/check/batch``, in order. :raises ServerError: otherwise."""
    if response.status_code != 200:
        raise error_from_response(response.status_code, response.text, "POST /v1/check/batch")
    body = response.json()
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or len(results) != count:
        raise ServerError("the batch answer has no results for every check")
    return [verdict_from_json(result) for result in results]


def snapshot_answer(response: httpx.Response) -> Snapshot:
    """The snapshot of ``GET /v1/snapshot``. :raises ServerError, SnapshotError: otherwise."""
    if response.status_code != 200:
        raise error_from_response(response.status_code, response.text, "GET /v1/snapshot")
    return decode_snapshot(response.content)


class ClientBase:
    """The options, the cache and the counters both clients share."""

    def __init__(
        self,
        url: str,
        api_key: Optional[str],
        cache: bool,
        staleness: float,
        fail_closed: bool,
        timeout: float,
        refresh_interval: float,
        on_event: Optional[Callable[[str, str], None]],
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError("url must be an http:// or https:// URL")
        if staleness <= 0 or timeout <= 0 or refresh_interval <= 0:
            raise ValueError("staleness, timeout and refresh_interval must be positive")
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.fail_closed = fail_closed
        self.timeout = timeout
        self.refresh_interval = refresh_interval
        self._cache = Cache(staleness, on_event) if cache else None
        self._headers = {"User-Agent": "revoke-client-python"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)

    @property
    def cursor(self) -> Optional[str]:
        """The cache's position in the server's event log."""
        return self._cache.cursor if self._cache is not None else None

    @property
    def snapshots_loaded(self) -> int:
        return self._cache.snapshots_loaded if self._cache is not None else 0

    @property
    def events_applied(self) -> int:
        return self._cache.events_applied if self._cache is not None else 0

    @property
    def stats(self) -> Mapping[str, int]:
        """Counts of cache answers, server checks, false positives and policy answers."""
        return dict(self._cache.stats) if self._cache is not None else {}

    def _lookup(self, query: Query) -> Union[Verdict, AskServer]:
        return self._cache.lookup(query) if self._cache is not None else AskServer(False)

    def _confirmed(self, possible_hit: bool, verdict: Verdict) -> Verdict:
        if self._cache is not None:
            self._cache.confirmed(possible_hit, verdict)
        return verdict

    def _failed(self, error: Exception) -> Verdict:
        return policy_answer(self._cache, self.fail_closed, error)


class Following:
    """How the cache follows the server, the same on a thread and on a task: load a snapshot,
    follow the events from its cursor, resume from the last cursor when a stream ends, load a
    snapshot again on 410 (with a backoff: a log that rolls faster than the client loads must
    not become a loop), on an event it cannot read and every refresh interval. Each method
    returns how long to wait before the next step."""

    def __init__(self, cache: Cache, refresh_interval: float) -> None:
        self.cache = cache
        self.refresh_interval = refresh_interval
        self.cursor: Optional[str] = None
        self.loaded_at = 0.0
        self.failures = 0
        self.backoff = Backoff(0.05, 2.0)
        self.reload = Backoff(0.1, 5.0)

    @property
    def refresh_at(self) -> float:
        return self.loaded_at + self.refresh_interval

    def loaded(self, snapshot: Snapshot) -> None:
        self.cache.load(snapshot)
        self.cursor = snapshot.cursor
        self.loaded_at = time.monotonic()
        logger.debug("snapshot loaded: %d revocations, cursor %s", snapshot.revocations, snapshot.cursor)

    def ended(self, end: str) -> float:
        """A stream ended: ``"ended"`` (resume), ``"gone"`` (410) or ``"refresh"``."""
        self.cache.lost()
        self.failures = 0
        self.backoff.reset()
        self.cursor = self.cache.cursor
        if end == "gone":
            logger.info("the event log no longer holds the cache's cursor; loading a snapshot")
            self.cursor = None
            return self.reload.next()
        if end == "refresh":
            self.cursor = None
        return 0.0

    def unreadable(self, error: Exception) -> float:
        self.cache.lost()
        logger.warning("an event could not be applied (%s); loading a snapshot", error)
        self.cursor = None
        return self.reload.next()

    def failed(self, error: Exception) -> float:
        self.cache.lost()
        self.failures += 1
        if self.failures == 1 or self.failures % 20 == 0:
            logger.warning("cannot follow revocations (%d attempts); retrying: %s", self.failures, error)
        return self.backoff.next()
