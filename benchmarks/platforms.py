"""The simulated platforms for the benchmark: a child process serving the generator's data, and
the overnight changes (1% of the records) that the incremental night has to pick up.

The sandbox runs in its own process rather than a thread of the benchmark: on two cores a
server thread would fight the pipeline for the GIL, and the pipeline's peak RSS would include
the generated dataset. Real platforms are remote, so a separate process is the honest setting.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import pandas as pd

from sandbox.generator import Dataset, generate
from sandbox.generator.base import FAMILY
from schemas.raw import TZ, natural_key

NIGHT_YEAR = 2022  # the generator's data end in 2022: the night syncs the data's last year
LOOKBACK_DAYS = 35  # the date-window families re-pull this many days before their watermark
UPDATING = frozenset({"yx", "treewises"})
NATURAL_KEYS = frozenset({"zjp", "tyjrp", "lllnet", "huaxue"})


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
        family = FAMILY[str(platform)]
        if family in UPDATING:
            last = records.loc[records["platform"] == platform, "updated_at"].max()
            span = max(1, int((year_end - last).total_seconds()) - 2)
            offsets = np.sort(rng.integers(1, span, count))
            picked["updated_at"] = last.floor("s") + pd.to_timedelta(offsets, unit="s")
            picked["passed"] = True
            picked["score"] = picked["score"].clip(lower=60.0)
        else:
            days = rng.integers(1, LOOKBACK_DAYS - 2, count)
            completed = year_end - pd.to_timedelta(days, unit="D")
            if family == "tyjrp":
                completed += pd.to_timedelta(rng.integers(8 * 3600, 20 * 3600, count), unit="s")
            picked["completed_at"] = completed
            picked["source_key"] = _new_keys(records, picked, family)
        picked["pull_year"] = year
        picked["epoch"] = 1
        picked["hidden_until_paged"] = False
        picked["record_key"] = picked["platform"] + ":" + picked["source_key"]
        parts.append(picked.drop_duplicates("record_key", keep="last"))
    return pd.concat(parts, ignore_index=True).astype(records.dtypes.to_dict())


def _new_keys(records: pd.DataFrame, picked: pd.DataFrame, family: str) -> pd.Series:
    """Source keys for new records: natural keys of what is shown, or spa's next ids."""
    if family in NATURAL_KEYS:
        dates = picked["completed_at"].dt.strftime("%Y-%m-%d")
        return natural_key([picked["raw_id"], picked["course_title"], dates])
    platform = picked["platform"].iloc[0]
    top = pd.to_numeric(records.loc[records["platform"] == platform, "source_key"]).max()
    ids = np.arange(int(top) + 1, int(top) + 1 + len(picked))
    return pd.Series(ids.astype(str), index=picked.index, dtype="str")


class NightSource:
    """The dataset as served, plus the overnight changes from epoch 1 on."""

    def __init__(self, dataset: Dataset, changes: pd.DataFrame) -> None:
        self.dataset = dataset
        self.changes = changes

    def served(self, platform: str, epoch: int) -> pd.DataFrame:
        base = self.dataset.served(platform, epoch)
        if epoch < 1:
            return base
        extra = self.changes[self.changes["platform"] == platform]
        combined = pd.concat([base, extra[base.columns]], ignore_index=True)
        return combined.drop_duplicates("record_key", keep="last", ignore_index=True)


@dataclass(frozen=True)
class World:
    """What the child reports once it serves: settings and the size of what it serves."""

    env: dict[str, str]
    versions: int
    records: int
    changes: int
    generate_seconds: float


def _serve(conn: Connection, records: int, seed: int, fraction: float) -> None:
    """The child: generate, serve, then obey `advance`/`stop` until told to stop."""
    from sandbox.families import Options
    from sandbox.server import Sandbox

    started = time.perf_counter()
    dataset = generate(records=records, seed=seed)
    changes = overnight_changes(dataset, fraction, seed)
    seconds = time.perf_counter() - started
    options = Options(rate_limit=0)  # the contract's 5 req/s would dominate every figure
    with Sandbox(NightSource(dataset, changes), port=0, seed=seed, options=options) as sandbox:
        conn.send(
            World(
                env=sandbox.env(),
                versions=len(dataset.records),
                records=int(dataset.records["record_key"].nunique()),
                changes=len(changes),
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
