"""Standard OAuth clients against a live ``revoked``: authlib's ``OAuth2Session`` revokes
(RFC 7009) and introspects (RFC 7662) as resource servers do, authenticating as OAuth clients
with a verifier key's name and secret."""

from __future__ import annotations

import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session

from conftest import VERIFIER_KEY, Revoked, mint

CLIENT_ID = "python"  # the verifier key's name in conftest's REVOKE_VERIFIER_KEYS


def session(method: str, secret: str = VERIFIER_KEY, client_id: str = CLIENT_ID) -> OAuth2Session:
    return OAuth2Session(client_id=client_id, client_secret=secret, token_endpoint_auth_method=method, default_timeout=10)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_introspection_with_client_credentials(revoked: Revoked, method: str) -> None:
    token = mint()
    with session(method) as client:
        active = client.introspect_token(revoked.url + "/oauth2/introspect", token=token, token_type_hint="access_token")
        assert active.status_code == 200, active.text
        assert active.json()["active"] is True and active.json()["sub"] == "alice"
        revoked_answer = client.revoke_token(revoked.url + "/oauth2/revoke", token=token)
        assert revoked_answer.status_code == 200, revoked_answer.text
        after = client.introspect_token(revoked.url + "/oauth2/introspect", token=token)
        assert after.json() == {"active": False}


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_wrong_client_credentials_are_401(revoked: Revoked, method: str) -> None:
    token = mint()
    for client_id, secret in [(CLIENT_ID, "not-the-verifier-key-0123"), ("ops", VERIFIER_KEY)]:
        with session(method, secret=secret, client_id=client_id) as client:
            answer = client.introspect_token(revoked.url + "/oauth2/introspect", token=token)
            assert answer.status_code == 401, (client_id, answer.text)
            assert answer.json()["error"] == "unauthorized"
            assert "WWW-Authenticate" in answer.headers


def test_a_public_client_revokes(revoked: Revoked) -> None:
    token = mint()
    with OAuth2Session(client_id="some-public-app", token_endpoint_auth_method="none", default_timeout=10) as client:
        assert client.revoke_token(revoked.url + "/oauth2/revoke", token=token).status_code == 200
    with session("client_secret_basic") as client:
        assert client.introspect_token(revoked.url + "/oauth2/introspect", token=token).json() == {"active": False}


def test_an_empty_form_post_is_a_missing_parameter(revoked: Revoked) -> None:
    for path in ["/oauth2/revoke", "/oauth2/introspect", "/v1/backchannel-logout"]:
        answer = httpx.post(revoked.url + path, headers={"Authorization": f"Bearer {VERIFIER_KEY}"}, timeout=10)
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["error"] == "invalid_request"
