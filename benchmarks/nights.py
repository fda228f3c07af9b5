"""Nights alone: `python -m benchmarks.nights build|night --records N --folder DIR`.

`build` runs the full pipeline once over a generated history of N records (SQLite) and keeps
the database and the Dagster instance beside `DIR` (`DIR.history`); `night` copies that history
back into `DIR`, upgrades its schema, moves the platforms to the realistic night (three days of
new records, 0.05% corrections, a few withdrawals: `benchmarks.platforms.realistic_changes`)
and times the night's run with its stages and steps. A 4M history takes ~15 minutes to build
once; each night after it takes a few minutes, so a change to the night is measured without a
whole `benchmarks.run` (which builds the history again for every figure). The generator is
seeded, so `build` and `night` serve the same data.
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
from benchmarks.run import _instance, _set_environment, quiet, run_pipeline
from pipelines.store import Store
from schemas.clock import TODAY_ENV
from schemas.vocabulary import FIRST_YEAR

SETTLE_SECONDS = 5
"""Pause after copying the history, so its writeback does not land inside the timed night."""


def build(records: int, folder: Path, seed: int) -> dict[str, object]:
    history = folder.with_name(folder.name + ".history")
    years = range(FIRST_YEAR, NIGHT_YEAR + 1)
    with Platforms(records, seed, 0.01) as platforms:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        _set_environment(platforms.world.env, f"sqlite:///{folder / 'xueshi.db'}", folder)
        instance = _instance(folder / "dagster_home")
        floor.fetch_all(years, platforms.world.env)  # warm the sandbox's views
        full = run_pipeline(years, instance)
        instance.dispose()
    shutil.rmtree(history, ignore_errors=True)
    shutil.copytree(folder, history)
    return {"history": str(history), **{k: full[k] for k in ("seconds", "records", "peak_mb")}}


def night(records: int, folder: Path, seed: int) -> dict[str, object]:
    history = folder.with_name(folder.name + ".history")
    if not history.is_dir():
        raise SystemExit(f"no history at {history}: run `build` first")
    with Platforms(records, seed, 0.01) as platforms:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(history, folder)
        url = f"sqlite:///{folder / 'xueshi.db'}"
        _set_environment(platforms.world.env, url, folder)
        store = Store.from_url(url)
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
    args = parser.parse_args(argv)
    quiet()
    os.environ[TODAY_ENV] = TODAY.isoformat()
    action = build if args.action == "build" else night
    print(json.dumps(action(args.records, args.folder.resolve(), args.seed), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
