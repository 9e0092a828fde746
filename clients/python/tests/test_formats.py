"""The snapshot decoder and the event-stream reader, on bytes built here: everything
``docs/snapshot.md`` says a reader refuses is refused with ``SnapshotError``, and nothing else
escapes either reader."""

from __future__ import annotations

import struct
from typing import List, Optional, Tuple

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from revoke_client import BloomFilter, SnapshotError, decode_snapshot
from revoke_client._sse import MAXIMUM_BYTES, Comment, Event, EventStreamParser, Oversized


def encode(
    blocks: int = 2,
    hashes: int = 7,
    cursor: str = "1795444910050-0",
    cutoffs: Optional[List[Tuple[str, str, int, int]]] = None,
    key_blocks: Optional[List[str]] = None,
    version: int = 2,
    filter_bytes: Optional[bytes] = None,
    revocations: int = 3,
    checksum: bool = True,
) -> bytes:
    """A snapshot laid out as docs/snapshot.md says, field by field."""

    def string(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<I", len(raw)) + raw

    out = bytearray(b"RVKS" + bytes([version, 1, hashes, 0]))
    cutoffs = cutoffs or []
    out += struct.pack("<qQQI", 1795444910, revocations, blocks, len(cutoffs))
    out += string(cursor)
    for claim, value, before, expires_at in cutoffs:
        out += string(claim) + string(value) + struct.pack("<qq", before, expires_at)
    if version >= 2:
        kids = key_blocks or []
        out += struct.pack("<I", len(kids))
        for kid in kids:
            out += string(kid)
    out += bytes((64 - (len(out) + 4) % 64) % 64)
    out += struct.pack("<I", 0x424C4F4D)
    out += filter_bytes if filter_bytes is not None else bytes(64 * blocks)
    out += struct.pack("<Q", xxhash.xxh64_intdigest(bytes(out), seed=0x5245564B) if checksum else 0)
    return bytes(out)


def resealed(data: bytes) -> bytes:
    """``data`` with its checksum made right again, so a check behind it is reached."""
    body = data[:-8]
    return body + struct.pack("<Q", xxhash.xxh64_intdigest(body, seed=0x5245564B))


def test_a_snapshot_reads_back_with_its_filter_cutoffs_and_key_blocks() -> None:
    bloom = BloomFilter(2, 7, bytes(128))
    for jti in ["a", "b", "ünïcode-jti"]:
        bloom.add(jti)
    data = encode(filter_bytes=bytes(bloom._words.cast("B")), cutoffs=[("sub", "alice", 100, 200)], key_blocks=["k1", "k2"])
    snapshot = decode_snapshot(data)
    assert (snapshot.version, snapshot.cursor, snapshot.revocations) == (2, "1795444910050-0", 3)
    assert [(c.claim, c.value, c.before, c.expires_at) for c in snapshot.cutoffs] == [("sub", "alice", 100, 200)]
    assert snapshot.key_blocks == ["k1", "k2"]
    assert all(snapshot.filter.might_contain(jti) for jti in ["a", "b", "ünïcode-jti"])
    assert decode_snapshot(encode(version=1)).key_blocks == []


@pytest.mark.parametrize(
    "data, message",
    [
        (b"RVKS\x02", "truncated"),
        (b"XXXX" + encode()[4:], "bad magic"),
        (encode(version=3), "version 3"),
        (encode(checksum=False), "checksum"),
        (resealed(encode()[:5] + b"\x02" + encode()[6:]), "unknown hash"),
        (encode(hashes=0), "number of hashes"),
        (encode(hashes=17), "number of hashes"),
        (encode(blocks=3, filter_bytes=bytes(128)), "size does not match"),
        (encode(blocks=0, filter_bytes=b""), "size does not match"),
        (resealed(encode()[:-9]), "size does not match"),
        (resealed(encode()[:36] + struct.pack("<I", 10**9) + encode()[40:]), "truncated"),
        (resealed(encode()[:32] + struct.pack("<I", 10**8) + encode()[36:]), "cutoff count"),
        (resealed(encode(revocations=2**63)), "revocation count"),
    ],
)
def test_bad_snapshots_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        decode_snapshot(data)


def test_a_string_that_is_not_utf8_or_a_missing_marker_is_refused() -> None:
    good = encode(cursor="abcd")
    index = good.index(b"abcd")
    with pytest.raises(SnapshotError, match="not UTF-8"):
        decode_snapshot(resealed(good[:index] + b"\xff\xfe\xfd\xfc" + good[index + 4 :]))
    marker = good.index(struct.pack("<I", 0x424C4F4D))
    with pytest.raises(SnapshotError, match="marker"):
        decode_snapshot(resealed(good[:marker] + b"\0\0\0\0" + good[marker + 4 :]))
    kids = encode(key_blocks=["k"])
    count = kids.index(struct.pack("<I", 1) + struct.pack("<I", 1) + b"k")
    with pytest.raises(SnapshotError, match="key block count"):
        decode_snapshot(resealed(kids[:count] + struct.pack("<I", 10**8) + kids[count + 4 :]))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_are_a_snapshot_or_refused(data: bytes) -> None:
    for candidate in (data, resealed(b"RVKS\x02\x01\x07\x00" + data + bytes(8))):
        try:
            decode_snapshot(candidate)
        except SnapshotError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=255))
def test_one_flipped_byte_is_refused_or_read(position: int, value: int) -> None:
    data = bytearray(encode(cutoffs=[("sub", "a", 1, 2)], key_blocks=["k"]))
    data[position % len(data)] = value
    for candidate in (bytes(data), resealed(bytes(data))):
        try:
            decode_snapshot(candidate)
        except SnapshotError:
            pass


def test_the_event_stream_reader_reads_events_comments_and_crlf() -> None:
    parser = EventStreamParser()
    stream = b": heartbeat\n\nevent: revocation\r\nid: 1-0\ndata: {\"jti\":\"a\"}\n\n:x\nid: 2-0\ndata: one\ndata: two\n\n"
    messages = [message for index in range(len(stream)) for message in parser.feed(stream[index : index + 1])]
    assert messages == [Comment(), Event("revocation", "1-0", '{"jti":"a"}'), Comment(), Event("message", "2-0", "one\ntwo")]


def test_the_event_stream_reader_stops_at_its_limit() -> None:
    parser = EventStreamParser()
    assert parser.feed(b"data: " + b"x" * (MAXIMUM_BYTES + 1)) == [Oversized()]
    assert parser.feed(b"\n\n") == []
    parser = EventStreamParser()
    chunk = b"data: " + b"y" * (1 << 20) + b"\n"
    messages = []
    for _ in range(5):
        messages += parser.feed(chunk)
    assert messages == [Oversized()]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_the_event_stream_reader_takes_any_bytes(chunks: List[bytes]) -> None:
    parser = EventStreamParser()
    for chunk in chunks:
        for message in parser.feed(chunk):
            assert isinstance(message, (Comment, Event, Oversized))


def test_backoff_doubles_with_jitter_up_to_its_maximum() -> None:
    from revoke_client._core import Backoff

    backoff = Backoff(0.05, 2.0)
    steps = [0.05 * 2**n for n in range(6)] + [2.0] * 4
    waits = [backoff.next() for _ in steps]
    # Each wait is half to all of its step: a fleet does not come back in lockstep.
    assert all(step / 2 <= wait <= step for wait, step in zip(waits, steps)), waits
    assert len({round(w / s, 6) for w, s in zip(waits, steps)}) > 1, "no jitter"
    backoff.reset()
    assert 0.025 <= backoff.next() <= 0.05
    exact = Backoff(0.1, 0.3, jitter=0)
    assert [exact.next() for _ in range(4)] == [0.1, 0.2, 0.3, 0.3]
