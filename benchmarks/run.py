"""The province-scale benchmark: `python -m benchmarks.run [--records N] [--engines …]`.

For each engine: a sandbox process serves N generated records (rate limit off), the whole
pipeline runs through Dagster over every year (what `xueshi backfill` does, in one process so
that every stage can be timed), then again into a fresh database with a process per step, two
at a time (as `xueshi backfill` runs on PostgreSQL). Then two nights sync the data's last year
again: a realistic one (three days' worth of new records, 0.05% corrections, a few withdrawals)
and the 1% stress model. Then the ledger's shard steps run again as a full refresh under the
multiprocess executor with one process and with two (the parallel speedup), and a paper model
scales the measured costs to 50 and 500 million records.
Beside it, in the same run: the floor (plain fetch and decode of the same exports, plain bulk
insert of the same ledger rows, into a database of its own) and the peer (dlt's rest_api source
into PostgreSQL). Prints a table and writes `benchmarks/results/<date>-<records>.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import psycopg
from dagster._core.instance.ref import InstanceRef
from dagster._core.utils import make_new_run_id
from sqlalchemy import make_url

from benchmarks import floor, measure, peer
from benchmarks.platforms import NIGHT_YEAR, TODAY, Platforms
from pipelines.progress import follow, log_file
from pipelines.resources import data_dir
from pipelines.runs import launch
from pipelines.shards import count_for as shard_count
from pipelines.store import Store, make_engine
from schemas.clock import TODAY_ENV, current_year
from schemas.platforms import load_specs
from schemas.vocabulary import FIRST_YEAR

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ENGINES = ("sqlite", "postgresql")
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
MB = 1024 * 1024
TARGETS = {
    "full_seconds_at_1m": 120,
    "peak_mb": 3 * 1024,
    "pipeline_over_floor": 3.0,
    "pipeline_over_peer": 1.0,
    "incremental_over_full": 0.10,
}
T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    records: int = 1_000_000
    seed: int = 0
    engines: tuple[str, ...] = ENGINES
    changes: float = 0.01
    profile: bool = False
    out_dir: Path = RESULTS
    work_dir: Path | None = None
    postgres_admin_url: str = POSTGRES_ADMIN_URL
    database: str = "xueshi_bench"
    first_year: int = FIRST_YEAR
    """The full run pulls first_year..current year (the smoke test starts late to stay quick)."""


def _commit() -> str | None:
    """The commit measured, when the code runs from a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def _timed(action: Callable[[], T]) -> tuple[T, float, int]:
    """The result, the seconds it took and this process's peak RSS meanwhile."""
    with measure.RssSampler() as sampler:
        started = time.perf_counter()
        result = action()
        seconds = time.perf_counter() - started
    return result, seconds, max((rss for _, rss in sampler.samples), default=0)


@contextmanager
def _database(config: Config, engine: str, folder: Path, suffix: str = "") -> Iterator[str]:
    """A fresh database for one engine (PostgreSQL: created, then dropped; SQLite: a file,
    removed after unless it is the pipeline's own, kept in the work folder)."""
    if engine == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"xueshi{suffix}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            if suffix:
                for leftover in folder.glob(f"{path.name}*"):  # with its -wal and -shm
                    leftover.unlink()
        return
    name = config.database + suffix
    recreate_database(config.postgres_admin_url, name)
    try:
        yield database_url(config.postgres_admin_url, name)
    finally:
        drop_database(config.postgres_admin_url, name)


def recreate_database(admin_url: str, name: str, template: str | None = None) -> None:
    """PostgreSQL database `name` made anew: empty, or a copy of `template` (whose sessions are
    ended first: PostgreSQL copies only a database nobody is connected to)."""
    drop_database(admin_url, name)
    copy = "" if template is None else f' TEMPLATE "{template}"'
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if template is not None:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (template,),
            )
        conn.execute(f'CREATE DATABASE "{name}"{copy}')


def drop_database(admin_url: str, name: str) -> None:
    """PostgreSQL database `name` gone, whoever is still connected to it."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(admin_url: str, name: str) -> str:
    """The pipeline's URL (psycopg 3) of database `name` on the admin URL's server."""
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}"


def _instance(home: Path) -> dg.DagsterInstance:
    """A persistent instance in `home`, as `xueshi backfill` uses (default SQLite storage)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def _pulled(instance: dg.DagsterInstance, run_id: str) -> int:
    """Records the run's raw assets pulled (their `records_pulled` metadata)."""
    connection = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    )
    pulled: dict[str, int] = {}
    for record in connection.records:
        event = record.event_log_entry.dagster_event
        materialization = event.event_specific_data.materialization if event else None
        if materialization and "records_pulled" in materialization.metadata:
            # a range run repeats the asset's metadata on every partition: count it once
            key = materialization.asset_key.to_user_string()
            pulled[key] = int(materialization.metadata["records_pulled"].value)
    return sum(pulled.values())


def run_pipeline(
    years: Sequence[int], instance: dg.DagsterInstance, profile: Path | None = None
) -> dict[str, Any]:
    """One Dagster run of the sync job over `years`, with its stage figures."""
    raw_steps = frozenset(f"raw_{code}" for code in load_specs())
    with (
        measure.RssSampler() as sampler,
        measure.instrumented() as timers,
        measure.Profiler(profile) if profile else nullcontext(),
    ):
        started = time.time()
        run_id = make_new_run_id()
        with follow(instance, run_id, years=years, out=sys.stdout, log_path=log_file(data_dir())):
            outcome = launch(list(years), instance=instance, run_id=run_id, executor="in_process")
        ended = time.time()
    if not outcome.success:
        raise RuntimeError(f"the benchmark run failed: {outcome.errors[:5]}")
    spans = measure.step_intervals(instance, outcome.run_id)
    figures = measure.stage_figures(spans, timers, sampler, (started, ended), raw_steps)
    records = int(outcome.summary.loc["total", "raw"]) if len(outcome.summary) else 0
    pulled = _pulled(instance, outcome.run_id)
    stages = {}
    for stage, seconds in figures.seconds.items():
        count = pulled if stage in {"pull", "load_raw"} else records
        stages[stage] = {
            "seconds": round(seconds, 3),
            "records_per_second": round(count / seconds) if seconds > 0 else None,
            "peak_mb": round(figures.peak_bytes[stage] / MB, 1),
        }
    figures_out: dict[str, Any] = {
        "run_id": outcome.run_id,
        "years": [min(years), max(years)],
        "seconds": round(ended - started, 3),
        "records": records,
        "records_pulled": pulled,
        "batches_stored": len(timers.intervals["load_raw"]),
        "records_per_second": round(records / (ended - started)),
        "peak_mb": round(max((rss for _, rss in sampler.samples), default=0) / MB, 1),
        "stages": stages,
        "steps": {key: round(s, 3) for key, s in figures.steps.items()},
    }
    if profile:
        figures_out["profile"] = measure.fold_profile(profile) | {"raw_file": str(profile)}
    return figures_out


def _set_environment(env: dict[str, str], url: str, folder: Path) -> None:
    os.environ.update(env)
    os.environ["XUESHI_DATABASE_URL"] = url
    os.environ["XUESHI_DATA_DIR"] = str(folder / "data")
    os.environ["XUESHI_OUTPUT_DIR"] = str(folder / "out")


def benchmark(config: Config) -> dict[str, Any]:
    """Run everything the module's docstring lists and return the figures."""
    os.environ[TODAY_ENV] = TODAY.isoformat()
    work = config.work_dir or Path(tempfile.mkdtemp(prefix="xueshi-bench-"))
    years = range(config.first_year, current_year() + 1)
    report: dict[str, Any] = {
        "benchmark": "xueshi province-scale",
        "date": datetime.now().isoformat(timespec="seconds"),
        "commit": _commit(),
        "records": config.records,
        "seed": config.seed,
        "years": [years.start, years.stop - 1],
        "night_year": NIGHT_YEAR,
        "changes": config.changes,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "method": {
            "sandbox": "separate process, rate limit off (the contract's 5 req/s for treewises "
            "would take ~1,000 s at 1M records), views warmed by one untimed fetch",
            "stages": "Dagster step events from the instance's event log, split inside by "
            "timing Store.store_batch/raw_records/replace_outputs/begin_full/finish_full/"
            "append_reconciliation and apply_rules",
            "peak_memory": "RSS of the benchmark process (not the sandbox), sampled every 50 ms",
            "parallel": "the full run again into a fresh database under the multiprocess "
            "executor, one step per CPU at a time; pipeline_over_floor is its time, "
            "one_process_over_floor the in-process run's (whose stages are timed)",
            "dagster_instance": "persistent, default SQLite storage in DAGSTER_HOME",
            "floor_insert": "the ledger's rows as text into a fresh table of a database of its "
            "own, dropped before the nights",
        },
        "targets": TARGETS,
        "engines": {},
    }
    try:
        for engine in config.engines:
            report["engines"][engine] = _engine(config, engine, years, work / engine, report)
    finally:
        if config.work_dir is None and not config.profile:
            shutil.rmtree(work, ignore_errors=True)
    report["ratios"] = _ratios(report)
    report["paper_model"] = paper_model(report)
    return report


PAPER_SIZES = {"50M": 50_000_000, "500M": 500_000_000}
PAPER_WORKERS = (1, 4, 16)
PLATFORMS_AT_ONCE = 10


def paper_model(report: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """A first backfill of 50M and 500M records on 1, 4 and 16 workers of this machine's
    size, from the measured per-record costs: pulls spread over at most the ten platforms,
    shard steps over every worker (at the measured two-process speedup per worker), files
    and checks in one step; the database's own write time (the floor's bulk insert of the
    ledger, twice for raw and ledger) is the bound no number of workers removes."""
    model: dict[str, dict[str, dict[str, float]]] = {}
    for engine, runs in report["engines"].items():
        full = runs["full"]
        per_record = {
            stage: figures["seconds"] / max(full["records"], 1)
            for stage, figures in full["stages"].items()
        }
        pull = per_record["pull"] + per_record["load_raw"]
        shard = per_record["read_raw"] + per_record["rules"] + per_record["load_outputs"]
        serial = sum(per_record.values()) - pull - shard
        database = 2 * report["floor"]["insert_seconds"][engine] / max(full["records"], 1)
        per_worker = runs["shards"]["speedup"]
        rows: dict[str, dict[str, float]] = {}
        for size, n in PAPER_SIZES.items():
            row = {}
            for workers in PAPER_WORKERS:
                seconds = (
                    n * pull / min(workers, PLATFORMS_AT_ONCE)
                    + n * shard / (workers * per_worker)
                    + n * serial
                )
                row[f"{workers} workers"] = round(max(seconds, n * database) / 3600, 1)
            row["database bound"] = round(n * database / 3600, 1)
            rows[size] = row
        model[engine] = rows
    return model


def _engine(
    config: Config, engine: str, years: range, folder: Path, report: dict[str, Any]
) -> dict[str, Any]:
    with Platforms(config.records, config.seed, config.changes) as platforms:
        world = platforms.world
        report.setdefault("sandbox", {k: v for k, v in asdict(world).items() if k != "env"})
        _, cold, _ = _timed(lambda: floor.fetch_all(years, world.env))
        if "floor" not in report:
            counts, seconds, peak = _timed(lambda: floor.fetch_all(years, world.env))
            report["floor"] = {
                "fetch_seconds": round(seconds, 3),
                "fetch_cold_seconds": round(cold, 3),
                "fetch_records": sum(counts.values()),
                "fetch_records_by_platform": counts,
                "fetch_peak_mb": round(peak / MB, 1),
                "insert_seconds": {},
            }
        if "peer" not in report:
            with _database(config, "postgresql", folder, "_peer") as url:
                result, _, peak = _timed(lambda: peer.ingest(years, world.env, _dlt_url(url)))
            report["peer"] = asdict(result) | {"peak_mb": round(peak / MB, 1), "tool": "dlt"}
        with _database(config, engine, folder) as url:
            _set_environment(world.env, url, folder)
            instance = _instance(folder / "dagster_home")
            profile = folder / "profile.txt" if config.profile else None
            full = run_pipeline(years, instance, profile)
            report["floor"]["insert_seconds"][engine] = round(
                _floor_insert(url, config, engine, folder), 3
            )
            with _database(config, engine, folder, "_parallel") as parallel_url:
                parallel = parallel_full(years, instance, parallel_url, folder / "out_parallel")
            platforms.advance()
            floor.fetch_all(range(NIGHT_YEAR, NIGHT_YEAR + 1), world.env)  # warm the new epoch
            night_profile = folder / "profile-night.txt" if config.profile else None
            night = run_pipeline([NIGHT_YEAR], instance, night_profile)
            platforms.advance()
            floor.fetch_all(range(NIGHT_YEAR, NIGHT_YEAR + 1), world.env)
            stress = run_pipeline([NIGHT_YEAR], instance)
            speedup = shard_speedup(instance, full["records"])
            instance.dispose()
            _stop_step_server()
    return {
        "full": full,
        "parallel": parallel,
        "night": night,
        "incremental": stress,
        "shards": speedup,
    }


def parallel_full(
    years: Sequence[int], instance: dg.DagsterInstance, url: str, output: Path
) -> dict[str, Any]:
    """The same full run into a fresh database under the multiprocess executor, a step per
    core at a time (what `xueshi backfill` does on PostgreSQL): raw steps pull side by side
    and shards write while others rule. Timed whole; memory is the largest step process's RSS
    (each holds at most a shard) and the sum over the step processes and their server (shared
    pages counted in each). This process only waits, and still holds what the harness read."""
    with measure.RssSampler(children=True) as sampler:
        started = time.time()
        outcome = launch(
            list(years),
            instance=instance,
            executor="multiprocess",
            resources={"database": {"url": url}, "output": {"output_dir": str(output)}},
        )
        ended = time.time()
    if not outcome.success:
        raise RuntimeError(f"the parallel benchmark run failed: {outcome.errors[:5]}")
    spans = measure.step_intervals(instance, outcome.run_id)
    return {
        "run_id": outcome.run_id,
        "executor": "multiprocess",
        "processes": os.cpu_count(),
        "seconds": round(ended - started, 3),
        "records": int(outcome.summary.loc["total", "raw"]) if len(outcome.summary) else 0,
        "peak_mb": round(max((rss for _, rss in sampler.samples), default=0) / MB, 1),
        "peak_mb_all_processes": round(max(sampler.totals, default=0) / MB, 1),
        "steps": {key: round(b - a, 3) for key, (a, b) in sorted(spans.items())},
    }


def _stop_step_server() -> None:
    """Stop the forkserver the multiprocess executor started in this process: its step
    processes inherit the environment it started with (the sandbox's URLs, the database), and
    the next engine has its own."""
    from multiprocessing import forkserver

    forkserver._forkserver._stop()


LEDGER_ASSETS = ("completion", "hours_bank", "reconciliation")


def shard_speedup(instance: dg.DagsterInstance, records: int) -> dict[str, Any]:
    """A full refresh of the ledger alone under the multiprocess executor, its shards dealt
    to two steps, run one process at a time and two at a time: the span of the shard steps,
    and of the whole ledger (the shards, then the one step that indexes what they wrote)."""
    from pipelines.definitions import sync_job

    spans: dict[str, float] = {}
    ledger: dict[str, float] = {}
    shards = max(2, shard_count(records))
    plan = {"full": True, "steps": 2, "shards": shards}
    for processes in (1, 2):
        run_config = {
            "loggers": {"progress": {"config": {}}},
            "execution": {"config": {"max_concurrent": processes}},
            "ops": {"ledger": {"ops": {"ledger_plan": {"config": plan}}}},
        }
        with dg.execute_job(
            dg.reconstructable(sync_job),
            instance,
            run_config=run_config,
            asset_selection=[
                dg.AssetKey(k) for k in ("completion", "hours_bank", "reconciliation")
            ],
        ) as result:
            if not result.success:
                raise RuntimeError("the shard speedup run failed")
            steps = measure.step_intervals(instance, result.run_id)
        parts = [span for step, span in steps.items() if step.startswith("ledger.ledger_part")]
        start = min(a for a, _ in parts)
        spans[f"processes_{processes}"] = round(max(b for _, b in parts) - start, 3)
        ledger[f"processes_{processes}"] = round(steps["ledger.ledger_finish"][1] - start, 3)
    return {
        "shards": shards,
        "steps": 2,
        "seconds": spans,
        "speedup": round(spans["processes_1"] / spans["processes_2"], 2),
        "ledger_seconds": ledger,
        "ledger_speedup": round(ledger["processes_1"] / ledger["processes_2"], 2),
    }


def _dlt_url(url: str) -> str:
    """dlt insists on a password, even under trust authentication: any value does."""
    parsed = make_url(url)
    return parsed.set(
        drivername="postgresql", password=parsed.password or "bench"
    ).render_as_string(hide_password=False)


def _floor_insert(url: str, config: Config, engine: str, folder: Path) -> float:
    """The floor's insert of the ledger, into a database of its own that is dropped after: a
    copy of the ledger left in the pipeline's database would weigh on the nights timed next."""
    store = Store.from_url(url)
    try:
        values = floor.ledger_text(store.read_table("completion"))
    finally:
        store.dispose()
    with _database(config, engine, folder, "_floor") as floor_url:
        target = make_engine(floor_url)
        try:
            _, seconds, _ = _timed(lambda: floor.bulk_insert(target, values))
        finally:
            target.dispose()
    return seconds


def _ratios(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per engine: pipeline/floor, pipeline/peer (seconds per record), incremental/full, and
    the like-for-like raw ingest of the peer's platforms over the peer."""
    floor_fetch = report["floor"]["fetch_seconds"]
    peer_ = report["peer"]
    peer_rate = peer_["seconds"] / peer_["records"]
    ratios = {}
    for engine, runs in report["engines"].items():
        full, night, stress = runs["full"], runs["night"], runs["incremental"]
        floor_total = floor_fetch + report["floor"]["insert_seconds"][engine]
        ingest = sum(full["steps"].get(f"raw_{code}", 0.0) for code in peer_["platforms"])
        ratios[engine] = {
            "pipeline_over_floor": round(runs["parallel"]["seconds"] / floor_total, 2),
            "one_process_over_floor": round(full["seconds"] / floor_total, 2),
            "pipeline_over_peer": round(full["seconds"] / full["records"] / peer_rate, 2),
            "raw_ingest_over_peer": round(ingest / peer_["seconds"], 2),
            "incremental_over_full": round(stress["seconds"] / full["seconds"], 3),
            "night_over_full": round(night["seconds"] / full["seconds"], 3),
            "seconds_per_million": round(full["seconds"] / full["records"] * 1e6, 1),
            "shard_speedup": runs["shards"]["speedup"],
        }
    return ratios


# --- output ---------------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    """The figures as plain-text tables."""
    lines = [
        f"xueshi benchmark: {report['records']:,} records, years "
        f"{report['years'][0]}–{report['years'][1]}, {report['machine']['cpus']} CPUs",
    ]
    for engine, runs in report["engines"].items():
        for kind, run in runs.items():
            if kind == "shards":
                lines += ["", f"{engine} — shard steps, full refresh: {run}"]
                continue
            if kind == "parallel":
                lines += [
                    "",
                    f"{engine} — full, {run['executor']} ({run['processes']} at once): "
                    f"{run['seconds']:.1f} s, {run['records']:,} records, peak "
                    f"{run['peak_mb']:,.0f} MB per process, {run['peak_mb_all_processes']:,.0f} "
                    "MB in all",
                ]
                continue
            lines += [
                "",
                f"{engine} — {kind}: {run['seconds']:.1f} s, {run['records']:,} records "
                f"({run['records_pulled']:,} pulled), peak {run['peak_mb']:,.0f} MB",
                f"{'stage':<14}{'seconds':>10}{'records/s':>12}{'peak MB':>10}",
            ]
            for stage, figures in run["stages"].items():
                rate = figures["records_per_second"]
                lines.append(
                    f"{stage:<14}{figures['seconds']:>10.1f}"
                    f"{(f'{rate:,}' if rate else '-'):>12}{figures['peak_mb']:>10,.0f}"
                )
    fl, pe = report["floor"], report["peer"]
    lines += [
        "",
        f"floor: fetch+decode {fl['fetch_seconds']:.1f} s ({fl['fetch_records']:,} records; "
        f"cold {fl['fetch_cold_seconds']:.1f} s), bulk insert "
        + ", ".join(f"{e} {s:.1f} s" for e, s in fl["insert_seconds"].items()),
        f"peer: dlt rest_api → PostgreSQL, {pe['records']:,} records of "
        f"{', '.join(pe['platforms'])} in {pe['seconds']:.1f} s",
        "",
        f"{'ratio':<26}" + "".join(f"{e:>12}" for e in report["ratios"]) + f"{'target':>10}",
    ]
    for name in report["ratios"][next(iter(report["ratios"]))]:
        values = "".join(f"{r[name]:>12}" for r in report["ratios"].values())
        target = f"< {TARGETS[name]}" if name in TARGETS else ""
        lines.append(f"{name:<26}{values}{target:>10}")
    lines += ["", "paper model (hours; database: the engine's measured write rate alone):"]
    for engine, model in report["paper_model"].items():
        for size, row in model.items():
            lines.append(f"  {engine} {size}: " + ", ".join(f"{k} {v}" for k, v in row.items()))
    return "\n".join(lines)


def write(report: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{report['date'][:10]}-{report['records']}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    return path


def quiet() -> None:
    """Only warnings and the benchmark's own output."""
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for handler in logging.getLogger().handlers:  # GX raises its own loggers to INFO mid-run
        handler.addFilter(lambda r: r.levelno >= logging.WARNING)
    # the CLI's per-page progress lines would bury the table (they still reach the event log)
    logging.getLogger("xueshi.progress").addHandler(logging.NullHandler())
    for name in ("dlt", "great_expectations", "xueshi", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")


def parse(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--records", type=int, default=Config.records)
    parser.add_argument("--seed", type=int, default=Config.seed)
    parser.add_argument("--engines", default=",".join(ENGINES), help="sqlite,postgresql")
    parser.add_argument("--changes", type=float, default=Config.changes)
    parser.add_argument("--profile", action="store_true", help="py-spy the runs")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL)
    parser.add_argument("--database", default=Config.database)
    parser.add_argument(
        "--first-year",
        type=int,
        default=FIRST_YEAR,
        help=f"the full run's first year (default {FIRST_YEAR}; at most {NIGHT_YEAR})",
    )
    args = parser.parse_args(argv)
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines: {', '.join(sorted(unknown))}")
    if not FIRST_YEAR <= args.first_year <= NIGHT_YEAR:
        parser.error(f"--first-year must lie within {FIRST_YEAR}..{NIGHT_YEAR}")
    return Config(
        records=args.records,
        seed=args.seed,
        engines=engines,
        changes=args.changes,
        profile=args.profile,
        out_dir=args.out_dir,
        work_dir=args.work_dir,
        postgres_admin_url=args.postgres_admin_url,
        database=args.database,
        first_year=args.first_year,
    )


def main(argv: Sequence[str] | None = None) -> int:
    config = parse(argv)
    quiet()
    report = benchmark(config)
    print(table(report))
    print(f"\nwritten: {write(report, config.out_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
