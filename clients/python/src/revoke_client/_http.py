"""What every integration answers, framework aside: the bearer token of a request, and the
status, headers and body for a token the check refuses."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from ._core import Verdict

__all__ = ["bearer_token", "refusal"]


def bearer_token(authorization: Optional[str]) -> Optional[str]:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def refusal(verdict: Optional[Verdict], message: Optional[str] = None) -> Optional[Tuple[int, Dict[str, str], Dict[str, str]]]:
    """``(status, headers, JSON body)`` for a request whose token must be refused, or None.

    A revoked token (or, with ``verdict`` None, one whose claims cannot be read) is 401 with
    ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750); a check the server could not
    answer, failing closed, is 503 with ``Retry-After``.
    """
    if verdict is not None and not verdict.revoked:
        return None
    if verdict is not None and verdict.reason == "unavailable":
        body = {"error": "revocation_unavailable", "message": "the revocation service cannot answer now"}
        return 503, {"Retry-After": "1"}, body
    description = message or "The access token has been revoked"
    headers = {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'}
    return 401, headers, {"error": "invalid_token", "message": description}
