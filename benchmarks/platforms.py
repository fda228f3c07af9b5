"""The simulated platforms for the benchmark: a child process serving the generator's data, and
two nights of changes: a realistic one (three days' worth of new records, 0.05% corrections, a
few withdrawals) and the 1% stress model, which the incremental nights have to pick up.

The sandbox runs in its own process rather than a thread of the benchmark: on two cores a
server thread would fight the pipeline for the GIL, and the pipeline's peak RSS would include
the generated dataset. Real platforms are remote, so a separate process is the honest setting.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from datetime import date
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import pandas as pd

from sandbox.generator import Dataset, generate
from sandbox.profiles import PRODUCTION
from schemas.raw import TZ, natural_key

NIGHT_YEAR = 2022  # the generator's data end in 2022: the night syncs the data's last year
TODAY = date(NIGHT_YEAR, 12, 31)
"""The benchmark's clock (`XUESHI_TODAY`): the data's last day, so the nights sync 2022 as
the open year (look-back windows, watermarks) rather than re-pulling an ended year whole."""
LOOKBACK_DAYS = 35  # the date-window families re-pull this many days before their watermark


def overnight_changes(
    dataset: Dataset, fraction: float, seed: int, year: int = NIGHT_YEAR
) -> pd.DataFrame:
    """Record versions that appear overnight, `fraction` of each platform's records.

    Platforms with update times (yx, treewises) publish a new version of old records (a
    corrected exam: passed, score raised) updated in the year's last minutes, after any
    watermark; the others gain late records completed within the look-back of the year's end
    (spa and huaxue pull the whole year anyway). They reuse existing people and courses, so the
    rules see ordinary data, and get new source keys where the platform has no update time.
    """
    rng = np.random.default_rng(seed)
    records = dataset.records
    latest = records.drop_duplicates("record_key", keep="last")
    latest = latest[~latest["withdrawn"] & latest["completed_at"].notna()]
    year_end = pd.Timestamp(year + 1, 1, 1, tz=TZ)
    parts = []
    for platform, rows in latest.groupby("platform", sort=True):
        count = round(fraction * len(rows))
        if count == 0:
            continue
        picked = rows.iloc[np.sort(rng.choice(len(rows), count, replace=False))].copy()
        facts = PRODUCTION[str(platform)].facts
        if facts.updating:
            last = records.loc[records["platform"] == platform, "updated_at"].max()
            span = max(1, int((year_end - last).total_seconds()) - 2)
            offsets = np.sort(rng.integers(1, span, count))
            picked["updated_at"] = last.floor("s") + pd.to_timedelta(offsets, unit="s")
            picked["passed"] = True
            picked["score"] = picked["score"].clip(lower=60.0)
        else:
            days = rng.integers(1, LOOKBACK_DAYS - 2, count)
            completed = year_end - pd.to_timedelta(days, unit="D")
            if facts.timed:
                completed += pd.to_timedelta(rng.integers(8 * 3600, 20 * 3600, count), unit="s")
            picked["completed_at"] = completed
            picked["source_key"] = _new_keys(records, picked, facts.record_ids)
        picked["pull_year"] = year
        picked["epoch"] = 1
        picked["hidden_until_paged"] = False
        picked["record_key"] = picked["platform"] + ":" + picked["source_key"]
        parts.append(picked.drop_duplicates("record_key", keep="last"))
    return pd.concat(parts, ignore_index=True).astype(records.dtypes.to_dict())


def _new_keys(records: pd.DataFrame, picked: pd.DataFrame, record_ids: str) -> pd.Series:
    """Source keys for new records: natural keys of what is shown (`record_ids` natural), the
    platform's next numeric ids, or new ids of the platform's own shape (treewises' `c_…`)."""
    if picked.empty:
        return pd.Series([], index=picked.index, dtype="str")
    if record_ids == "natural":
        dates = picked["completed_at"].dt.strftime("%Y-%m-%d")
        return natural_key([picked["raw_id"], picked["course_title"], dates])
    platform = picked["platform"].iloc[0]
    known = records.loc[records["platform"] == platform, "source_key"]
    numeric = pd.to_numeric(known, errors="coerce")
    if numeric.notna().all():
        ids = np.arange(int(numeric.max()) + 1, int(numeric.max()) + 1 + len(picked))
        return pd.Series(ids.astype(str), index=picked.index, dtype="str")
    return pd.Series([f"c_n{i:011d}" for i in range(len(picked))], picked.index, dtype="str")


HISTORY_DAYS = 6 * 365
"""The generator's data span 2017–2022."""
NEW_DAYS = 3
CORRECTED = 0.0005
WITHDRAWN = 5
REFERENCE_RECORDS = 1_000_000
"""The realistic night's changes are those of a history this size at every size (fewer below
it), so that nights over 1M and 4M histories are compared on the same work."""


def realistic_changes(dataset: Dataset, seed: int, year: int = NIGHT_YEAR) -> pd.DataFrame:
    """A night as the platforms would have it, for a history of `REFERENCE_RECORDS`: three
    days' worth of its daily rate of new records, completed in the year's last days (by people
    and courses already known), 0.05% of the updating platforms' records corrected, and a few
    withdrawals (a treewises revocation, a record gone from the huaxue snapshot)."""
    rng = np.random.default_rng(seed + 1)
    records = dataset.records
    latest = records.drop_duplicates("record_key", keep="last")
    latest = latest[~latest["withdrawn"] & latest["completed_at"].notna()]
    year_end = pd.Timestamp(year + 1, 1, 1, tz=TZ)
    history = min(len(latest), REFERENCE_RECORDS)
    new_count = round(history / HISTORY_DAYS * NEW_DAYS)
    parts = []
    for platform, rows in latest.groupby("platform", sort=True):
        facts = PRODUCTION[str(platform)].facts
        share = round(new_count * len(rows) / len(latest))
        new = rows.iloc[np.sort(rng.choice(len(rows), min(share, len(rows)), replace=False))]
        new = new.copy()
        seconds = rng.integers(1, NEW_DAYS * 86_400 - 60, len(new))
        new["completed_at"] = year_end - pd.to_timedelta(seconds, unit="s")
        new["source_key"] = _new_keys(records, new, facts.record_ids)
        new["certificate_no"] = pd.NA
        new["makeup"] = False
        new["makeup_year"] = pd.NA
        changed = [new]
        if facts.updating:
            count = max(1, round(CORRECTED * history * len(rows) / len(latest)))
            fixed = rows.iloc[np.sort(rng.choice(len(rows), count, replace=False))].copy()
            fixed["passed"] = True
            fixed["score"] = fixed["score"].clip(lower=60.0)
            changed.append(fixed)
        if facts.revokes or facts.snapshot:
            gone = rows[rows["pull_year"] == year]
            gone = gone.iloc[rng.choice(len(gone), min(WITHDRAWN, len(gone)), replace=False)]
            changed.append(gone.assign(withdrawn=True))
        picked = pd.concat(changed)
        if facts.updating:
            last = records.loc[records["platform"] == platform, "updated_at"].max()
            span = max(2, min(3_600, int((year_end - last).total_seconds()) - 2))  # in the year
            picked["updated_at"] = last.floor("s") + pd.to_timedelta(
                np.sort(rng.integers(1, span, len(picked))), unit="s"
            )
        picked["pull_year"] = picked["pull_year"].where(picked["withdrawn"], year)
        picked["epoch"] = 1
        picked["hidden_until_paged"] = False
        picked["record_key"] = picked["platform"] + ":" + picked["source_key"]
        parts.append(picked.drop_duplicates("record_key", keep="last"))
    return pd.concat(parts, ignore_index=True).astype(records.dtypes.to_dict())


class NightSource:
    """The dataset as served, plus the realistic night's changes from epoch 1 on and the
    stress night's from epoch 2 on."""

    def __init__(self, dataset: Dataset, nights: list[pd.DataFrame]) -> None:
        self.dataset = dataset
        self.nights = nights

    def served(self, platform: str, epoch: int) -> pd.DataFrame:
        base = self.dataset.served(platform, max(epoch - 1, 0))
        extra = [n[n["platform"] == platform] for n in self.nights[:epoch]]
        if not extra:
            return base
        combined = pd.concat([base, *(e[base.columns] for e in extra)], ignore_index=True)
        latest = combined.drop_duplicates("record_key", keep="last", ignore_index=True)
        if PRODUCTION[platform].facts.snapshot:  # a withdrawn row is gone from the snapshot
            latest = latest[~latest["withdrawn"]].reset_index(drop=True)
        return latest


@dataclass(frozen=True)
class World:
    """What the child reports once it serves: settings and the size of what it serves."""

    env: dict[str, str]
    versions: int
    records: int
    changes: int
    realistic_changes: int
    generate_seconds: float


def _serve(conn: Connection, records: int, seed: int, fraction: float) -> None:
    """The child: generate, serve, then obey `advance`/`stop` until told to stop."""
    from sandbox.families import Options
    from sandbox.server import Sandbox

    started = time.perf_counter()
    dataset = generate(records=records, seed=seed)
    nights = [realistic_changes(dataset, seed), overnight_changes(dataset, fraction, seed)]
    seconds = time.perf_counter() - started
    options = Options(rate_limit=0)  # the contract's 5 req/s would dominate every figure
    with Sandbox(NightSource(dataset, nights), port=0, seed=seed, options=options) as sandbox:
        conn.send(
            World(
                env=sandbox.env(),
                versions=len(dataset.records),
                records=int(dataset.records["record_key"].nunique()),
                changes=len(nights[1]),
                realistic_changes=len(nights[0]),
                generate_seconds=seconds,
            )
        )
        while (command := conn.recv()) != "stop":
            conn.send(sandbox.advance() if command == "advance" else None)


class Platforms:
    """The sandbox child process, driven through a pipe."""

    def __init__(self, records: int, seed: int, fraction: float) -> None:
        context = mp.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, records, seed, fraction), name="xueshi-bench-sandbox"
        )
        self._process.start()
        self.world: World = self._receive()

    def _receive(self) -> Any:
        while not self._conn.poll(1.0):
            if not self._process.is_alive():
                raise RuntimeError("the sandbox process died before answering")
        return self._conn.recv()

    def advance(self) -> int:
        """Move the platforms to the next epoch (the overnight changes)."""
        self._conn.send("advance")
        return int(self._receive())

    def stop(self) -> None:
        if self._process.is_alive():
            self._conn.send("stop")
            self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()

    def __enter__(self) -> Platforms:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
