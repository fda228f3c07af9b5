"""The seeded data generator: every platform record version, and the ground truth RULES.md implies.

`generate(records, seed)` builds a world of people (people.py), ordinary learning (base.py) and
hand-written rule scenarios with their outcomes (scenarios.py), renders them as the platforms
hold them (wire.py), and answers `truth()` by selecting and aggregating those outcomes
(truth.py). The sandbox serves `Dataset.served()`; tests and benchmarks compare a pipeline's
ledger, hours bank and reconciliation with `Dataset.truth()`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from sandbox.generator import truth as _truth
from sandbox.generator.base import base_people, base_records, catalogue, person_counts
from sandbox.generator.people import make_people
from sandbox.generator.scenarios import copies, expand
from sandbox.generator.wire import finish, stack
from sandbox.profiles import PRODUCTION, Catalogue
from schemas.platforms import PlatformSpec
from schemas.raw import TZ
from schemas.vocabulary import FIRST_YEAR

PEOPLE_COLUMNS: tuple[str, ...] = (
    "id_number",
    "name",
    "birth_date",
    "gender",
    "city",
    "employer",
    "employer_type",
)


@dataclass(frozen=True)
class Truth:
    """What a correct pipeline produces (PROVINCIAL.md tables, without run metadata)."""

    completion: pd.DataFrame
    hours_bank: pd.DataFrame
    reconciliation: pd.DataFrame
    name_conflicts: pd.DataFrame


@dataclass(frozen=True, eq=False)
class Dataset:
    """Every version of every platform record (`records`, ordered by record key, then version,
    so the latest version of a record is its last row), the people behind them, the seed.

    `outcomes` holds, row for row with `records`, each version's true outcome; it is what
    `truth()` selects from and stays out of the platforms' view.
    """

    records: pd.DataFrame
    people: pd.DataFrame
    seed: int
    outcomes: pd.DataFrame | None = field(default=None, repr=False)
    platforms: Catalogue = field(default=PRODUCTION, repr=False)

    def served(self, platform: str, epoch: int = 0) -> pd.DataFrame:
        """The platform's state at `epoch`: each record's latest version; snapshot platforms
        (huaxue) drop withdrawn records, the others keep them (treewises serves them revoked)."""
        rows = self.records[
            (self.records["platform"] == platform) & (self.records["epoch"] <= epoch)
        ]
        latest = rows.drop_duplicates("record_key", keep="last")
        if self.platforms[platform].facts.snapshot:
            latest = latest[~latest["withdrawn"]]
        return latest.reset_index(drop=True)

    def truth(self, epoch: int = 0, years: Iterable[int] | None = None) -> Truth:
        """The ledger, hours bank, reconciliation and name conflicts after pulling `years`
        (None: all) at `epoch`."""
        if self.outcomes is None:
            raise ValueError("this dataset was built without outcomes; use generate()")
        ledger = _truth.ledger(self.records, self.outcomes, epoch, years)
        return Truth(
            completion=ledger[list(_truth.COMPLETION_COLUMNS)],
            hours_bank=_truth.hours_bank(ledger, self.people),
            reconciliation=_truth.reconciliation(ledger),
            name_conflicts=_truth.name_conflicts(ledger),
        )


def generate(
    records: int = 2_000,
    seed: int = 0,
    years: tuple[int, int] = (2017, 2022),
    platforms: Mapping[str, PlatformSpec] | None = None,
) -> Dataset:
    """`records` record versions (or the scenarios' own count, if larger): base records dated in
    `years`, scenarios on the dates RULES.md names (2016–2022, and a mistyped 2202).

    `platforms` is the catalogue to simulate (production's by default): a test can add a
    platform by its spec alone."""
    this_year = dt.datetime.now(ZoneInfo(TZ)).year
    if not FIRST_YEAR <= years[0] <= years[1] < this_year:
        raise ValueError(f"years must lie within {FIRST_YEAR}..{this_year - 1}: {years}")
    served = PRODUCTION if platforms is None else Catalogue(platforms)
    rng = np.random.default_rng(seed)
    courses = catalogue(rng, served)
    wants, scenario_spec = expand(courses, copies(records), served)
    counts = person_counts(rng, records - len(scenario_spec))
    people = make_people(rng, pd.concat([base_people(rng, len(counts)), wants], ignore_index=True))
    spec = base_records(rng, counts, people.iloc[: len(counts)], courses, years, served)
    scenario_spec["person"] += len(counts)
    scenario_spec["rec"] += len(spec)
    scenario_spec["t_merged_rec"] += len(spec)
    frame, outcomes = finish(stack(spec, scenario_spec, served), people, served)
    return Dataset(
        records=frame,
        people=people[list(PEOPLE_COLUMNS)],
        seed=seed,
        outcomes=outcomes,
        platforms=served,
    )


__all__ = ["Dataset", "Truth", "generate"]
