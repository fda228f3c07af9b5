"""Bringing the outputs up to date: the whole history once, then only the people who changed.

Every rule of RULES.md works inside one person: D2 and D3 compare a person's own records, R7 a
person's day, R1/R2 a person's year, C2 the names of one ID number. So when a night stores new
or changed records, only their people's outputs can change: the ledger rows, bank rows and name
conflicts of everyone else stay as they are. A refresh reads the records whose content changed
since the outputs were computed (`raw_record.batch_seq`; a record merely sent again only moves
its ledger row's `last_seen_at`), finds their people (new ID numbers after C1 and the ones
the ledger had for those records), reads every record of those people and recomputes them.

A full refresh runs instead when there are no outputs yet, when the rules changed (their
source, their numbers or the employer register: `rules_fingerprint`), when the changes are a
large share of the history, or when asked. It works a shard of people at a time
(`pipelines.shards`), each in its own transaction, into empty tables beside the outputs;
after the last one these replace the outputs, indexed once, and the state is recorded.
R12 judges dates against the run's date, so records quarantined for a date out of range are
re-judged by every refresh.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib import resources

import numpy as np
import pandas as pd

from pipelines.memory import release_memory
from pipelines.rules import RulesResult, apply_rules, completion_ledger, run_time
from pipelines.rules.bank import EmployerTypes
from pipelines.rules.clean import name_conflicts
from pipelines.rules.config import RulesConfig
from pipelines.rules.credit import normalized_certificate
from pipelines.shards import SHARD_RECORDS, Shard, count_for, shards
from pipelines.store import LedgerState, Scope, Store
from schemas.raw import TZ

FULL_SHARE = 0.25
"""Above this share of changed records, reading everything beats looking people up."""


def rules_fingerprint(
    config: RulesConfig | None = None, employer_types: EmployerTypes | None = None
) -> str:
    """A digest of everything the outputs depend on besides the records: the rules' source,
    their numbers and the employer register (R2)."""
    digest = hashlib.sha256()
    for source in sorted(resources.files("pipelines.rules").iterdir(), key=lambda p: p.name):
        if source.name.endswith(".py"):
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
    config = config or RulesConfig()
    numbers = {f.name: _canonical(getattr(config, f.name)) for f in fields(config)}
    digest.update(json.dumps(numbers, sort_keys=True, ensure_ascii=False).encode())
    if employer_types is not None:
        register = (
            employer_types
            if isinstance(employer_types, pd.DataFrame)
            else pd.DataFrame(sorted(employer_types.items()))
        )
        digest.update(pd.util.hash_pandas_object(register, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _canonical(value: object) -> object:
    """Sets sorted and mappings as sorted pairs, so the digest does not depend on hash order."""
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, Mapping):
        return sorted(value.items())
    return value


LINK_COLUMNS: tuple[str, ...] = ("id_number", "completed_at", "credited_year", "certificate_no")
"""The ledger columns that tie a record to others of its person (see `ties`)."""


def ties(rows: pd.DataFrame) -> pd.DataFrame:
    """What ties each record to other records of its person: the year of its completion day
    (R7 caps a day), its credited year (D3 and the bank work per year) and its certificate (D2
    across years). A record without an ID number is tied to nothing but itself."""
    person = rows["id_number"].astype("str")
    completed = rows["completed_at"].dt.tz_convert(TZ).dt.year.astype("Int64").astype("str")
    credited = rows["credited_year"].astype("Int64").astype("str")
    certificate = normalized_certificate(rows["certificate_no"].astype("str"))
    return pd.DataFrame(
        {
            "completed": person + YEAR + completed,
            "credited": person + YEAR + credited,
            "certificate": person + "|c" + certificate.where(certificate.ne("")),
        },
        index=rows.index,
    )


YEAR = "|y"


def affected(seeds: pd.DataFrame, ledger: pd.DataFrame) -> tuple[pd.Series, frozenset[str]]:
    """Which `ledger` rows share a tie with the `seeds`, directly or through other rows: the
    records whose outcome may change. Returns their positions in `ledger` and every tie.

    Ties are factorized to integers once, so each round of the closure is a NumPy look-up.
    """
    links = ties(ledger)
    values = pd.concat([*(links[c] for c in links), *(ties(seeds)[c] for c in links)])
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    codes[codes < 0] = len(uniques)  # no tie: a slot that is never found
    width = len(links.columns)
    link_codes = codes[: width * len(links)].reshape(width, len(links))
    found = np.zeros(len(uniques) + 1, dtype=bool)
    found[codes[width * len(links) :]] = True
    found[-1] = False
    taken = np.zeros(len(links), dtype=bool)
    while True:
        hit = found[link_codes].any(axis=0) & ~taken
        if not hit.any():
            return pd.Series(taken, index=ledger.index), frozenset(uniques[found[:-1]])
        taken |= hit
        found[link_codes[:, hit]] = True
        found[-1] = False


def person_years(found: frozenset[str]) -> pd.DataFrame:
    """The (id_number, year) pairs among ties: the hours-bank rows a refresh rewrites."""
    years = pd.Series(sorted(t for t in found if YEAR in t), dtype="str").str.split(
        YEAR, n=1, regex=False
    )
    return pd.DataFrame(
        {
            "id_number": years.str[0].astype("str"),
            "year": years.str[1].astype("int64"),
        }
    )


@dataclass(frozen=True)
class RefreshPlan:
    """What a refresh will do, decided before any rule runs: fold the batches `first < n <=
    last` into the outputs, either for the people they changed (`incremental`) or for every
    person, one shard at a time (`full`). Small and picklable: it travels to the shard steps."""

    mode: str  # "full" or "incremental"
    state: LedgerState
    batches: tuple[int, int]
    records_changed: int
    as_of: pd.Timestamp
    shards: tuple[Shard, ...] = ()


@dataclass(frozen=True)
class Refresh:
    """What a refresh did. `result` holds the rules' frames of an incremental refresh (a
    night's people); a full refresh keeps none, since it never holds more than a shard."""

    mode: str
    batches: tuple[int, int]
    records_changed: int
    records_read: int
    people: int
    result: RulesResult | None


def plan_refresh(
    store: Store,
    fingerprint: str,
    *,
    full: bool = False,
    full_share: float = FULL_SHARE,
    shard_count: int | None = None,
    shard_records: int = SHARD_RECORDS,
) -> RefreshPlan:
    """Full when asked, when there are no outputs yet, when the rules changed or when the
    changes are over `full_share` of the records the ledger holds; else incremental. A full
    refresh has `shard_count` shards, or one per `shard_records` stored records (counted only
    then: a count of every stored record grows with the history, a night must not)."""
    last = store.last_batch()
    state = store.ledger_state()
    as_of = run_time()
    new_state = LedgerState(last, fingerprint)
    if not (full or state is None or state.fingerprint != fingerprint):
        changed = store.changed_count((state.batch, last))
        held = int(store.state_counts()["raw"].sum())  # the ledger's kept counts, not a scan
        if changed <= full_share * max(held, 1):
            return RefreshPlan("incremental", new_state, (state.batch, last), changed, as_of)
    live = int(store.live_raw_counts().sum())
    first = 0 if state is None or state.fingerprint != fingerprint else state.batch
    count = shard_count or count_for(live, shard_records)
    return RefreshPlan("full", new_state, (first, last), live, as_of, shards(count))


def refresh_shard(
    store: Store,
    plan: RefreshPlan,
    shard: Shard,
    *,
    config: RulesConfig | None = None,
    employer_types: EmployerTypes | None = None,
) -> RulesResult:
    """Recompute every person of one shard and replace their rows, in one transaction."""
    raw = store.raw_records(shard=shard, payload=False)
    result = apply_rules(raw, config=config, as_of=plan.as_of, employer_types=employer_types)
    completion = with_buckets(result.completion, raw)
    store.replace_outputs(completion, result.hours_bank, result.name_conflicts, scope=shard)
    return result


def refresh_changes(
    store: Store,
    plan: RefreshPlan,
    *,
    config: RulesConfig | None = None,
    employer_types: EmployerTypes | None = None,
) -> Refresh:
    """Recompute the people the plan's batches changed (and everything tied to their records),
    and record the plan's state in the same transaction."""
    config = config or RulesConfig()
    changed = store.raw_records(batches=plan.batches, payload=False)
    before = store.ledger_rows(LINK_COLUMNS, keys=changed["record_key"], time_bound=True)
    seeds_raw = pd.concat(
        [changed, store.raw_records(keys=before["record_key"], payload=False)]
    ).drop_duplicates("record_key")
    now = completion_ledger(seeds_raw, config=config, as_of=plan.as_of)
    seeds = pd.concat([before, now[["record_key", *LINK_COLUMNS]]], ignore_index=True)
    people = frozenset(seeds["id_number"].dropna())
    theirs = store.ledger_rows((*LINK_COLUMNS, "name"), people=people)
    taken, found = affected(seeds, theirs)
    keys = frozenset(seeds_raw["record_key"]) | frozenset(theirs.loc[taken, "record_key"])
    raw = store.raw_records(keys=keys, payload=False)
    result = apply_rules(raw, config=config, as_of=plan.as_of, employer_types=employer_types)
    names = pd.concat(
        [
            theirs.loc[~theirs["record_key"].isin(keys), ["record_key", "id_number", "name"]],
            result.completion[["record_key", "id_number", "name"]],
        ]
    )
    store.replace_outputs(
        with_buckets(result.completion, raw),
        result.hours_bank,
        name_conflicts(names),
        scope=Scope(keys, person_years(found), people),
        state=plan.state,
        sightings=plan.batches,
    )
    return Refresh("incremental", plan.batches, len(changed), len(raw), len(people), result)


def with_buckets(completion: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """Ledger rows with their stored record's bucket (`pipelines.shards`)."""
    rows = pd.Index(raw["record_key"]).get_indexer(completion["record_key"])
    return completion.assign(person_bucket=raw["person_bucket"].to_numpy()[rows])


def refresh_outputs(
    store: Store,
    *,
    config: RulesConfig | None = None,
    employer_types: EmployerTypes | None = None,
    full: bool = False,
    full_share: float = FULL_SHARE,
    shard_count: int | None = None,
) -> Refresh:
    """Fold every stored batch into the ledger, the bank and the name conflicts, in this
    process (the Dagster ledger runs the same steps, a shard per step)."""
    plan = plan_refresh(
        store,
        rules_fingerprint(config, employer_types),
        full=full,
        full_share=full_share,
        shard_count=shard_count,
    )
    if plan.mode == "incremental":
        return refresh_changes(store, plan, config=config, employer_types=employer_types)
    store.begin_full()
    people = 0
    for shard in plan.shards:
        result = refresh_shard(store, plan, shard, config=config, employer_types=employer_types)
        people += int(result.completion["id_number"].nunique())
        del result
        release_memory()
    store.finish_full(plan.state)
    return Refresh("full", plan.batches, plan.records_changed, plan.records_changed, people, None)
