"""Person shards: the unit of work below the raw records.

Every rule works inside one person (docs/decisions.md), so the ledger can be computed a group
of people at a time. Each record gets a bucket, 0 to `BUCKETS - 1`, from its person's ID number
in C1's form (`id_shape`), or from its record key when the ID has no such form (those records
are quarantined and tie to nothing). The bucket is stored on the record and on every output
row, so a shard, a contiguous range of buckets, is one indexed range query on either engine,
and the number of shards can change from run to run without moving a record.

The hash is FNV-1a over the 18 characters, written out in NumPy rather than borrowed from a
library, so that buckets stored years ago still match the code that reads them.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.rules.clean import id_shape

BUCKETS = 4096
"""Fixed for the life of a database: shards are ranges of these."""
SHARD_RECORDS = 250_000
"""Records per shard when the count is chosen from the data: bounds the rules' peak memory."""
MAX_SHARDS = BUCKETS

_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)


@dataclass(frozen=True)
class Shard:
    """Buckets `first` to `last`, both included: number `index` of `count` shards."""

    index: int
    count: int
    first: int
    last: int

    @property
    def label(self) -> str:
        return f"{self.index + 1}/{self.count}"


def shards(count: int) -> tuple[Shard, ...]:
    """`count` shards of (nearly) equal bucket ranges covering every bucket."""
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"shard count {count} is outside 1–{MAX_SHARDS}")
    edges = [i * BUCKETS // count for i in range(count + 1)]
    return tuple(Shard(i, count, edges[i], edges[i + 1] - 1) for i in range(count))


def count_for(records: int, per_shard: int = SHARD_RECORDS) -> int:
    """How many shards hold `records` at about `per_shard` each (at least one)."""
    return min(max(math.ceil(records / per_shard), 1), MAX_SHARDS)


def id_buckets(ids: pd.Series) -> np.ndarray:
    """Buckets of 18-character ID numbers in C1's form (what the ledger's `id_number` holds)."""
    if ids.empty:
        return np.zeros(0, dtype=np.int64)
    data = "".join(ids.astype("str").tolist()).encode("ascii")
    matrix = np.frombuffer(data, dtype=np.uint8).reshape(-1, 18).astype(np.uint64)
    digest = np.full(len(ids), _FNV_OFFSET, dtype=np.uint64)
    for column in matrix.T:
        digest = (digest ^ column) * _FNV_PRIME
    digest ^= digest >> np.uint64(29)
    return (digest % np.uint64(BUCKETS)).astype(np.int64)


def person_buckets(raw_ids: pd.Series, record_keys: pd.Series) -> np.ndarray:
    """Each record's bucket: its person's, or its own when the ID number has no C1 form."""
    shaped = id_shape(raw_ids)
    has_shape = shaped.notna().to_numpy()
    buckets = np.empty(len(raw_ids), dtype=np.int64)
    buckets[has_shape] = id_buckets(shaped[has_shape])
    loose = record_keys[~has_shape]
    codes, uniques = pd.factorize(loose)
    own = np.array([zlib.crc32(k.encode()) % BUCKETS for k in uniques], dtype=np.int64)
    buckets[~has_shape] = own[codes] if len(loose) else own[:0]
    return buckets
