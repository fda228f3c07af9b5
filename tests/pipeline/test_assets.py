"""The raw assets store pages in large transactions without losing a record or a watermark."""

import pandas as pd

from connectors.core import Batch
from pipelines.assets.raw import coalesce
from schemas.raw import empty


def pages(sizes: list[int]) -> list[Batch]:
    batches, start = [], 0
    for page, size in enumerate(sizes):
        records = empty().reindex(range(size))
        records["source_key"] = [str(start + i) for i in range(size)]
        batches.append(Batch(records, {"page": page}))
        start += size
    return batches


def test_pages_are_joined_until_the_row_limit_with_the_last_pages_watermark() -> None:
    joined = list(coalesce(iter(pages([500] * 5)), rows=1_200))
    assert [len(b.records) for b in joined] == [1_500, 1_000]
    assert [b.watermark for b in joined] == [{"page": 2}, {"page": 4}]


def test_joining_keeps_every_record_once() -> None:
    joined = pd.concat([b.records for b in coalesce(iter(pages([7, 0, 5, 9])), rows=10)])
    assert sorted(joined["source_key"], key=int) == [str(i) for i in range(21)]


def test_a_trailing_empty_page_still_moves_the_watermark() -> None:
    joined = list(coalesce(iter(pages([3, 0])), rows=10))
    assert joined[-1].watermark == {"page": 1}
    assert len(joined[-1].records) == 3
