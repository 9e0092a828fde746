"""The gateway recipes of docs/gateways.md, run as they are shipped (config/gateways): nginx
(``auth_request``) and Caddy (``forward_auth``) in front of an API, asking a live ``revoked``'s
``/v1/forward-auth`` about every request."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import httpx
import jwt
import pytest

from conftest import HMAC_SECRET, ROOT, VERIFIER_KEY, Revoked, eventually, free_port, mint

RECIPES = ROOT / "config" / "gateways"


class API:
    """The API behind the gateway: answers every request with the Revoke-* headers it got,
    and remembers each request it saw."""

    def __init__(self) -> None:
        self.seen: List[Dict[str, Optional[str]]] = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                headers = {name: self.headers.get(name) for name in ("Revoke-Subject", "Revoke-Jti")}
                api.seen.append(headers)
                body = json.dumps(headers).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def require(binary: str) -> str:
    path = shutil.which(binary) or next((p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.path.exists(p)), None)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{binary} is not installed (run `make test`, which installs it)")
        pytest.skip(f"{binary} is not installed")
    return path


class Gateway:
    """A gateway process on a free loopback port."""

    def __init__(self, arguments: List[str], port: int, directory: str, environment: Optional[Dict[str, str]] = None) -> None:
        self.port = port
        self.directory = directory
        self.log = open(os.path.join(directory, "gateway.log"), "wb")
        self.process = subprocess.Popen(arguments, stdout=self.log, stderr=subprocess.STDOUT, env=environment)
        eventually("the gateway listens", self._listens)

    def _listens(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the gateway exited: {Path(self.directory, 'gateway.log').read_text()}")
        try:
            httpx.get(self.url("/"), timeout=2)
            return True
        except httpx.HTTPError:
            return False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_nginx(revoked: Revoked, api: API) -> Gateway:
    binary = require("nginx")
    directory = tempfile.mkdtemp(prefix="revoke-nginx-")
    port = free_port()
    recipe = (RECIPES / "nginx.conf").read_text()
    # The recipe as a user fills it in: its three addresses and the gateway's key.
    for placeholder, value in [
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{revoked.port};"),
        ("server 127.0.0.1:9000;", f"server 127.0.0.1:{api.port};"),
        ("listen 127.0.0.1:8000;", f"listen 127.0.0.1:{port};"),
        ("REPLACE-WITH-THE-GATEWAY-VERIFIER-KEY", VERIFIER_KEY),
    ]:
        assert placeholder in recipe, placeholder
        recipe = recipe.replace(placeholder, value)
    Path(directory, "recipe.conf").write_text(recipe)
    temp = "".join(f"{kind}_temp_path {directory}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    Path(directory, "nginx.conf").write_text(
        f"worker_processes 1;\ndaemon off;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\n"
        f"events {{ worker_connections 256; }}\nhttp {{\naccess_log off;\n{temp}include {directory}/recipe.conf;\n}}\n"
    )
    return Gateway([binary, "-p", directory, "-c", f"{directory}/nginx.conf"], port, directory)


def start_caddy(revoked: Revoked, api: API) -> Gateway:
    binary = require("caddy")
    directory = tempfile.mkdtemp(prefix="revoke-caddy-")
    port = free_port()
    # The recipe as shipped, behind global options of the test's own: no admin endpoint (several
    # tests run at once), no HTTPS.
    Path(directory, "Caddyfile").write_text("{\n\tadmin off\n\tauto_https off\n}\n\n" + (RECIPES / "Caddyfile").read_text())
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": directory,
        "XDG_DATA_HOME": directory,
        "XDG_CONFIG_HOME": directory,
        "GATEWAY_PORT": str(port),
        "GATEWAY_BIND": "127.0.0.1",
        "REVOKE_ADDRESS": f"127.0.0.1:{revoked.port}",
        "REVOKE_GATEWAY_KEY": VERIFIER_KEY,
        "API_ADDRESS": f"127.0.0.1:{api.port}",
    }
    return Gateway([binary, "run", "--config", f"{directory}/Caddyfile", "--adapter", "caddyfile"], port, directory, environment)


@pytest.fixture()
def api() -> Iterator[API]:
    server = API()
    yield server
    server.stop()


@pytest.fixture(params=["nginx", "caddy"])
def gateway(request: pytest.FixtureRequest, revoked: Revoked, api: API) -> Iterator[Gateway]:
    start: Callable[[Revoked, API], Gateway] = start_nginx if request.param == "nginx" else start_caddy
    gateway = start(revoked, api)
    yield gateway
    gateway.stop()


def bearer(token: str) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_valid_token_reaches_the_api_with_its_subject(gateway: Gateway, api: API) -> None:
    token = mint(jti="gw-valid-1", sub="alice")
    response = httpx.get(gateway.url("/orders/7?x=1"), headers=bearer(token), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"Revoke-Subject": "alice", "Revoke-Jti": "gw-valid-1"}
    # A client cannot pass a subject of its own: the gateway sets it from Revoke's answer.
    forged = httpx.get(gateway.url("/"), headers={**bearer(token), "Revoke-Subject": "admin"}, timeout=10)
    assert forged.json()["Revoke-Subject"] == "alice"
    # Not even with a token that has no sub for the gateway to copy.
    now = int(time.time())
    anonymous = jwt.encode({"jti": "gw-nosub-1", "iat": now, "exp": now + 600}, HMAC_SECRET, algorithm="HS256")
    forged = httpx.get(gateway.url("/"), headers={**bearer(anonymous), "Revoke-Subject": "admin"}, timeout=10)
    assert forged.status_code == 200 and forged.json()["Revoke-Subject"] in (None, ""), forged.text


def test_no_token_and_bad_tokens_never_reach_the_api(gateway: Gateway, api: API) -> None:
    none = httpx.get(gateway.url("/"), timeout=10)
    assert none.status_code == 401
    assert none.headers["WWW-Authenticate"] == "Bearer"
    now = int(time.time())
    forged = jwt.encode({"sub": "mallory", "jti": "gw-forged", "exp": now + 600}, "x" * 64, algorithm="HS256")
    expired = jwt.encode({"sub": "alice", "jti": "gw-expired", "exp": now - 60}, HMAC_SECRET, algorithm="HS256")
    for token in (forged, expired, "garbage"):
        response = httpx.get(gateway.url("/"), headers=bearer(token), timeout=10)
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert api.seen == []


def test_a_revoked_token_is_refused_from_the_next_request_on(gateway: Gateway, api: API, revoked: Revoked) -> None:
    token = mint(jti="gw-logout-1", sub="bob")
    assert httpx.get(gateway.url("/"), headers=bearer(token), timeout=10).status_code == 200
    # The logout flow posts the token; the very next request through the gateway is refused.
    assert httpx.post(revoked.url + "/v1/revoke", json={"token": token}, timeout=10).status_code == 200
    refused = httpx.get(gateway.url("/"), headers=bearer(token), timeout=10)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token", error_description="the token has been revoked"'
    # And every token of a user, by a cutoff.
    other = mint(jti="gw-cut-1", sub="carol", iat=int(time.time()) - 5)
    assert httpx.get(gateway.url("/"), headers=bearer(other), timeout=10).status_code == 200
    assert revoked.admin("POST", "/v1/cutoffs", json={"claim": "sub", "value": "carol", "reason": "incident"}).status_code == 201
    assert httpx.get(gateway.url("/"), headers=bearer(other), timeout=10).status_code == 401
    assert len(api.seen) == 2


def test_revoke_down_lets_nothing_through(gateway: Gateway, api: API, revoked: Revoked) -> None:
    token = mint(jti="gw-down-1")
    assert httpx.get(gateway.url("/"), headers=bearer(token), timeout=10).status_code == 200
    revoked.stop()
    response = httpx.get(gateway.url("/"), headers=bearer(token), timeout=30)
    assert response.status_code >= 500, response.status_code
    assert len(api.seen) == 1
