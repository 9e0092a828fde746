"""Holes that would let a revoked token through, closed without a server: every integration
reads ``Authorization`` the way the most lenient common authenticator does (DRF SimpleJWT's
``header.split()``, Starlette's ``auth.split()``) and refuses what it cannot read as exactly one
bearer credential; and a key block catches a token whose header names no ``kid`` when the
caller says which key verified it.

The integrations are driven with stub clients that parse the token as the real client does and
record every check; nothing here needs ``revoked`` or redis."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

import httpx
import pytest
from fastapi import Depends, FastAPI
from flask import Flask

from revoke_client import AsyncRevokeClient, BloomFilter, RevokeClient, Snapshot, TokenError, Verdict, query_from_token
from revoke_client._core import make_query, query_of
from revoke_client.asgi import RevocationMiddleware
from revoke_client.fastapi import RevocationCheck
from revoke_client.flask import Revoke


def _part(value: Dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def token(jti: str, kid: Optional[str] = None, sub: str = "alice") -> str:
    """A compact JWS (its signature is not checked by anything here)."""
    header: Dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    return f"{_part(header)}.{_part({'jti': jti, 'sub': sub, 'iat': 1700000000})}.c2lnbmF0dXJl"


REVOKED = token("revoked-jti")
FRESH = token("fresh-jti")
R = REVOKED.encode()
F = FRESH.encode()


class StubClient:
    """Parses the token as the real client does (a :class:`TokenError` for one it cannot read),
    records ``(token, kid)`` and answers revoked for the revoked ``jti`` or a blocked ``kid``."""

    def __init__(self, blocked_kids: Sequence[str] = ()) -> None:
        self.calls: List[Tuple[str, Optional[str]]] = []
        self.blocked_kids = set(blocked_kids)

    def verdict(self, token: str, kid: Optional[str]) -> Verdict:
        self.calls.append((token, kid))
        query = query_from_token(token)
        used_kid = query.kid if kid is None else kid
        if used_kid is not None and used_kid in self.blocked_kids:
            return Verdict(True, "key", "server", kid=used_kid)
        if query.jti == "revoked-jti":
            return Verdict(True, "jti", "server")
        return Verdict(False, None, "server")

    def check(self, token: str, *, kid: Optional[str] = None) -> Verdict:
        return self.verdict(token, kid)


class AsyncStubClient(StubClient):
    async def check(self, token: str, *, kid: Optional[str] = None) -> Verdict:  # type: ignore[override]
        return self.verdict(token, kid)


# -- Authorization headers: raw values (bytes, as ASGI gives them) and what must happen

#: The revoked token, read as a lenient authenticator reads it: checked, so refused (401).
CHECKED = {
    "one space": [b"Bearer " + R],
    "a tab": [b"Bearer\t" + R],
    "several spaces": [b"Bearer     " + R],
    "tabs and spaces": [b"Bearer \t \t" + R],
    "lowercase scheme": [b"bearer " + R],
    "uppercase scheme": [b"BEARER " + R],
    "leading and trailing whitespace": [b" \t Bearer \t" + R + b" \t "],
    "a no-break space (Starlette's str.split)": [b"Bearer\xa0" + R],
    "a vertical tab (bytes.split)": [b"Bearer\x0b" + R],
    "a form feed": [b"Bearer\x0c" + R],
}

#: Not readable as exactly one bearer credential: 401 invalid_token, the app never runs.
REFUSED = {
    "the scheme alone": [b"Bearer"],
    "an empty credential": [b"Bearer "],
    "a credential of whitespace": [b"Bearer \t  "],
    "lowercase scheme alone": [b"bearer"],
    "two words": [b"Bearer a b"],
    "the token, then a word": [b"Bearer " + R + b" b"],
    "a word, then the token": [b"Bearer a " + R],
    "the token twice": [b"Bearer " + R + b"\t" + R],
    "not latin-1 text": [b"Bearer \xff\xfe\x00"],
    "the token and a non-ascii byte": [b"Bearer " + R + b"\xe9"],
    "a colon for a separator": [b"Bearer:" + R],
    "no separator": [b"Bearer" + R],
    "a bearer credential after another": [b"Basic eHl6, Bearer " + R],
    "two bearer headers": [b"Bearer " + F, b"Bearer " + R],
    "the same token twice": [b"Bearer " + R, b"Bearer " + R],
    "basic, then bearer": [b"Basic eHl6OnBhc3M=", b"Bearer " + R],
    "two basic headers": [b"Basic eHl6OnBhc3M=", b"Basic eHl6OnBhc3M="],
}

#: No bearer token: the app's own authentication decides; nothing is checked.
PASSED = {
    "no Authorization": [],
    "basic": [b"Basic eHl6OnBhc3M="],
    "DRF's Token scheme": [b"Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"],
    "an empty header": [b""],
}


def cases(table: Dict[str, List[bytes]]) -> Any:
    return pytest.mark.parametrize("values", list(table.values()), ids=list(table))


# -- ASGI


def call_asgi(values: List[bytes], **options: Any) -> Tuple[int, Dict[str, str], Any, AsyncStubClient, int]:
    client = AsyncStubClient(options.pop("blocked_kids", ()))
    ran: List[Dict[str, Any]] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        ran.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"hello"})

    sent: List[Dict[str, Any]] = []

    async def receive() -> Dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", b"app")] + [(b"authorization", value) for value in values],
    }
    asyncio.run(RevocationMiddleware(app, client, **options)(scope, receive, send))  # type: ignore[arg-type]
    status = sent[0]["status"]
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in sent[0]["headers"]}
    body = sent[1]["body"]
    return status, headers, (json.loads(body) if status != 200 else body), client, len(ran)


def assert_refused(status: int, headers: Dict[str, str], body: Any, ran: int) -> None:
    assert status == 401
    assert ran == 0, "the app ran"
    assert headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert body["error"] == "invalid_token" and body["message"]


@cases(CHECKED)
def test_asgi_checks_the_token_a_lenient_authenticator_reads(values: List[bytes]) -> None:
    status, headers, body, client, ran = call_asgi(values)
    assert_refused(status, headers, body, ran)
    assert client.calls == [(REVOKED, None)]


@cases(REFUSED)
def test_asgi_refuses_an_authorization_it_cannot_read_as_one_bearer_token(values: List[bytes]) -> None:
    status, headers, body, client, ran = call_asgi(values)
    assert_refused(status, headers, body, ran)


@cases(PASSED)
def test_asgi_passes_a_request_without_a_bearer_token(values: List[bytes]) -> None:
    status, _, body, client, ran = call_asgi(values)
    assert (status, body, ran) == (200, b"hello", 1)
    assert client.calls == []


def test_asgi_passes_a_good_token_behind_a_tab() -> None:
    status, _, body, client, ran = call_asgi([b"Bearer\t" + F])
    assert (status, body, ran) == (200, b"hello", 1)
    assert client.calls == [(FRESH, None)]


def test_asgi_asks_kid_of_which_key_verified_the_token() -> None:
    seen: List[Tuple[Any, str]] = []

    def kid_of(scope: Any, raw: str) -> Optional[str]:
        seen.append((scope["path"], raw))
        return "k1"

    no_kid = token("some-jti")
    status, headers, body, client, ran = call_asgi([b"Bearer " + no_kid.encode()], kid_of=kid_of, blocked_kids=["k1"])
    assert_refused(status, headers, body, ran)
    assert seen == [("/", no_kid)] and client.calls == [(no_kid, "k1")]

    async def async_kid_of(scope: Any, raw: str) -> Optional[str]:
        return None

    status, _, _, client, ran = call_asgi([b"Bearer " + no_kid.encode()], kid_of=async_kid_of, blocked_kids=["k1"])
    assert (status, ran) == (200, 1) and client.calls == [(no_kid, None)]


# -- Flask


def call_flask(values: List[bytes], **options: Any) -> Tuple[int, Dict[str, str], Any, StubClient, int]:
    client = StubClient(options.pop("blocked_kids", ()))
    app = Flask(__name__)
    ran: List[int] = []

    @app.get("/")
    def hello():  # type: ignore[no-untyped-def]
        ran.append(1)
        return "hello"

    Revoke(app, client, **options)  # type: ignore[arg-type]
    # Werkzeug joins repeated headers with ", " into one WSGI value, as WSGI servers do.
    headers = [("Authorization", value.decode("latin-1")) for value in values]
    response = app.test_client().get("/", headers=headers)
    body = response.get_json() if response.status_code != 200 else response.get_data()
    return response.status_code, {k.lower(): v for k, v in response.headers.items()}, body, client, len(ran)


@cases(CHECKED)
def test_flask_checks_the_token_a_lenient_authenticator_reads(values: List[bytes]) -> None:
    status, headers, body, client, ran = call_flask(values)
    assert_refused(status, headers, body, ran)
    assert client.calls == [(REVOKED, None)]


#: A WSGI server joins repeated headers into one value ("Basic a, Basic b"), which cannot be told
#: from one header; it is refused whenever a Bearer credential is in it.
WSGI_JOINED = {"two basic headers"}


@cases({name: values for name, values in REFUSED.items() if name not in WSGI_JOINED})
def test_flask_refuses_an_authorization_it_cannot_read_as_one_bearer_token(values: List[bytes]) -> None:
    status, headers, body, client, ran = call_flask(values)
    assert_refused(status, headers, body, ran)


def test_flask_passes_joined_headers_without_a_bearer_credential() -> None:
    status, _, body, client, ran = call_flask(REFUSED["two basic headers"])
    assert (status, body, ran) == (200, b"hello", 1)
    assert client.calls == []


@cases(PASSED)
def test_flask_passes_a_request_without_a_bearer_token(values: List[bytes]) -> None:
    status, _, body, client, ran = call_flask(values)
    assert (status, body, ran) == (200, b"hello", 1)
    assert client.calls == []


def test_flask_passes_a_good_token_behind_a_tab() -> None:
    status, _, body, client, ran = call_flask([b"Bearer\t" + F])
    assert (status, body, ran) == (200, b"hello", 1)
    assert client.calls == [(FRESH, None)]


def test_flask_asks_kid_of_which_key_verified_the_token() -> None:
    no_kid = token("some-jti")
    status, headers, body, client, ran = call_flask([b"Bearer " + no_kid.encode()], kid_of=lambda request, raw: "k1", blocked_kids=["k1"])
    assert_refused(status, headers, body, ran)
    assert client.calls == [(no_kid, "k1")]


# -- FastAPI's dependency


def call_fastapi(values: List[bytes], required: bool = False) -> Tuple[int, Dict[str, str], Any, StubClient, int]:
    client = StubClient()
    app = FastAPI()
    ran: List[int] = []

    @app.get("/")
    async def hello(verdict=Depends(RevocationCheck(client, required=required))):  # type: ignore[no-untyped-def,arg-type]
        ran.append(1)
        return "hello"

    async def get() -> httpx.Response:
        # httpx's ASGI transport sends the header bytes as they are (Starlette's TestClient
        # re-encodes them as UTF-8).
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http:
            return await http.get("/", headers=[(b"authorization", value) for value in values])

    response = asyncio.run(get())
    return response.status_code, dict(response.headers), response.json(), client, len(ran)


@cases(CHECKED)
def test_fastapi_checks_the_token_a_lenient_authenticator_reads(values: List[bytes]) -> None:
    status, headers, body, client, ran = call_fastapi(values)
    assert (status, ran) == (401, 0)
    assert headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert client.calls == [(REVOKED, None)]


@cases(REFUSED)
def test_fastapi_refuses_an_authorization_it_cannot_read_as_one_bearer_token(values: List[bytes]) -> None:
    status, headers, body, client, ran = call_fastapi(values)
    assert (status, ran) == (401, 0)
    assert headers["www-authenticate"].startswith('Bearer error="invalid_token"')


@cases(PASSED)
def test_fastapi_without_a_bearer_token_is_as_required_says(values: List[bytes]) -> None:
    status, _, body, client, ran = call_fastapi(values, required=False)
    assert (status, body, ran) == (200, "hello", 1)
    status, headers, _, client, ran = call_fastapi(values, required=True)
    assert (status, ran) == (401, 0) and headers["www-authenticate"] == "Bearer"
    assert client.calls == []


# -- the kid of the key that verified the token


def test_a_token_and_a_kid_make_a_query_with_that_kid() -> None:
    no_kid = token("j-1")
    query = make_query(no_kid, None, None, None, "k1")
    assert (query.jti, query.kid, query.claims["sub"], query.iat) == ("j-1", "k1", "alice", 1700000000.0)
    assert make_query(no_kid, None, None, None, None).kid is None
    # Another kid than the header's cannot hide a block on the header's: refused.
    with pytest.raises(TokenError):
        make_query(token("j-1", kid="k0"), None, None, None, "k1")
    assert make_query(token("j-1", kid="k0"), None, None, None, "k0").kid == "k0"
    assert make_query(token("j-1", kid="k0"), None, None, None, None).kid == "k0"
    assert query_of({"token": no_kid, "kid": "k1"}).kid == "k1"
    assert query_of({"token": no_kid}).kid is None
    assert query_from_token(no_kid, kid="k1").kid == "k1"
    assert query_of(no_kid).json() == {"jti": "j-1", "iat": 1700000000.0, "claims": {"sub": "alice", "jti": "j-1"}}


def test_a_token_with_anything_but_a_kid_is_still_a_type_error() -> None:
    no_kid = token("j-1")
    for arguments in [("x", None, None, "k1"), (None, 1.0, None, "k1"), (None, None, {"sub": "a"}, "k1"), ("x", None, None, None)]:
        with pytest.raises(TypeError):
            make_query(no_kid, *arguments)
    with pytest.raises(TypeError):
        query_of({"token": no_kid, "jti": "x", "kid": "k1"})
    with pytest.raises(TokenError):
        make_query(no_kid, None, None, None, 3)  # type: ignore[arg-type]
    with pytest.raises(TokenError):
        make_query(token("j-1", kid=3), None, None, None, "k1")  # type: ignore[arg-type]


def fresh_cache(client: Any, key_blocks: List[str]) -> None:
    """Loads a snapshot by hand and hears a heartbeat, as following the server would."""
    client._cache.load(Snapshot(2, 0, "1-0", 0, BloomFilter(1, 7, bytes(64)), [], key_blocks))
    client._cache.heard()


KEY_BLOCKS = ["k1", "caf\u00e9"]


def test_the_cache_applies_a_key_block_to_the_kid_the_caller_gives() -> None:
    no_kid = token("j-1")
    client = RevokeClient("http://127.0.0.1:9", timeout=0.5)
    try:
        fresh_cache(client, KEY_BLOCKS)
        assert client.check(no_kid) == Verdict(False, None, "cache", cursor="1-0", heard_at=client._cache._last_heard)
        verdict = client.check(no_kid, kid="k1")
        assert (verdict.revoked, verdict.reason, verdict.kid, verdict.source) == (True, "key", "k1", "cache")
        # A header's kid is the key that verified it: another one given is refused, and cannot
        # hide the block on the header's.
        assert client.check(token("j-2", kid="k1")).reason == "key"
        for header, given in [("other", "k1"), ("k1", "other")]:
            with pytest.raises(TokenError):
                client.check(token("j-2", kid=header), kid=given)
        # Byte for byte: no case folding, trimming or Unicode normalisation.
        for near in ["K1", "k1 ", " k1", "\uff4b1", "cafe\u0301", "CAF\u00c9"]:
            assert not client.check(no_kid, kid=near).revoked, near
        assert client.check(no_kid, kid="caf\u00e9").reason == "key"
        verdicts = client.check_many([{"token": no_kid, "kid": "k1"}, no_kid, {"token": no_kid, "kid": "K1"}])
        assert [(v.revoked, v.reason, v.kid) for v in verdicts] == [(True, "key", "k1"), (False, None, None), (False, None, None)]
    finally:
        client.close()


def test_the_async_cache_applies_a_key_block_to_the_kid_the_caller_gives() -> None:
    no_kid = token("j-1")

    async def scenario() -> None:
        client = AsyncRevokeClient("http://127.0.0.1:9", timeout=0.5)
        try:
            fresh_cache(client, KEY_BLOCKS)
            assert not (await client.check(no_kid)).revoked
            verdict = await client.check(no_kid, kid="k1")
            assert (verdict.revoked, verdict.reason, verdict.kid, verdict.source) == (True, "key", "k1", "cache")
            assert not (await client.check(no_kid, kid="k1\x00")).revoked
            verdicts = await client.check_many([{"token": no_kid, "kid": "k1"}, no_kid])
            assert [v.reason for v in verdicts] == ["key", None]
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_the_server_is_asked_with_the_kid_the_caller_gives() -> None:
    sent: List[Tuple[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append((request.url.path, body))
        if request.url.path == "/v1/check/batch":
            return httpx.Response(200, json={"results": [{"revoked": True, "reason": "key", "kid": "k1"} for _ in body["checks"]]})
        return httpx.Response(200, json={"revoked": True, "reason": "key", "kid": "k1"})

    no_kid = token("j-1")
    client = RevokeClient("http://revoke.test", cache=False)
    client._http = httpx.Client(base_url=client.url, transport=httpx.MockTransport(handler))
    try:
        assert client.check(no_kid, kid="k1").reason == "key"
        client.check_many([{"token": no_kid, "kid": "k1"}])
    finally:
        client.close()
    explicit = {"jti": "j-1", "iat": 1700000000.0, "claims": {"jti": "j-1", "sub": "alice"}, "kid": "k1"}
    assert sent == [("/v1/check", explicit), ("/v1/check/batch", {"checks": [explicit]})]


def test_flask_jwt_extended_asks_kid_of_which_key_verified_the_token() -> None:
    from flask import jsonify
    from flask_jwt_extended import JWTManager, create_access_token, jwt_required

    from revoke_client.flask_jwt_extended import install

    class ExplicitStub:
        def __init__(self) -> None:
            self.kids: List[Optional[str]] = []

        def check(self, token: Optional[str] = None, **query: Any) -> Verdict:
            self.kids.append(query.get("kid"))
            return Verdict(True, "key", "server", kid="k1") if query.get("kid") == "k1" else Verdict(False)

    def app_with(kid_of: Any) -> Tuple[Flask, ExplicitStub]:
        app = Flask(__name__)
        app.config["JWT_SECRET_KEY"] = "a-secret-long-enough-for-hs256-0123456789"
        stub = ExplicitStub()
        install(JWTManager(app), stub, kid_of=kid_of)  # type: ignore[arg-type]
        app.get("/")(jwt_required()(lambda: jsonify(hello=True)))
        return app, stub

    for kid_of, status, kids in [(None, 200, [None]), (lambda header, payload: "k1", 401, ["k1"])]:
        app, stub = app_with(kid_of)
        with app.app_context():
            access = create_access_token(identity="alice")  # no kid in its header
        response = app.test_client().get("/", headers={"Authorization": f"Bearer {access}"})
        assert (response.status_code, stub.kids) == (status, kids)


def test_read_authorization_is_a_tri_state() -> None:
    from revoke_client._http import CHECK, PASS, REFUSE, Authorization, read_authorization

    assert read_authorization([]) == Authorization(PASS)
    assert read_authorization(["Basic eHl6"]) == Authorization(PASS)
    assert read_authorization([bytearray(b"bearer\t\tabc.def.ghi  ")]) == Authorization(CHECK, token="abc.def.ghi")
    # Any whitespace str.split() knows (what Starlette splits on, once latin-1 decoded or not).
    for space in ["\u2003", "\u3000", "\x1c", "\x85", "\r\n "]:
        assert read_authorization([f"Bearer{space}abc.def.ghi"]) == Authorization(CHECK, token="abc.def.ghi"), repr(space)
        assert read_authorization([f"Bearer abc{space}ghi"]).action == REFUSE, repr(space)
    for value in ["Bearer", "Bearer abc\u00e9", "Bearer a\x00b", "Basic x,Bearer y", "Digest a=b, bearer", "BEARER\u00a0a b"]:
        refused = read_authorization([value])
        assert refused.action == REFUSE and refused.token is None and refused.message, value
    assert read_authorization(['Digest username="x", realm="r", nonce="n", uri="/", response="abc"']).action == PASS
    assert read_authorization(["Bearer a", None]).action == CHECK  # type: ignore[list-item]
