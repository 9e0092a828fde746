"""The snapshot of ``GET /v1/snapshot`` and its Bloom filter, byte for byte as
``docs/snapshot.md`` specifies them (and as the Swift ``RevokeSnapshot`` reads them)."""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from typing import List, Tuple

import xxhash

__all__ = ["BloomFilter", "Cutoff", "Snapshot", "SnapshotError", "decode_snapshot"]

_MAGIC = b"RVKS"
_READABLE_VERSIONS = (1, 2)
_HASH_XXH64 = 1
_CHECKSUM_SEED = 0x5245564B
_MARKER = 0x424C4F4D
_MASK64 = (1 << 64) - 1
_INT64_MAX = (1 << 63) - 1


class SnapshotError(ValueError):
    """Bytes that are not a snapshot this client can read."""


class BloomFilter:
    """A blocked Bloom filter: each key sets and tests its ``k`` bits inside one 64-byte block.

    ``h = XXH64(jti)``; the block is ``(h * B) >> 64``; ``m`` is the SplitMix64 finalizer of
    ``h + 0x9E3779B97F4A7C15``; bit ``i`` is ``(m_low32 + i * (m_high32 | 1)) mod 2^32 mod 512``
    of the block. Words are 64-bit little-endian.
    """

    __slots__ = ("blocks", "hashes", "_words")

    def __init__(self, blocks: int, hashes: int, data: bytes) -> None:
        if blocks < 1 or not 1 <= hashes <= 16 or len(data) != blocks * 64:
            raise SnapshotError("the filter's size does not match its data")
        self.blocks = blocks
        self.hashes = hashes
        words = memoryview(bytearray(data)).cast("Q")
        if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
            import array

            swapped = array.array("Q", data)
            swapped.byteswap()
            words = memoryview(bytearray(swapped.tobytes())).cast("Q")
        self._words = words

    @property
    def byte_count(self) -> int:
        return self.blocks * 64

    def _positions(self, h: int) -> Tuple[int, int, int]:
        block = (h * self.blocks) >> 64
        m = (h + 0x9E3779B97F4A7C15) & _MASK64
        m = ((m ^ (m >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        m = ((m ^ (m >> 27)) * 0x94D049BB133111EB) & _MASK64
        m ^= m >> 31
        return block * 8, m & 0xFFFFFFFF, (m >> 32) | 1

    def might_contain_hash(self, h: int) -> bool:
        base, position, step = self._positions(h)
        words = self._words
        for _ in range(self.hashes):
            bit = position & 511
            if not (words[base + (bit >> 6)] >> (bit & 63)) & 1:
                return False
            position += step
        return True

    def add_hash(self, h: int) -> None:
        base, position, step = self._positions(h)
        words = self._words
        for _ in range(self.hashes):
            bit = position & 511
            words[base + (bit >> 6)] |= 1 << (bit & 63)
            position += step

    def might_contain(self, jti: str) -> bool:
        """Whether ``jti`` may have been added: ``False`` is certain."""
        return self.might_contain_hash(xxhash.xxh64_intdigest(jti.encode("utf-8", "surrogatepass")))

    def add(self, jti: str) -> None:
        self.add_hash(xxhash.xxh64_intdigest(jti.encode("utf-8", "surrogatepass")))


@dataclass(frozen=True)
class Cutoff:
    """Tokens whose ``claim`` equals ``value`` and whose ``iat`` is at or before ``before``."""

    claim: str
    value: str
    before: int
    expires_at: int


@dataclass
class Snapshot:
    version: int
    created_at: int
    cursor: str
    revocations: int
    filter: BloomFilter
    cutoffs: List[Cutoff] = field(default_factory=list)
    key_blocks: List[str] = field(default_factory=list)


class _Reader:
    __slots__ = ("data", "offset")

    def __init__(self, data: memoryview, offset: int) -> None:
        self.data = data
        self.offset = offset

    def integer(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if len(self.data) - self.offset < size:
            raise SnapshotError(f"truncated at byte {self.offset}")
        (value,) = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += size
        return int(value)

    def string(self) -> str:
        length = self.integer("<I")
        if len(self.data) - self.offset < length:
            raise SnapshotError(f"truncated at byte {self.offset}")
        raw = bytes(self.data[self.offset : self.offset + length])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SnapshotError(f"a string at byte {self.offset} is not UTF-8") from None
        self.offset += length
        return text


def decode_snapshot(data: bytes) -> Snapshot:
    """Reads a snapshot, refusing (with :class:`SnapshotError`, never another exception) bytes
    that are truncated, corrupted, of another version or hash, or whose sizes do not add up."""
    view = memoryview(data)
    if len(view) < 16:
        raise SnapshotError(f"truncated: {len(view)} bytes")
    if bytes(view[0:4]) != _MAGIC:
        raise SnapshotError("not a Revoke snapshot (bad magic)")
    version = view[4]
    if version not in _READABLE_VERSIONS:
        raise SnapshotError(f"snapshot version {version}; this client reads versions 1 to 2")
    body = view[: len(view) - 8]
    (stored,) = struct.unpack_from("<Q", view, len(view) - 8)
    if xxhash.xxh64_intdigest(body, seed=_CHECKSUM_SEED) != stored:
        raise SnapshotError("corrupted (checksum mismatch)")
    if view[5] != _HASH_XXH64:
        raise SnapshotError(f"unknown hash {view[5]}")
    hashes = view[6]
    if not 1 <= hashes <= 16:
        raise SnapshotError(f"bad number of hashes {hashes}")

    reader = _Reader(body, 8)
    created_at = reader.integer("<q")
    revocations = reader.integer("<Q")
    blocks = reader.integer("<Q")
    cutoff_count = reader.integer("<I")
    cursor = reader.string()
    if cutoff_count > len(body) // 24:
        raise SnapshotError(f"bad cutoff count {cutoff_count}")
    cutoffs = []
    for _ in range(cutoff_count):
        claim = reader.string()
        value = reader.string()
        before = reader.integer("<q")
        expires_at = reader.integer("<q")
        cutoffs.append(Cutoff(claim, value, before, expires_at))
    key_blocks = []
    if version >= 2:
        count = reader.integer("<I")
        if count > len(body) // 4:
            raise SnapshotError(f"bad key block count {count}")
        key_blocks = [reader.string() for _ in range(count)]
    reader.offset += (64 - (reader.offset + 4) % 64) % 64
    if reader.integer("<I") != _MARKER:
        raise SnapshotError("the filter marker is missing")
    if not (1 <= blocks <= len(body) // 64 and reader.offset + blocks * 64 == len(body)):
        raise SnapshotError("the filter's size does not match the data")
    if revocations > _INT64_MAX:
        raise SnapshotError("bad revocation count")
    bloom = BloomFilter(blocks, hashes, bytes(body[reader.offset :]))
    return Snapshot(version, created_at, cursor, revocations, bloom, cutoffs, key_blocks)
