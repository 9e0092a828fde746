"""flask-jwt-extended: its blocklist, answered by Revoke.

    from revoke_client import RevokeClient
    from revoke_client.flask_jwt_extended import install

    jwt = JWTManager(app)
    install(jwt, RevokeClient("http://revoke:8080", api_key=VERIFIER_KEY).start())

flask-jwt-extended verifies the token, then asks the registered ``token_in_blocklist_loader``;
a revoked token gets its usual 401 ("Token has been revoked"). A check the server could not
answer, failing closed, is answered 503 with ``Retry-After`` instead of calling the token
revoked. flask-jwt-extended reads the ``Authorization`` header itself; this module does not.

``kid_of(jwt_header, jwt_payload)``, optional, returns the ``kid`` of the key that verified the
token (the one your ``decode_key_loader`` chose), or None for the header's: a token whose
header names no ``kid`` (an issuer with one key per algorithm) is still refused when that key
is blocked.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

from flask import abort, jsonify

from ._claims import TokenError, query_from_claims
from ._client import RevokeClient
from ._http import refusal

__all__ = ["install"]


def install(
    jwt_manager: Any, client: RevokeClient, kid_of: Optional[Callable[[Mapping[str, Any], Mapping[str, Any]], Optional[str]]] = None
) -> None:
    """Registers ``client`` as ``jwt_manager``'s ``token_in_blocklist_loader``."""

    def revoked(jwt_header: Mapping[str, Any], jwt_payload: Mapping[str, Any]) -> bool:
        try:
            query = query_from_claims(jwt_payload, kid=jwt_header.get("kid"))
            kid = kid_of(jwt_header, jwt_payload) if kid_of is not None else None
            if kid is not None:
                if not isinstance(kid, str):
                    raise TokenError("kid must be a string")
                query = query._replace(kid=kid)
        except TokenError:
            return True
        verdict = client.check(jti=query.jti, iat=query.iat, claims=query.claims, kid=query.kid)
        if verdict.revoked and verdict.reason == "unavailable":
            answer = refusal(verdict)
            assert answer is not None
            status, headers, body = answer
            response = jsonify(body)
            response.status_code = status
            response.headers.update(headers)
            abort(response)
        return verdict.revoked

    jwt_manager.token_in_blocklist_loader(revoked)
