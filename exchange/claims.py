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
from itertools import islice
from typing import Any

import msgpack

__all__ = ["OldClaims", "RestoredClaims", "claim_hash", "pack_claims"]

_MISSING = object()


def claim_hash(key: Any) -> int:
    if type(key) is str:
        data = b"s" + key.encode("utf-8", "surrogatepass")
    elif type(key) is int:
        data = b"i" + str(key).encode()
    else:
        try:
            data = b"p" + msgpack.packb(key)
        except (TypeError, ValueError, OverflowError):
            data = b"r" + repr(key).encode("utf-8", "surrogatepass")
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


def pack_claims(
    claims: dict[Any, int], previous: list[Any] | None = None
) -> tuple[bytes, bytes, list[Any]]:
    """An account's claims (a dict, or `RestoredClaims`) as sorted hashes, order ids, and a
    note of what was hashed.

    Hashing millions of ids took most of a snapshot's time, and between two snapshots only the
    ids claimed since are new: the engine only ever adds claims, and a dict keeps insertion
    order. So with `previous` (this account's entry of the last snapshot: hashes, order ids,
    note) only the dict's entries past the ones hashed then are hashed now, provided the dict
    is still the one that was hashed (same first and last hashed ids, same restored part).
    """
    import numpy as np

    n = len(claims)
    old = getattr(claims, "old", None)
    old_len = len(old) if old is not None else 0
    first = claim_hash(next(iter(claims))) if n else 0
    skip = 0
    base_h = base_o = None
    if previous is not None:
        p_hashes, p_oids, (p_n, p_first, p_last, p_old) = previous
        if p_old == old_len and p_n <= n and (p_n == 0 or (
            p_first == first and claim_hash(next(islice(claims, p_n - 1, None))) == p_last
        )):  # fmt: skip
            skip = p_n
            base_h = np.frombuffer(p_hashes, dtype=np.uint64)
            base_o = np.frombuffer(p_oids, dtype=np.int64)
    if base_h is None and old_len:
        base_h = np.frombuffer(old.hashes, dtype=np.uint64)  # type: ignore[union-attr]
        base_o = np.frombuffer(old.oids, dtype=np.int64)  # type: ignore[union-attr]
    hashes = np.fromiter(
        (claim_hash(k) for k in islice(claims, skip, None)), dtype=np.uint64, count=n - skip
    )
    oids = np.fromiter(islice(claims.values(), skip, None), dtype=np.int64, count=n - skip)
    order = np.argsort(hashes, kind="stable")
    hashes, oids = hashes[order], oids[order]
    if base_h is not None and len(base_h):
        at = np.searchsorted(base_h, hashes)
        hashes = np.insert(base_h, at, hashes)
        oids = np.insert(base_o, at, oids)
    last = claim_hash(next(islice(claims, n - 1, None))) if n else 0
    return hashes.tobytes(), oids.tobytes(), [n, first, last, old_len]
