"""Plausibility of a pull, judged before any of it is stored (issue 13, PLATFORMS.md huaxue).

A response can parse and still be nonsense: a huaxue snapshot with its header and no rows reads
as "every certificate of the year withdrawn". The raw step passes its batches through `guarded`,
which refuses a pull that would withdraw more than a share of what the partition held, or that
returns nothing where the partition held thousands, unless an operator accepts it on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from connectors.core import Batch, PullRequest
from schemas.platforms import PlatformSpec

SNAPSHOT_FAMILIES = frozenset({"huaxue"})
"""Families whose pull is a full snapshot: a row missing from it is a withdrawal."""
WHOLE_YEAR_FAMILIES = frozenset({"huaxue", "spa"})
"""Families that read the whole year on every pull, whatever the watermark says."""
WITHDRAWAL_SHARE = 0.2
EMPTY_FLOOR = 1_000


@dataclass(frozen=True)
class Limits:
    """What a pull may do before it is refused.

    `withdrawal_share`: a snapshot may withdraw at most this share of the records the partition
    held. `empty_floor`: a pull of the whole window may come back empty only where the partition
    held fewer live records than this. `accept`: the operator accepts both on purpose.
    """

    withdrawal_share: float = WITHDRAWAL_SHARE
    empty_floor: int = EMPTY_FLOOR
    accept: bool = False


class ImplausiblePull(RuntimeError):
    """A pull that parsed but is not believable; nothing of it was stored."""

    def __init__(self, platform: str, year: int, saw: str) -> None:
        self.platform, self.year = platform, year
        super().__init__(
            f"[{platform}] {year}: {saw}; nothing of this pull was stored and the outputs are as "
            f"they were. If the platform really means it, accept it on purpose: "
            f"`xueshi sync --year {year} --platform {platform} --accept-withdrawals {platform}` "
            f"(or in the launchpad, run config ops: raw_{platform}: config: "
            f"accept_withdrawals: true)"
        )


def whole_window(spec: PlatformSpec, request: PullRequest) -> bool:
    """Whether the pull reads the partition's whole window (so its size compares with the store)."""
    return spec.family in WHOLE_YEAR_FAMILIES or request.watermark is None


def guarded(
    spec: PlatformSpec,
    request: PullRequest,
    batches: Iterator[Batch],
    *,
    held: int,
    limits: Limits,
) -> Iterator[Batch]:
    """`batches`, refused with `ImplausiblePull` before the first implausible one is yielded.

    `held` is how many live records the partition held before the pull (`Store.live_count`,
    or its `known_keys` where the pull reads them).
    Batches without records (watermark moves only) are held back while nothing has come yet,
    so a refused empty pull moves no watermark.
    """
    watch_empty = not limits.accept and whole_window(spec, request) and held >= limits.empty_floor
    pending: list[Batch] = []
    seen = 0
    for batch in batches:
        withdrawn = int(batch.records["withdrawn"].sum())
        if (
            not limits.accept
            and spec.family in SNAPSHOT_FAMILIES
            and withdrawn > limits.withdrawal_share * held
        ):
            raise ImplausiblePull(
                spec.code,
                request.year,
                f"the snapshot would withdraw {withdrawn} of the {held} records the previous one "
                f"held ({withdrawn / max(held, 1):.0%}, more than the "
                f"{limits.withdrawal_share:.0%} allowed)",
            )
        seen += len(batch.records) - withdrawn
        if watch_empty and seen == 0:
            pending.append(batch)
            continue
        yield from pending
        pending.clear()
        yield batch
    if pending or (watch_empty and seen == 0):
        raise ImplausiblePull(
            spec.code,
            request.year,
            f"the pull of the whole {request.year} window returned no records where the "
            f"database holds {held} (a platform in trouble can answer with an empty export)",
        )
