"""Nights alone: `python -m benchmarks.nights build|night --records N --folder DIR [--engine E]`.

`build` runs the full pipeline once over a generated history of N records and keeps the
database and the Dagster instance as the history (`DIR.history` beside `DIR`; on PostgreSQL
also the database `<database>_history`, by default `xueshi_nights_<N>_history`). `night` copies
that history back (PostgreSQL: a database created with the history as its template), upgrades
its schema, moves the platforms to the realistic night (three days of new records, 0.05%
corrections, a few withdrawals: `benchmarks.platforms.realistic_changes`) and times the night's
run with its stages and steps, in one process as `benchmarks.run` times its nights. A 4M
history takes ~10 minutes to build once; each night after it a minute or two, so a change to
the night is measured without a whole `benchmarks.run` (which builds the history again for
every figure). The generator is seeded, so `build` and `night` serve the same data.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import floor
from benchmarks.platforms import NIGHT_YEAR, TODAY, Platforms
from benchmarks.run import (
    ENGINES,
    POSTGRES_ADMIN_URL,
    _instance,
    _set_environment,
    database_url,
    quiet,
    recreate_database,
    run_pipeline,
)
from pipelines.store import Store
from schemas.clock import TODAY_ENV
from schemas.vocabulary import FIRST_YEAR

SETTLE_SECONDS = 5
"""Pause after copying the history, so its writeback does not land inside the timed night."""


class Databases:
    """Where a size's nights run and where its history is kept, on one engine."""

    def __init__(self, engine: str, name: str, folder: Path, admin_url: str) -> None:
        self.engine = engine
        self.name = name
        self.folder = folder
        self.admin_url = admin_url

    @property
    def url(self) -> str:
        if self.engine == "sqlite":
            return f"sqlite:///{self.folder / 'xueshi.db'}"
        return database_url(self.admin_url, self.name)

    def create(self) -> None:
        """An empty database for the build (SQLite: the folder's file, created on first use)."""
        if self.engine == "postgresql":
            recreate_database(self.admin_url, self.name)

    def keep(self) -> None:
        """The built database becomes the history (SQLite: copied with the folder)."""
        if self.engine == "postgresql":
            recreate_database(self.admin_url, self.name + "_history", template=self.name)

    def restore(self) -> None:
        """The history becomes the night's database (SQLite: copied with the folder)."""
        if self.engine == "postgresql":
            recreate_database(self.admin_url, self.name, template=self.name + "_history")


def build(databases: Databases, records: int, seed: int) -> dict[str, object]:
    folder = databases.folder
    history = folder.with_name(folder.name + ".history")
    years = range(FIRST_YEAR, NIGHT_YEAR + 1)
    with Platforms(records, seed, 0.01) as platforms:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        databases.create()
        _set_environment(platforms.world.env, databases.url, folder)
        instance = _instance(folder / "dagster_home")
        floor.fetch_all(years, platforms.world.env)  # warm the sandbox's views
        full = run_pipeline(years, instance)
        instance.dispose()
    databases.keep()
    shutil.rmtree(history, ignore_errors=True)
    shutil.copytree(folder, history)
    keys = ("seconds", "records", "peak_mb", "stages", "steps")
    return {"history": str(history), **{k: full[k] for k in keys}}


def night(databases: Databases, records: int, seed: int) -> dict[str, object]:
    folder = databases.folder
    history = folder.with_name(folder.name + ".history")
    if not history.is_dir():
        raise SystemExit(f"no history at {history}: run `build` first")
    with Platforms(records, seed, 0.01) as platforms:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(history, folder)
        databases.restore()
        _set_environment(platforms.world.env, databases.url, folder)
        store = Store.from_url(databases.url)
        store.migrate()  # a history built by older code gets today's schema, untimed
        store.dispose()
        os.sync()
        time.sleep(SETTLE_SECONDS)
        instance = _instance(folder / "dagster_home")
        platforms.advance()
        floor.fetch_all(range(NIGHT_YEAR, NIGHT_YEAR + 1), platforms.world.env)
        figures = run_pipeline([NIGHT_YEAR], instance)
        instance.dispose()
    return {k: figures[k] for k in ("seconds", "records_pulled", "peak_mb", "stages", "steps")}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nights", description=__doc__)
    parser.add_argument("action", choices=("build", "night"))
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", choices=ENGINES, default="sqlite")
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL)
    parser.add_argument("--database", help="PostgreSQL's (default xueshi_nights_<N>)")
    args = parser.parse_args(argv)
    quiet()
    os.environ[TODAY_ENV] = TODAY.isoformat()
    name = args.database or f"xueshi_nights_{args.records}"
    databases = Databases(args.engine, name, args.folder.resolve(), args.postgres_admin_url)
    action = build if args.action == "build" else night
    print(json.dumps(action(databases, args.records, args.seed), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
