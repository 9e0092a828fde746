"""The authorization matrix, walked: every operation docs/openapi.yaml describes, called on a live
``revoked`` (verifier and admin keys configured) without a key, with a verifier key and with an
admin key, answers as the role its tag names. Only whether the key is let through is judged:
what the route then says of an empty request (400, 404, 415) is its own business."""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

import httpx
import pytest
import yaml

from conftest import ADMIN_KEY, ROOT, VERIFIER_KEY, Revoked

OPEN_TAGS = {"logout", "operations"}
PARAMETERS = {"jti": "x", "claim": "sub", "value": "alice", "kid": "k"}


def operations() -> List[Tuple[str, str, str]]:
    document = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                (tag,) = operation["tags"]
                found.append((method.upper(), re.sub(r"\{(\w+)\}", lambda m: PARAMETERS[m.group(1)], path), tag))
    return found


def status(revoked: Revoked, method: str, path: str, headers: Dict[str, str]) -> int:
    # Streams answer their head and then never end: only the head is read.
    with httpx.stream(method, revoked.url + path, headers=headers, timeout=10) as response:
        return response.status_code


def bearer(key: Optional[str]) -> Dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def test_the_openapi_file_describes_the_routes_walked() -> None:
    tags = {tag for _, _, tag in operations()}
    assert tags == {"logout", "operations", "verifier", "admin", "gateway"}, tags
    assert len(operations()) >= 24


@pytest.mark.parametrize("method,path,tag", operations(), ids=lambda value: str(value))
def test_every_operation_answers_as_its_role(revoked: Revoked, method: str, path: str, tag: str) -> None:
    anonymous = status(revoked, method, path, {})
    as_verifier = status(revoked, method, path, bearer(VERIFIER_KEY))
    as_admin = status(revoked, method, path, bearer(ADMIN_KEY))
    if tag in OPEN_TAGS:
        assert anonymous not in (401, 403), (method, path, anonymous)
    elif tag == "verifier":
        assert anonymous == 401, (method, path, anonymous)
        assert as_verifier not in (401, 403) and as_admin not in (401, 403), (method, path, as_verifier, as_admin)
    elif tag == "admin":
        assert (anonymous, as_verifier) == (401, 403), (method, path, anonymous, as_verifier)
        assert as_admin not in (401, 403), (method, path, as_admin)
    elif tag == "gateway":
        # The gateway's key travels as Revoke-Key; Authorization is the user's token (none here: 401).
        assert anonymous == 403, (method, path, anonymous)
        for key in (VERIFIER_KEY, ADMIN_KEY):
            assert status(revoked, method, path, {"Revoke-Key": key}) == 401, (method, path, key)
    else:
        pytest.fail(f"{method} {path} has the tag {tag}, which names no role")
