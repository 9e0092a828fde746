"""Ask a Revoke server whether a JWT is revoked, from a local cache kept fresh by its event
stream: ``RevokeClient`` (threads) and ``AsyncRevokeClient`` (asyncio), with integrations for
Flask (:mod:`revoke_client.flask`), flask-jwt-extended (:mod:`revoke_client.flask_jwt_extended`),
FastAPI (:mod:`revoke_client.fastapi`) and any ASGI app (:mod:`revoke_client.asgi`)."""

from ._aio import AsyncRevokeClient
from ._claims import Query, TokenError, query_from_claims, query_from_token
from ._client import RevokeClient
from ._core import ServerError, Verdict
from ._snapshot import BloomFilter, Cutoff, Snapshot, SnapshotError, decode_snapshot

__all__ = [
    "AsyncRevokeClient",
    "BloomFilter",
    "Cutoff",
    "Query",
    "RevokeClient",
    "ServerError",
    "Snapshot",
    "SnapshotError",
    "TokenError",
    "Verdict",
    "decode_snapshot",
    "query_from_claims",
    "query_from_token",
]
