"""Flask: refuse requests whose bearer token is revoked, before any view runs.

    from revoke_client import RevokeClient
    from revoke_client.flask import Revoke

    client = RevokeClient("http://revoke:8080", api_key=VERIFIER_KEY).start()
    Revoke(app, client)

A request without a bearer token passes (the app's own authentication decides); a revoked
token gets 401 with ``WWW-Authenticate: Bearer error="invalid_token"``; a check the server
could not answer, failing closed, gets 503. The token's claims are read, not verified: the
app still verifies the signature (a forged token can only fail that).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from flask import Flask, Response, g, jsonify, request

from ._claims import TokenError
from ._client import RevokeClient
from ._http import bearer_token, refusal

__all__ = ["Revoke"]


class Revoke:
    def __init__(
        self, app: Optional[Flask] = None, client: Optional[RevokeClient] = None, skip: Optional[Callable[[Any], bool]] = None
    ) -> None:
        self.client = client
        self.skip = skip
        if app is not None:
            self.init_app(app, client)

    def init_app(self, app: Flask, client: Optional[RevokeClient] = None) -> None:
        if client is not None:
            self.client = client
        if self.client is None:
            raise ValueError("Revoke needs a RevokeClient")
        app.extensions["revoke"] = self
        app.before_request(self._before_request)

    def _before_request(self) -> Optional[Response]:
        if self.skip is not None and self.skip(request):
            return None
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            return None
        assert self.client is not None
        try:
            verdict = self.client.check(token)
        except TokenError as error:
            answer = refusal(None, str(error))
        else:
            g.revoke_verdict = verdict
            answer = refusal(verdict)
        if answer is None:
            return None
        status, headers, body = answer
        response = jsonify(body)
        response.status_code = status
        response.headers.update(headers)
        return response
