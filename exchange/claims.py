"""Client order id claims restored from a snapshot, kept compact.

The engine refuses a client order id an account already used (for the day), so it remembers
every one: after ten million messages that is millions of strings and ints in dicts, most of a
gigabyte, nearly all of them ids of orders long closed. A snapshot stores them as 8-byte hashes
with their order ids, and a restarted exchange keeps them that way: `RestoredClaims` is the
account's dict for ids claimed since the restart, backed by a sorted array of the older ones.

The hash is an unkeyed BLAKE2b of the id, 64 bits: two different ids of one account collide
with probability about n^2 / 2^65 (1e-6 for six million ids), and a collision can only make a
new id look used (a `duplicate_client_order_id` reject), never match the wrong open order,
because open orders are looked up through the engine's own table.
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left
from typing import Any

import msgpack

__all__ = ["OldClaims", "RestoredClaims", "claim_hash", "pack_claims"]

_MISSING = object()


def claim_hash(key: Any) -> int:
    data = b"s" + key.encode() if type(key) is str else b"p" + msgpack.packb(key)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


class OldClaims:
    """Sorted claim hashes and their order ids (8 + 8 bytes a claim)."""

    __slots__ = ("hashes", "oids")

    def __init__(self, hashes: bytes = b"", oids: bytes = b"") -> None:
        self.hashes = array("Q")
        self.hashes.frombytes(hashes)
        self.oids = array("q")
        self.oids.frombytes(oids)

    def __len__(self) -> int:
        return len(self.hashes)

    def get(self, key: Any) -> int | None:
        h = claim_hash(key)
        hashes = self.hashes
        i = bisect_left(hashes, h)
        if i < len(hashes) and hashes[i] == h:
            return self.oids[i]
        return None


class RestoredClaims(dict):
    """An account's claims: new ones in the dict, those from before the restart in `old`.

    Only the two methods the engine calls are overridden (`setdefault` to claim, `get` to
    resolve a cancel or replace by client order id).
    """

    __slots__ = ("old",)

    def __init__(self, old: OldClaims) -> None:
        super().__init__()
        self.old = old

    def setdefault(self, key: Any, default: Any = None) -> Any:
        got = dict.get(self, key, _MISSING)  # (raises TypeError for an unhashable id, as dict)
        if got is not _MISSING:
            return got
        old = self.old.get(key)
        if old is not None:
            return old
        dict.__setitem__(self, key, default)
        return default

    def get(self, key: Any, default: Any = None) -> Any:
        got = dict.get(self, key, _MISSING)
        if got is not _MISSING:
            return got
        old = self.old.get(key)
        return default if old is None else old


def pack_claims(claims: dict[Any, int]) -> tuple[bytes, bytes]:
    """An account's claims (a dict, or `RestoredClaims`) as sorted hashes and order ids."""
    import numpy as np

    n = len(claims)
    hashes = np.fromiter((claim_hash(k) for k in claims), dtype=np.uint64, count=n)
    oids = np.fromiter(claims.values(), dtype=np.int64, count=n)
    old = getattr(claims, "old", None)
    if old is not None and len(old):
        hashes = np.concatenate([hashes, np.frombuffer(old.hashes, dtype=np.uint64)])
        oids = np.concatenate([oids, np.frombuffer(old.oids, dtype=np.int64)])
    order = np.argsort(hashes, kind="stable")
    return hashes[order].tobytes(), oids[order].tobytes()
