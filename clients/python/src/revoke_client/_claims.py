"""The claims a revocation check reads from a compact JWS, without verifying its signature
(verify it first): ``jti``, ``iat``, every string claim (for cutoffs) and the header's ``kid``
(or the ``kid`` of the key that verified the token, when the caller gives it)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from types import MappingProxyType
from typing import Any, Dict, Mapping, NamedTuple, Optional

__all__ = ["Query", "TokenError", "query_from_claims", "query_from_token"]


class TokenError(ValueError):
    """A token whose claims cannot be read: not ``header.payload.signature`` in base64url JSON,
    or a registered claim of the wrong type (RFC 7519 section 4.1)."""


NO_CLAIMS: Mapping[str, str] = MappingProxyType({})


class Query(NamedTuple):
    """What a check asks about one token. (A named tuple: built on every check, it must be cheap.)"""

    jti: Optional[str] = None
    iat: Optional[float] = None
    claims: Mapping[str, str] = NO_CLAIMS
    kid: Optional[str] = None

    def json(self) -> Dict[str, Any]:
        body: Dict[str, Any] = {}
        if self.jti is not None:
            body["jti"] = self.jti
        if self.iat is not None:
            body["iat"] = self.iat
        if self.claims:
            body["claims"] = dict(self.claims)
        if self.kid is not None:
            body["kid"] = self.kid
        return body


_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def _decode_part(part: str, what: str) -> Dict[str, Any]:
    # The standard decoder skips characters outside the alphabet; a token must not have any.
    if not _BASE64URL.fullmatch(part):
        raise TokenError(f"the token's {what} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise TokenError(f"the token's {what} is not base64url") from None
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError):
        raise TokenError(f"the token's {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenError(f"the token's {what} is not a JSON object")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _number(claims: Mapping[str, Any], name: str) -> Optional[float]:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TokenError(f"{name} must be a number of seconds")
    return float(value)


def query_from_claims(claims: Mapping[str, Any], kid: Optional[str] = None) -> Query:
    """The query for a token's decoded payload (and its header's ``kid``), checking the types
    of the registered claims as the server does."""
    jti = claims.get("jti")
    if jti is not None and not isinstance(jti, str):
        raise TokenError("jti must be a string")
    iat = _number(claims, "iat")
    _number(claims, "exp")
    _number(claims, "nbf")
    for name in ("iss", "sub"):
        if name in claims and claims[name] is not None and not isinstance(claims[name], str):
            raise TokenError(f"{name} must be a string")
    aud = claims.get("aud")
    if aud is not None and not isinstance(aud, str):
        if not (isinstance(aud, list) and all(isinstance(item, str) for item in aud)):
            raise TokenError("aud must be a string or an array of strings")
    if kid is not None and not isinstance(kid, str):
        raise TokenError("the token's kid must be a string")
    strings = {name: value for name, value in claims.items() if isinstance(value, str)}
    return Query(jti=jti, iat=iat, claims=strings, kid=kid)


def query_from_token(token: str, kid: Optional[str] = None) -> Query:
    """Reads a compact JWS (``header.payload.signature``) into a query.

    ``kid``, when given, is the ``kid`` of the key that verified a token whose header names
    none: an issuer's JWKS often has one key per algorithm, and a token without ``kid`` is
    verified by the only key for its algorithm. Its header names no key, so only the caller
    knows which one verified it, and a key block on that key must still refuse it. A ``kid``
    other than the header's is a :class:`TokenError` (no verifier picks another key than the
    one the header names, and it must never hide a block on the header's). It is compared byte
    for byte (no case folding, trimming or Unicode normalisation), as the server compares it.
    """
    if not isinstance(token, str):
        raise TokenError("the token must be a string")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise TokenError("the token is not a compact JWS (header.payload.signature)")
    header = _decode_part(parts[0], "header")
    payload = _decode_part(parts[1], "payload")
    # The header's kid is read (and its type checked) even when the caller gives one.
    query = query_from_claims(payload, kid=header.get("kid"))
    if kid is None:
        return query
    if not isinstance(kid, str):
        raise TokenError("kid must be a string")
    if query.kid is not None:
        if query.kid != kid:
            raise TokenError("the token's header names another kid than the key that verified it")
        return query
    return query._replace(kid=kid)
