"""`xueshi`: sync, backfill, pull, sandbox and demo (PROVINCIAL.md, "How it is run")."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from schemas.platforms import PLATFORM_CODES

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_YEAR = 2017
DEMO_RECORDS = 20_000


def _current_year() -> int:
    return datetime.now(SHANGHAI).year


def _year(text: str) -> int:
    year = int(text)
    if not FIRST_YEAR <= year <= _current_year():
        raise argparse.ArgumentTypeError(f"{year} is outside {FIRST_YEAR}–{_current_year()}")
    return year


def _years(text: str) -> list[int]:
    match = re.fullmatch(r"(\d{4})(?:\s*[-–.]+\s*(\d{4}))?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a year range like 2018-2021")
    first, last = _year(match[1]), _year(match[2] or match[1])
    if first > last:
        raise argparse.ArgumentTypeError(f"{text!r}: the range runs backwards")
    return list(range(first, last + 1))


def _platform(text: str) -> str:
    if text not in PLATFORM_CODES:
        raise argparse.ArgumentTypeError(
            f"unknown platform {text!r}; one of {', '.join(PLATFORM_CODES)}"
        )
    return text


def _accept_withdrawals(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--accept-withdrawals",
        type=_platform,
        action="append",
        default=[],
        metavar="PLATFORM",
        help="store this platform's pull even if it withdraws more than 20%% of the records "
        "held or returns nothing where thousands were (repeatable)",
    )


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="xueshi", description=__doc__)
    cli.add_argument(
        "--attempts",
        type=int,
        default=None,
        help="HTTP attempts per request before a platform counts as failed (default 8)",
    )
    commands = cli.add_subparsers(dest="command", required=True)

    sync = commands.add_parser("sync", help="pull, process and load one year")
    sync.add_argument("--year", type=_year, default=None, help="default: the current year")
    sync.add_argument("--platform", type=_platform, action="append", help="repeatable")
    _accept_withdrawals(sync)

    backfill = commands.add_parser("backfill", help="the same over a range of years, as one run")
    backfill.add_argument("--years", type=_years, required=True, help="e.g. 2018-2021")
    backfill.add_argument("--platform", type=_platform, action="append", help="repeatable")
    _accept_withdrawals(backfill)

    pull = commands.add_parser("pull", help="pull one platform's year into a Parquet file")
    pull.add_argument("--platform", type=_platform, required=True)
    pull.add_argument("--year", type=_year, required=True)
    pull.add_argument("--out", type=Path, required=True)

    sandbox = commands.add_parser("sandbox", help="serve the ten simulated platforms on loopback")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument("--records", type=int, default=DEMO_RECORDS)
    sandbox.add_argument("--seed", type=int, default=0)
    sandbox.add_argument("--faults", default="none", help='"none", "all" or "ta_yx:5xx,429;…"')

    demo = commands.add_parser("demo", help="the main job on the embedded default")
    demo.add_argument("--records", type=int, default=DEMO_RECORDS)
    demo.add_argument("--seed", type=int, default=0)
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from pipelines.runs import quiet_libraries

    quiet_libraries()
    handlers = {
        "sync": _sync,
        "backfill": _backfill,
        "pull": _pull,
        "sandbox": _sandbox,
        "demo": _demo,
    }
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _sync(args: argparse.Namespace) -> int:
    years = [args.year or _current_year()]
    return _run(years, args.platform, args.attempts, args.accept_withdrawals)


def _backfill(args: argparse.Namespace) -> int:
    return _run(args.years, args.platform, args.attempts, args.accept_withdrawals)


def _run(
    years: list[int],
    platforms: list[str] | None,
    attempts: int | None = None,
    accept_withdrawals: Sequence[str] = (),
) -> int:
    import dagster as dg

    from pipelines.late import late_records, summary_line
    from pipelines.runs import dagster_home, launch, output_paths

    dagster_home()
    label = str(years[0]) if len(years) == 1 else f"{years[0]}–{years[-1]}"
    print(f"xueshi: syncing {label} from {', '.join(platforms or ['all platforms'])}", flush=True)
    started = time.monotonic()
    resources = {"platforms": {"attempts": attempts}} if attempts else None
    ops: dict[str, dict[str, object]] = {
        f"raw_{code}": {"accept_withdrawals": True}
        for code in accept_withdrawals
        if not platforms or code in platforms
    }
    outcome = launch(years, platforms, resources=resources, ops=ops)
    print(
        f"\nrun {outcome.run_id} {'succeeded' if outcome.success else 'FAILED'}"
        f" in {time.monotonic() - started:.1f} s\n"
    )
    if not outcome.summary.empty:
        print(outcome.summary.to_string())
        print()
    late = summary_line(late_records(dg.DagsterInstance.get(), outcome.run_id))
    if late:
        print(late + "\n")
    for error in outcome.errors:
        print(f"error: {error}", file=sys.stderr)
    if not outcome.success:
        print(
            "hint: a platform error names the platform and URL; check its XUESHI_<CODE>_* "
            "settings, then run the same command again (finished batches are kept).",
            file=sys.stderr,
        )
        return 1
    for name, path in output_paths().items():
        print(f"{name:>16}: {path}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from connectors.core import ConnectorError
    from connectors.pull import pull_frame

    try:
        frame = pull_frame(args.platform, args.year, progress=lambda line: print(line, flush=True))
    except ConnectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(args.out, index=False)
    print(f"{len(frame)} records from {args.platform} {args.year} → {args.out}")
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from sandbox.server import serve

    serve(records=args.records, seed=args.seed, port=args.port, faults=args.faults)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pipelines.runs import dagster_home
    from sandbox.generator import generate
    from sandbox.server import Sandbox

    home = dagster_home()
    print(f"xueshi demo: generating {args.records} records and starting the sandbox", flush=True)
    with Sandbox(generate(records=args.records, seed=args.seed), port=0) as sandbox:
        os.environ.update(sandbox.env())
        code = _run(list(range(FIRST_YEAR, _current_year() + 1)), None, args.attempts)
    if code == 0:
        print(
            f"\nSee the runs and the lineage in Dagster's UI:\n"
            f"  DAGSTER_HOME={home} .venv/bin/dagster dev -w workspace.yaml\n"
            f"then open http://127.0.0.1:3000 (start `.venv/bin/xueshi sandbox` in another "
            f"terminal to materialize from the UI)."
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
