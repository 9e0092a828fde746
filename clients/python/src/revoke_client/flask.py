"""Flask: refuse requests whose bearer token is revoked, before any view runs.

    from revoke_client import RevokeClient
    from revoke_client.flask import Revoke

    client = RevokeClient("http://revoke:8080", api_key=VERIFIER_KEY).start()
    Revoke(app, client)

The ``Authorization`` header is read as the most lenient common authenticator reads it (DRF
SimpleJWT's ``header.split()``, Starlette's ``auth.split()``): the scheme ``Bearer`` in any
case, any run of whitespace (spaces, tabs), the token; surrounding whitespace ignored.

- **Passes, unchecked** (the app's own authentication decides): a request without an
  ``Authorization`` header, with an empty one, or with one of another scheme (``Basic ...``,
  ``Token ...``) that holds no ``Bearer`` credential; and a request ``skip(request)`` exempts.
- **Checked**: exactly one ``Authorization`` header holding one bearer token. A revoked token,
  or one whose claims cannot be read, gets 401 with ``WWW-Authenticate: Bearer
  error="invalid_token"`` and ``{"error": "invalid_token", "message": ...}``; a check the
  server could not answer, failing closed, gets 503. The verdict is in ``g.revoke_verdict``.
- **Refused with that 401, never passed on**: several ``Authorization`` headers; ``Bearer``
  with an empty credential or with more than one word (``Bearer a b``); a credential with
  characters no token has (control, non-ASCII, ``,``); a scheme that runs into its credential
  (``Bearer:x``); a ``Bearer`` credential after another one (``Basic x, Bearer y``). An app
  or authenticator might read a token out of any of these that the check never saw. (A WSGI
  server joins repeated headers into one comma-separated value, which is read as one header:
  ``Bearer a, Bearer b`` is refused, ``Basic a, Basic b`` passes.)

The token's claims are read, not verified: the app still verifies the signature (a forged
token can only fail that). ``kid_of(request, token)``, optional, returns the ``kid`` of the key
that verifies the token, or None for the header's: a token whose header names no ``kid`` (an
issuer with one key per algorithm) is still refused when that key is blocked. With PyJWT:
``lambda request, token: jwks.get_signing_key_from_jwt(token).key_id`` (a :class:`TokenError`
it raises refuses the request with 401).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from flask import Flask, Response, g, jsonify, request

from ._claims import TokenError
from ._client import RevokeClient
from ._http import PASS, REFUSE, read_authorization, refusal

__all__ = ["Revoke"]


class Revoke:
    def __init__(
        self,
        app: Optional[Flask] = None,
        client: Optional[RevokeClient] = None,
        skip: Optional[Callable[[Any], bool]] = None,
        kid_of: Optional[Callable[[Any, str], Optional[str]]] = None,
    ) -> None:
        self.client = client
        self.skip = skip
        self.kid_of = kid_of
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
        # Every Authorization header, not only the first.
        authorization = read_authorization(request.headers.getlist("Authorization"))
        if authorization.action == PASS:
            return None
        if authorization.action == REFUSE:
            answer = refusal(None, authorization.message)
        else:
            token = authorization.token
            assert self.client is not None and token is not None
            try:
                kid = self.kid_of(request, token) if self.kid_of is not None else None
                verdict = self.client.check(token, kid=kid)
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
