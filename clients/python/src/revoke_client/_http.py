"""What every integration answers, framework aside: what a request's ``Authorization`` headers
mean to a revocation check, and the status, headers and body for a request it refuses.

The headers are read the way the most lenient common authenticator reads them (Django REST
framework SimpleJWT's ``header.split()``, Starlette's ``scheme, credentials = auth.split()``):
the scheme, case-insensitive, then any run of whitespace, then the credential, surrounding
whitespace ignored. Whatever such an authenticator could take for a bearer token is either
checked or refused, never passed on unchecked: a revoked token must not reach an app that
would accept it.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple, Union

from ._core import Verdict

__all__ = ["CHECK", "PASS", "REFUSE", "Authorization", "read_authorization", "refusal", "verifying_kid"]

#: No bearer token: the app's own authentication decides.
PASS = "pass"
#: One bearer token, to check.
CHECK = "check"
#: Headers that might carry a bearer token but cannot be read as exactly one: 401.
REFUSE = "refuse"

#: RFC 6750's b64token, which every compact JWS is: anything else in a bearer credential is
#: not a token this check could read, and may be read otherwise by someone else.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: Where a later credential could start in a header of another scheme ("Basic x, Bearer y").
_WORDS = re.compile(r"[\s,]+")


class Authorization(NamedTuple):
    """What a request's ``Authorization`` headers mean: ``action`` is :data:`PASS`,
    :data:`CHECK` (``token`` is the bearer credential) or :data:`REFUSE` (``message`` says why)."""

    action: str
    token: Optional[str] = None
    message: Optional[str] = None


_PASSED = Authorization(PASS)


def _refused(message: str) -> Authorization:
    return Authorization(REFUSE, message=message)


def read_authorization(values: Sequence[Union[str, bytes]]) -> Authorization:
    """Reads every ``Authorization`` header of a request (``bytes`` as ASGI has them are
    latin-1, as HTTP's are).

    - No header, an empty one, or one of another scheme (``Basic ...``, ``Token ...``) that
      holds no ``Bearer`` credential: :data:`PASS`.
    - One header ``Bearer <token>``: the scheme in any case, separated from the token by any
      run of whitespace (spaces, tabs, ...), surrounding whitespace ignored, the token one
      RFC 6750 b64token: :data:`CHECK`.
    - Anything else: :data:`REFUSE`. That is several ``Authorization`` headers; ``Bearer``
      with no credential, or with more than one word (``Bearer a b``: some authenticators
      read ``a``, others refuse); a credential with characters no token has (control,
      non-ASCII, ``,``...); a scheme that starts with ``Bearer`` but is not separated from
      its credential (``Bearer:x``); and a ``Bearer`` credential after another one
      (``Basic x, Bearer y``).
    """
    present = [value for value in values if value is not None]
    if not present:
        return _PASSED
    if len(present) > 1:
        return _refused("The request has several Authorization headers")
    value = present[0]
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1")
    if not isinstance(value, str):
        return _refused("The Authorization header cannot be read")
    words = value.split()
    if not words:
        return _PASSED
    scheme = words[0].lower()
    if scheme != "bearer":
        if scheme.startswith("bearer"):
            return _refused("The Authorization header cannot be read as a bearer token")
        # The word after the scheme is its credential (base64 may start "bEAr..."); a later
        # word that is or starts a Bearer scheme is a second credential someone may read.
        later = [word.lower() for word in _WORDS.split(value.strip())[1:]]
        if "bearer" in later or any(word.startswith("bearer") for word in later[1:]):
            return _refused("The Authorization header holds a bearer token after another credential")
        return _PASSED
    if len(words) == 1:
        return _refused("The bearer token is empty")
    if len(words) > 2:
        return _refused("The Authorization header holds more than one bearer credential")
    if not _B64TOKEN.fullmatch(words[1]):
        return _refused("The bearer token has characters no token has")
    return Authorization(CHECK, token=words[1])


async def verifying_kid(kid_of: Optional[Callable[..., Any]], request: Any, token: str) -> Optional[str]:
    """The ``kid`` an integration's ``kid_of(request, token)`` names (it may be a coroutine
    function), or None without one."""
    if kid_of is None:
        return None
    found = kid_of(request, token)
    return await found if inspect.isawaitable(found) else found


def refusal(verdict: Optional[Verdict], message: Optional[str] = None) -> Optional[Tuple[int, Dict[str, str], Dict[str, str]]]:
    """``(status, headers, JSON body)`` for a request whose token must be refused, or None.

    A revoked token (or, with ``verdict`` None, one whose claims or ``Authorization`` header
    cannot be read) is 401 with ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750);
    a check the server could not answer, failing closed, is 503 with ``Retry-After``.
    """
    if verdict is not None and not verdict.revoked:
        return None
    if verdict is not None and verdict.reason == "unavailable":
        body = {"error": "revocation_unavailable", "message": "the revocation service cannot answer now"}
        return 503, {"Retry-After": "1"}, body
    description = message or "The access token has been revoked"
    headers = {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'}
    return 401, headers, {"error": "invalid_token", "message": description}
