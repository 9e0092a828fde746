"""The caching client against a live ``revoked`` on its own ``redis-server``."""

from __future__ import annotations

import time
import uuid

import httpx

from conftest import ADMIN_KEY, VERIFIER_KEY, Revoked, eventually, mint
from revoke_client import RevokeClient, TokenError, Verdict, query_from_token


def caching_client(server: Revoked, **options: object) -> RevokeClient:
    client = RevokeClient(server.url, api_key=VERIFIER_KEY, **options)  # type: ignore[arg-type]
    client.start()
    assert client.wait_fresh(30), "the cache never became fresh"
    return client


def test_a_revocation_is_refused_from_the_event_that_carries_it(revoked: Revoked) -> None:
    with caching_client(revoked) as client:
        jti = uuid.uuid4().hex
        token = mint(jti=jti)
        before = client.check(token)
        assert (before.revoked, before.source) == (False, "cache")
        assert before.cursor is not None and before.heard_at is not None
        applied = client.events_applied

        revoked.revoke_jti(jti)
        eventually("the revocation's event is applied", lambda: client.events_applied > applied)
        after = client.check(token)
        assert after.revoked and after.reason == "jti"
        # Revoked in the filter, so the cache says "maybe" and the server confirms.
        assert after.source == "server"
        assert client.check(jti=jti).revoked


def test_cutoffs_and_key_blocks_are_answered_by_the_cache(revoked: Revoked) -> None:
    with caching_client(revoked) as client:
        user = f"alice-{uuid.uuid4().hex[:6]}"
        old = int(time.time()) - 60
        applied = client.events_applied
        response = revoked.admin("POST", "/v1/cutoffs", json={"claim": "sub", "value": user, "reason": "phished"})
        assert response.status_code == 201, response.text
        eventually("the cutoff's event is applied", lambda: client.events_applied > applied)

        verdict = client.check(mint(sub=user, iat=old))
        assert (verdict.revoked, verdict.reason, verdict.claim, verdict.source) == (True, "cutoff", "sub", "cache")
        assert client.check(jti=uuid.uuid4().hex, iat=old, claims={"sub": user}).source == "cache"
        later = client.check(mint(sub=user, iat=int(time.time()) + 5))
        assert (later.revoked, later.source) == (False, "cache")
        # The server agrees with the cache.
        assert client.check_remotely(query_from_token(mint(sub=user, iat=old))).revoked

        kid = f"leaked-{uuid.uuid4().hex[:6]}"
        applied = client.events_applied
        response = revoked.admin("POST", "/v1/key-blocks", json={"kid": kid, "reason": "leaked"})
        assert response.status_code == 201, response.text
        eventually("the key block's event is applied", lambda: client.events_applied > applied)
        verdict = client.check(mint(kid=kid))
        assert (verdict.revoked, verdict.reason, verdict.kid, verdict.source) == (True, "key", kid, "cache")
        assert client.check(jti=uuid.uuid4().hex, kid=kid).revoked

        applied = client.events_applied
        assert revoked.admin("DELETE", f"/v1/key-blocks/{kid}").status_code == 204
        eventually("the unblock's event is applied", lambda: client.events_applied > applied)
        verdict = client.check(mint(kid=kid))
        assert (verdict.revoked, verdict.source) == (False, "cache")


def test_a_cursor_the_log_no_longer_holds_loads_a_new_snapshot(make_revoked) -> None:  # type: ignore[no-untyped-def]
    namespace = f"py-gone-{uuid.uuid4().hex[:6]}"
    followed = make_revoked(namespace, {"REVOKE_EVENT_LOG_LENGTH": "100"})
    writer = make_revoked(namespace, {"REVOKE_EVENT_LOG_LENGTH": "100"})
    with caching_client(followed) as client:
        assert client.snapshots_loaded == 1
        followed.stop()
        eventually("the cache notices", lambda: not client.is_fresh)
        # While the client cannot follow, far more changes than the log keeps.
        jtis = [f"gone-{index}-{uuid.uuid4().hex[:6]}" for index in range(1500)]
        with httpx.Client(base_url=writer.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as admin:
            for jti in jtis:
                response = admin.post("/v1/revocations", json={"jti": jti, "expires_at": int(time.time()) + 3600})
                assert response.status_code == 201
        followed.start()
        eventually("a second snapshot is loaded", lambda: client.snapshots_loaded >= 2 and client.is_fresh)
        # Every change is in the new snapshot: each jti is a "maybe" the server confirms.
        verdicts = client.check_many([{"jti": jti} for jti in jtis[:1000]]) + client.check_many([{"jti": jti} for jti in jtis[1000:]])
        assert all(verdict.revoked for verdict in verdicts)
        assert client.check(jti=uuid.uuid4().hex).source in ("cache", "server")


def test_a_stale_cache_asks_the_server_and_a_dead_server_gets_the_policy(make_revoked) -> None:  # type: ignore[no-untyped-def]
    server = make_revoked()
    closed = caching_client(server, staleness=1.0, timeout=0.5)
    opened = caching_client(server, staleness=1.0, timeout=0.5, fail_closed=False)
    try:
        jti = uuid.uuid4().hex
        assert closed.check(jti=jti).source == "cache"
        server.stop()
        eventually("the caches go stale", lambda: not closed.is_fresh and not opened.is_fresh)
        assert closed.check(jti=jti) == Verdict(revoked=True, reason="unavailable", source="policy")
        assert opened.check(jti=jti) == Verdict(revoked=False, reason="unavailable", source="policy")
        assert closed.stats["policy_answers"] == 1
        # Back: the cache follows again and answers by itself.
        server.start()
        assert closed.wait_fresh(30)
        assert closed.check(jti=jti).source == "cache"
    finally:
        closed.close()
        opened.close()


def test_without_a_cache_every_check_asks_the_server(revoked: Revoked) -> None:
    with RevokeClient(revoked.url, api_key=VERIFIER_KEY, cache=False) as client:
        jti = uuid.uuid4().hex
        assert client.check(jti=jti) == Verdict(revoked=False, source="server")
        revoked.revoke_jti(jti)
        assert client.check(jti=jti) == Verdict(revoked=True, reason="jti", source="server")
        assert not client.is_fresh and not client.wait_fresh(0.01)
    with RevokeClient("http://127.0.0.1:9", cache=False, timeout=0.5) as nobody:
        assert nobody.check(jti="x") == Verdict(revoked=True, reason="unavailable", source="policy")


def test_a_wrong_api_key_is_the_policy_not_a_guess(revoked: Revoked) -> None:
    with RevokeClient(revoked.url, api_key="not-a-key", cache=False) as client:
        assert client.check(jti="anything") == Verdict(revoked=True, reason="unavailable", source="policy")


def test_check_many_answers_from_the_cache_and_one_batch(revoked: Revoked) -> None:
    with caching_client(revoked) as client:
        dead = uuid.uuid4().hex
        applied = client.events_applied
        revoked.revoke_jti(dead)
        eventually("the revocation's event is applied", lambda: client.events_applied > applied)
        verdicts = client.check_many([mint(), {"jti": dead}, {"jti": uuid.uuid4().hex, "claims": {"sub": "bob"}}])
        assert [verdict.revoked for verdict in verdicts] == [False, True, False]
        assert verdicts[1].source == "server"


def test_unreadable_tokens_and_arguments_are_clear_errors(revoked: Revoked) -> None:
    with RevokeClient(revoked.url, api_key=VERIFIER_KEY, cache=False) as client:
        for token in ["", "a.b", "a.b.c", "!!!.e30.x", "e30.bm90LWpzb24.x", "e30.WzFd.x", mint().replace(".", "..", 1)]:
            try:
                client.check(token)
            except TokenError:
                continue
            raise AssertionError(f"{token!r} was read")
        for arguments in [{"jti": 5}, {"iat": "yesterday"}, {"iat": float("nan")}, {"claims": {"sub": 1}}, {"kid": 3}]:
            try:
                client.check(**arguments)  # type: ignore[arg-type]
            except TokenError:
                continue
            raise AssertionError(f"{arguments} was taken")
        try:
            client.check(mint(), jti="x")
        except TypeError:
            pass
        else:
            raise AssertionError("a token and a jti were both taken")
        try:
            client.check_many([{"jti": str(index)} for index in range(1001)])
        except ValueError:
            pass
        else:
            raise AssertionError("1001 checks were taken")


def test_a_forked_worker_follows_on_its_own(revoked: Revoked) -> None:
    import os

    with caching_client(revoked) as client:
        jti = uuid.uuid4().hex
        pid = os.fork()
        if pid == 0:  # the worker, as gunicorn forks it
            status = 1
            try:
                # The parent's following thread is not here: the cache is not fresh until this
                # process follows by itself, which its first use starts.
                stale = not client._cache.fresh  # type: ignore[union-attr]
                fresh = client.wait_fresh(30)
                applied = client.events_applied
                revoked.revoke_jti(jti)
                eventually("the worker applies the revocation", lambda: client.events_applied > applied)
                status = 0 if stale and fresh and client.check(jti=jti).revoked else 2
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
        # The parent still follows on its own connection.
        eventually("the parent applies it too", lambda: client.check(jti=jti).revoked)
