"""Each integration, in a real app, against a live ``revoked``: a token revoked through the
server's logout (``POST /v1/revoke``) is refused by the app."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator, Tuple

import httpx
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from flask import Flask, jsonify
from flask_jwt_extended import JWTManager, create_access_token, get_jwt_identity, jwt_required

from conftest import HMAC_SECRET, VERIFIER_KEY, Revoked, eventually, mint
from revoke_client import AsyncRevokeClient, RevokeClient
from revoke_client.asgi import RevocationMiddleware
from revoke_client.fastapi import RevocationCheck
from revoke_client.flask import Revoke
from revoke_client.flask_jwt_extended import install


def logout(server: Revoked, token: str) -> None:
    response = httpx.post(server.url + "/v1/revoke", json={"token": token}, timeout=10)
    assert response.status_code == 200 and response.json()["revoked"] is True, response.text


def jwt_app() -> Tuple[Flask, JWTManager]:
    """The guide's app: flask-jwt-extended, HS256, one protected route."""
    app = Flask(__name__)
    app.config["JWT_SECRET_KEY"] = HMAC_SECRET
    jwt_manager = JWTManager(app)

    @app.get("/protected")
    @jwt_required()
    def protected():  # type: ignore[no-untyped-def]
        return jsonify(user=get_jwt_identity())

    return app, jwt_manager


def test_flask_jwt_extended_refuses_a_token_after_logout(revoked: Revoked) -> None:
    app, jwt_manager = jwt_app()
    with RevokeClient(revoked.url, api_key=VERIFIER_KEY) as client:
        assert client.wait_fresh(30)
        install(jwt_manager, client)
        with app.app_context():
            token = create_access_token(identity="alice")
        http = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        assert http.get("/protected", headers=headers).status_code == 200
        assert client.stats["cache_answers"] >= 1

        logout(revoked, token)
        response = eventually("the app refuses the token", lambda: (r := http.get("/protected", headers=headers)).status_code == 401 and r)
        assert "revoked" in response.get_json()["msg"].lower()
        # Another user's token still passes.
        with app.app_context():
            other = create_access_token(identity="bob")
        assert http.get("/protected", headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_flask_jwt_extended_answers_503_when_failing_closed_without_a_server() -> None:
    app, jwt_manager = jwt_app()
    with RevokeClient("http://127.0.0.1:9", timeout=0.5) as client:
        install(jwt_manager, client)
        with app.app_context():
            token = create_access_token(identity="alice")
        response = app.test_client().get("/protected", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.get_json()["error"] == "revocation_unavailable"


def test_the_flask_extension_refuses_revoked_and_unreadable_tokens(revoked: Revoked) -> None:
    app = Flask(__name__)

    @app.get("/hello")
    def hello():  # type: ignore[no-untyped-def]
        return jsonify(hello=True)

    with RevokeClient(revoked.url, api_key=VERIFIER_KEY) as client:
        assert client.wait_fresh(30)
        Revoke(app, client)
        http = app.test_client()
        token = mint()
        assert http.get("/hello").status_code == 200
        assert http.get("/hello", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        logout(revoked, token)
        response = eventually(
            "the app refuses the token", lambda: (r := http.get("/hello", headers={"Authorization": f"Bearer {token}"})).status_code == 401 and r
        )
        assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
        assert response.get_json()["error"] == "invalid_token"
        garbage = http.get("/hello", headers={"Authorization": "Bearer not.a.token"})
        assert garbage.status_code == 401 and garbage.get_json()["error"] == "invalid_token"

    dead = Flask(__name__)
    dead.get("/hello")(lambda: jsonify(hello=True))
    with RevokeClient("http://127.0.0.1:9", timeout=0.5) as nobody:
        Revoke(dead, nobody)
        response = dead.test_client().get("/hello", headers={"Authorization": f"Bearer {mint()}"})
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"


def test_a_fastapi_dependency_refuses_a_token_after_logout(revoked: Revoked) -> None:
    client = AsyncRevokeClient(revoked.url, api_key=VERIFIER_KEY)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with client:
            assert await client.wait_fresh(30)
            yield

    app = FastAPI(lifespan=lifespan)
    not_revoked = RevocationCheck(client)

    @app.get("/me")
    async def me(verdict=Depends(not_revoked)):  # type: ignore[no-untyped-def]
        return {"revoked": verdict.revoked, "source": verdict.source}

    token = mint()
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as http:
        assert http.get("/me").status_code == 401
        answer = http.get("/me", headers=headers)
        assert answer.status_code == 200 and answer.json() == {"revoked": False, "source": "cache"}
        logout(revoked, token)
        response = eventually("the app refuses the token", lambda: (r := http.get("/me", headers=headers)).status_code == 401 and r)
        assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
        assert http.get("/me", headers={"Authorization": f"Bearer {mint()}"}).status_code == 200

    # A synchronous client works too, its checks in the thread pool.
    with RevokeClient(revoked.url, api_key=VERIFIER_KEY) as sync_client:
        assert sync_client.wait_fresh(30)
        sync_app = FastAPI()

        @sync_app.get("/me")
        async def sync_me(verdict=Depends(RevocationCheck(sync_client))):  # type: ignore[no-untyped-def]
            return {"source": verdict.source}

        with TestClient(sync_app) as http:
            assert http.get("/me", headers=headers).status_code == 401
            assert http.get("/me", headers={"Authorization": f"Bearer {mint()}"}).json() == {"source": "cache"}


def test_the_asgi_middleware_refuses_a_token_after_logout(revoked: Revoked) -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"hello"})

    async def scenario() -> None:
        async with AsyncRevokeClient(revoked.url, api_key=VERIFIER_KEY) as client:
            assert await client.wait_fresh(30)
            guarded = RevocationMiddleware(app, client)
            token = mint(jti=uuid.uuid4().hex)
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://app") as http:
                assert (await http.get("/")).status_code == 200
                assert (await http.get("/", headers=headers)).text == "hello"
                await asyncio.to_thread(logout, revoked, token)
                for _ in range(3000):
                    response = await http.get("/", headers=headers)
                    if response.status_code == 401:
                        break
                    await asyncio.sleep(0.01)
                assert response.status_code == 401
                assert response.json()["error"] == "invalid_token"
                assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
                assert (await http.get("/", headers={"Authorization": "Bearer x.y.z"})).status_code == 401
                assert (await http.get("/", headers={"Authorization": f"Bearer {mint()}"})).status_code == 200

    asyncio.run(scenario())
