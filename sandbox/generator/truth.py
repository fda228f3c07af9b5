"""The ground truth a correct pipeline must reproduce, read off the outcomes by construction.

Per-record outcomes come from `base.py` and `scenarios.py`; here they are only selected (D1:
the latest version at an epoch, withdrawn ones gone) and aggregated (the hours bank's R1/R2
arithmetic and the D4 counts), never derived by applying the rules.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipelines.rules.config import RulesConfig
from schemas.ledger import COMPLETION_DTYPES, HOURS_BANK_DTYPES, RECONCILIATION_DTYPES
from schemas.vocabulary import PROFESSIONAL, PUBLIC

COMPLETION_COLUMNS: tuple[str, ...] = tuple(
    c for c in COMPLETION_DTYPES if c not in ("first_seen_at", "last_seen_at")
)
RECONCILIATION_COLUMNS: dict[str, str] = {
    c: t for c, t in RECONCILIATION_DTYPES.items() if c != "run_id"
}
DEFAULTS = RulesConfig()
STATE_COUNTS: tuple[str, ...] = ("credited", "merged", "not_credited", "quarantined")


def run_ends(values: np.ndarray) -> np.ndarray:
    """True at the last element of each run of equal values."""
    return np.append(values[1:] != values[:-1], True)[: len(values)]


def ledger(
    records: pd.DataFrame,
    outcomes: pd.DataFrame,
    epoch: int,
    years: Iterable[int] | None,
) -> pd.DataFrame:
    """Outcomes of the latest version of every record pulled at `epoch` in `years` (D1), in
    record-key order (the order of `records`, whose versions follow each other)."""
    pulled = records["epoch"].to_numpy() <= epoch
    if years is not None:
        pulled &= records["pull_year"].isin(list(years)).to_numpy()
    rows = np.flatnonzero(pulled)
    rec = outcomes["rec"].to_numpy()[rows]
    kept = rows[run_ends(rec) & ~records["withdrawn"].to_numpy()[rows]]
    return outcomes.iloc[kept].reset_index(drop=True)


def hours_bank(
    ledger: pd.DataFrame, people: pd.DataFrame, config: RulesConfig = DEFAULTS
) -> pd.DataFrame:
    """R1/R2 per person and credited year, from non-quarantined records (docs/decisions.md):
    name, employer and city from the latest record (completed_at, platform, source_key)."""
    live = np.flatnonzero(
        (ledger["state"] != "quarantined").to_numpy() & ledger["credited_year"].notna().to_numpy()
    )
    person, ids = pd.factorize(ledger["id_number"].iloc[live])
    year = ledger["credited_year"].to_numpy(dtype="float64", na_value=np.nan)[live]
    keys, group = np.unique(person * 10_000 + year.astype(np.int64), return_inverse=True)
    completed = ledger["completed_at"].dt.tz_convert(None).to_numpy()[live]
    # the ledger is in record-key (platform, source_key) order, so ties keep that order
    order = np.lexsort((np.arange(len(live)), completed, group))
    last = order[run_ends(group[order])]
    rows = live[last]
    state = ledger["state"].to_numpy(dtype=object)[live]
    credited = np.where(state == "credited", ledger["hours_credited"].to_numpy()[live], 0.0)
    subject = ledger["subject"].to_numpy(dtype=object)[live]
    makeup = ledger["makeup"].to_numpy()[live]

    def total(weights: np.ndarray) -> np.ndarray:
        return np.round(np.bincount(group, weights=weights, minlength=len(keys)), 1)

    public = total(np.where(subject == PUBLIC, credited, 0.0))
    professional = total(np.where(subject == PROFESSIONAL, credited, 0.0))
    bank = pd.DataFrame(
        {
            "id_number": pd.Series(np.asarray(ids, dtype=object)[keys // 10_000], dtype="str"),
            "year": keys % 10_000,
            "name": ledger["name"].iloc[rows].to_numpy(),
            "employer": ledger["employer"].iloc[rows].to_numpy(),
            "city": ledger["city"].iloc[rows].to_numpy(),
            "public_hours": public,
            "professional_hours": professional,
            "total_hours": np.round(public + professional, 1),
            "makeup_hours": total(np.where(makeup, credited, 0.0)),
            "public_short": np.round(np.clip(config.public_required - public, 0, None), 1),
            "professional_short": np.round(
                np.clip(config.professional_required - professional, 0, None), 1
            ),
        }
    )
    bank["compliant"] = (
        (bank["public_short"] == 0)
        & (bank["professional_short"] == 0)
        & (bank["total_hours"] >= config.annual_required)
    )
    kind = bank["id_number"].map(people.set_index("id_number")["employer_type"])
    exempt = (
        bank["year"].isin(config.enterprise_exempt_years)
        & (bank["city"] == config.enterprise_exempt_city)
        & (kind == "enterprise")
    )
    bank["binding"] = ~exempt
    bank = bank.sort_values(["id_number", "year"]).reset_index(drop=True)
    return bank[list(HOURS_BANK_DTYPES)].astype(HOURS_BANK_DTYPES)


def reconciliation(ledger: pd.DataFrame) -> pd.DataFrame:
    """D4 counts per platform and year (credited year, else the pull year)."""
    dated = (ledger["state"] != "quarantined") & ledger["credited_year"].notna()
    year = ledger["credited_year"].where(dated, ledger["pull_year"]).astype("int64")
    counts = pd.crosstab([ledger["platform"], year.rename("year")], ledger["state"])
    counts = counts.reindex(columns=list(STATE_COUNTS), fill_value=0)
    counts["raw"] = counts.sum(axis=1)
    frame = counts.reset_index().rename_axis(columns=None)
    return frame[list(RECONCILIATION_COLUMNS)].astype(RECONCILIATION_COLUMNS)


def name_conflicts(ledger: pd.DataFrame) -> pd.DataFrame:
    """C2: IDs seen with more than one cleaned name, the names sorted and joined by "|"."""
    pairs = ledger.loc[ledger["id_number"].notna(), ["id_number", "name"]].drop_duplicates()
    shared = pairs[pairs["id_number"].duplicated(keep=False)].sort_values(["id_number", "name"])
    names = shared.groupby("id_number")["name"].agg("|".join)
    return pd.DataFrame(
        {"id_number": names.index.to_numpy(dtype=str), "names": names.to_numpy(dtype=str)}
    ).astype("str")
