"""Real processes for the tests: a private ``redis-server`` on a free loopback port, and
``revoked`` (``$REVOKED_BINARY``, else the repository's debug build) in front of it."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, TypeVar

import httpx
import jwt
import pytest

ROOT = Path(__file__).resolve().parents[3]
HMAC_SECRET = "python-client-tests-secret-0123456789abcdef"
ADMIN_KEY = "admin-key-python-tests"
VERIFIER_KEY = "verifier-key-python-tests"

T = TypeVar("T")


_HANDED_OUT: set = set()


def free_port() -> int:
    """A free port on 127.0.0.1 for a server to listen on, below the kernel's ephemeral range: a
    port the kernel picks from that range is free only until an outgoing connection takes it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
            ephemeral_start = int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_start = 32768
    for _ in range(200):
        if ephemeral_start <= 10001:
            break
        port = random.randrange(10000, ephemeral_start)
        if port in _HANDED_OUT:
            continue
        _HANDED_OUT.add(port)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        _HANDED_OUT.add(port)
        return port


def eventually(what: str, probe: Callable[[], Optional[T]], limit: float = 30.0) -> T:
    """Polls ``probe`` until it returns something other than None or False. ``limit`` only
    bounds a failure: nothing here asserts how fast the machine is."""
    deadline = time.monotonic() + limit
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
        if binary is None:
            if os.environ.get("CI") == "true":
                pytest.fail("redis-server is not installed (run `make test`, which installs it)")
            pytest.skip("redis-server is not installed")
        self.directory = tempfile.mkdtemp(prefix="revoke-py-redis-")
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.directory],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        eventually("redis-server answers", self._answers)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        shutil.rmtree(self.directory, ignore_errors=True)


class Revoked:
    """One ``revoked`` process; ``stop()`` and ``start()`` again keep its port."""

    def __init__(self, redis: RedisServer, namespace: str, environment: Optional[Dict[str, str]] = None) -> None:
        self.binary = os.environ.get("REVOKED_BINARY") or str(ROOT / ".build" / "debug" / "revoked")
        if not os.path.exists(self.binary):
            pytest.fail(f"no revoked binary at {self.binary} (build it with `swift build`)")
        self.port = free_port()
        self.environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "REVOKE_HOST": "127.0.0.1",
            "REVOKE_PORT": str(self.port),
            "REVOKE_REDIS_URL": redis.url,
            "REVOKE_NAMESPACE": namespace,
            "REVOKE_ADMIN_KEYS": f"ops:{ADMIN_KEY}",
            "REVOKE_VERIFIER_KEYS": f"python:{VERIFIER_KEY}",
            "REVOKE_HMAC_SECRET": HMAC_SECRET,
            "REVOKE_SNAPSHOT_MAX_AGE": "0",
            "REVOKE_LOG_LEVEL": "error",
            **(environment or {}),
        }
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen([self.binary], env=self.environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        eventually("revoked is ready", self._ready)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"revoked exited with {self.process.returncode}")
        try:
            return httpx.get(self.url + "/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def admin(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]

    def revoke_jti(self, jti: str) -> None:
        response = self.admin("POST", "/v1/revocations", json={"jti": jti, "expires_at": int(time.time()) + 3600, "reason": "test"})
        assert response.status_code == 201, response.text


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture()
def make_revoked(redis: RedisServer) -> Iterator[Callable[..., Revoked]]:
    started: List[Revoked] = []

    def make(namespace: Optional[str] = None, environment: Optional[Dict[str, str]] = None) -> Revoked:
        server = Revoked(redis, namespace or f"py-{uuid.uuid4().hex[:8]}", environment)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture()
def revoked(make_revoked: Callable[..., Revoked]) -> Revoked:
    return make_revoked()


def mint(jti: Optional[str] = None, sub: str = "alice", iat: Optional[int] = None, kid: Optional[str] = None, lifetime: int = 600) -> str:
    now = int(time.time())
    claims = {"sub": sub, "iat": iat if iat is not None else now, "exp": now + lifetime}
    claims["jti"] = jti or uuid.uuid4().hex
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, HMAC_SECRET, algorithm="HS256", headers=headers)
