"""`make bench` (Python client part): a cached check against the peer's per-request Redis round
trip, propagation to 50 Python clients, and the cache's memory per 1,000,000 revocations, each
measured in this run against a private redis-server and the release `revoked`.

    .build/pyenv/bin/python clients/python/bench/bench.py --revoked .build/release/revoked
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from typing import Callable, Dict, List, Tuple

import httpx
import jwt
import redis

from revoke_client import RevokeClient, decode_snapshot

ADMIN_KEY = "bench-admin-key-python"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(what: str, probe: Callable[[], bool], limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not probe():
        if time.monotonic() > deadline:
            raise SystemExit(f"never happened: {what}")
        time.sleep(0.01)


def median_ns(rounds: int, calls: int, body: Callable[[int], object]) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        for index in range(calls):
            body(index)
        samples.append((time.perf_counter_ns() - started) / calls)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--revoked", required=True)
    parser.add_argument("--revocations", type=int, default=1_000_000)
    parser.add_argument("--propagations", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    arguments = parser.parse_args()

    work = tempfile.mkdtemp(prefix="revoke-py-bench-")
    redis_port, port = free_port(), free_port()
    redis_binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    server = subprocess.Popen(
        [redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", work],
        stdout=subprocess.DEVNULL,
    )
    store = redis.Redis(port=redis_port)
    wait("redis-server answers", lambda: _pings(store))
    # The store's own records, written straight into Redis in its layout (as ClientBenchmark does),
    # before revoked starts: they make no events, so revoked learns of them from its load at start.
    started = time.monotonic()
    try:
        pipe = store.pipeline(transaction=False)
        for index in range(arguments.revocations):
            pipe.hset(f"revoke:jti:bench-{index}", mapping={"revoked_at": "1700000000"})
            if index % 10_000 == 9_999:
                pipe.execute()
        pipe.execute()
    except BaseException:
        server.kill()
        server.wait()
        raise
    print(f"loaded {arguments.revocations} revocations into Redis in {time.monotonic() - started:.1f} s", file=sys.stderr)
    environment = dict(
        os.environ,
        REVOKE_HOST="127.0.0.1",
        REVOKE_PORT=str(port),
        REVOKE_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        REVOKE_ADMIN_KEYS=f"bench:{ADMIN_KEY}",
        REVOKE_LOG_LEVEL="error",
        REVOKE_SNAPSHOT_MAX_AGE="0",
    )
    revoked = subprocess.Popen([arguments.revoked], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    rows: List[Tuple[str, str]] = []
    try:
        wait("revoked is ready", lambda: _ready(url))
        label = f"{arguments.revocations / 1e6:g}M"

        # 1. Memory: the snapshot decoded, as the cache holds it.
        body = httpx.get(url + "/v1/snapshot", timeout=300).content
        gc.collect()
        tracemalloc.start()
        snapshot = decode_snapshot(body)
        _, peak = tracemalloc.get_traced_memory()
        held, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        per_million = held / (arguments.revocations / 1e6)
        rows.append((f"snapshot of {snapshot.revocations} revocations", f"{len(body) / 1e6:.2f} MB"))
        rows.append((f"cache memory after decoding, {label} revoked", f"{held / 1e6:.2f} MB ({per_million / 1e6:.2f} MB per 1M; peak while decoding {peak / 1e6:.2f} MB)"))
        del snapshot, body

        # 2. A check from the cache against the peer's round trip per request.
        jtis = [f"absent-{index}-{uuid.uuid4().hex}" for index in range(20_000)]
        with RevokeClient(url, cache=True) as client:
            wait("the cache is fresh", lambda: client.is_fresh)
            absent = [jti for jti in jtis if client.check(jti=jti).source == "cache"][:10_000]
            cached = median_ns(7, len(absent), lambda index: client.check(jti=absent[index]))
            tokens = [jwt.encode({"jti": jti, "sub": "alice", "iat": 1700000000}, "k" * 32, algorithm="HS256") for jti in absent[:2000]]
            from_token = median_ns(7, len(tokens), lambda index: client.check(tokens[index]))
        peer = redis.Redis(port=redis_port, decode_responses=True)
        round_trip = median_ns(5, 2000, lambda index: peer.exists("revoked:" + absent[index]))
        rows.append((f"check(jti=...) of an absent jti from the cache, {label} revoked", f"{cached:,.0f} ns (median)"))
        rows.append(("check(token) of an absent jti from the cache (reads the JWS)", f"{from_token:,.0f} ns (median)"))
        rows.append(("the peer's redis.exists per request (redis-py + hiredis, loopback)", f"{round_trip:,.0f} ns (median)"))
        rows.append(("round trip / cached check", f"{round_trip / cached:.1f}x"))

        # 3. Propagation: POST /v1/revocations answered, until every client refuses the jti.
        arrivals: List[Dict[str, float]] = [{} for _ in range(arguments.clients)]
        locks = [threading.Lock() for _ in range(arguments.clients)]

        def recorder(index: int) -> Callable[[str, str], None]:
            def record(event_type: str, cursor: str) -> None:
                with locks[index]:
                    arrivals[index][cursor] = time.perf_counter()

            return record

        clients = [RevokeClient(url, staleness=30.0, on_event=recorder(index)) for index in range(arguments.clients)]
        latencies: List[float] = []
        try:
            for client in clients:
                client.start()
            for client in clients:
                if not client.wait_fresh(120):
                    raise SystemExit("a client never became fresh")
            admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
            for index in range(arguments.propagations):
                jti = f"propagate-{index}-{uuid.uuid4().hex[:8]}"
                response = admin.post("/v1/revocations", json={"jti": jti, "expires_at": None})
                answered = time.perf_counter()
                if response.status_code != 201:
                    raise SystemExit(f"POST answered {response.status_code}")
                slowest = answered
                for client_index, client in enumerate(clients):
                    while True:
                        with locks[client_index]:
                            count = len(arrivals[client_index])
                            last = max(arrivals[client_index].values()) if count else 0.0
                        if count > index and client.check(jti=jti).revoked:
                            slowest = max(slowest, last)
                            break
                        time.sleep(0.0002)
                latencies.append((slowest - answered) * 1000)
            admin.close()
        finally:
            for client in clients:
                client.close()
        latencies.sort()
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        rows.append((f"propagation to {arguments.clients} Python clients, p50 over {len(latencies)}", f"{p50:.2f} ms"))
        rows.append((f"propagation to {arguments.clients} Python clients, p99 over {len(latencies)}", f"{p99:.2f} ms"))
    finally:
        revoked.kill()
        revoked.wait()
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"Python client (revoke-client, CPython {sys.version.split()[0]})")
    for name, value in rows:
        print(f"{name:<72}{value}")


def _pings(store: "redis.Redis") -> bool:
    try:
        return bool(store.ping())
    except redis.RedisError:
        return False


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
