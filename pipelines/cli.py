"""`xueshi`: sync, backfill, pull, sandbox, demo, forms check (PROVINCIAL.md, "How it is run",
FORMS.md), and the answers: explain a person, report a year."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from schemas.clock import current_year
from schemas.platforms import PLATFORM_CODES, SOURCE_CODES
from schemas.vocabulary import FIRST_YEAR

DEMO_RECORDS = 20_000
RUN_COMMANDS = frozenset({"sync", "backfill", "pull", "demo"})
"""Commands that run for minutes: they keep a detailed log file under the data folder."""


def _year(text: str) -> int:
    year = int(text)
    if not FIRST_YEAR <= year <= current_year():
        raise argparse.ArgumentTypeError(f"{year} is outside {FIRST_YEAR}–{current_year()}")
    return year


def _years(text: str) -> list[int]:
    match = re.fullmatch(r"(\d{4})(?:\s*[-–.]+\s*(\d{4}))?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a year range like 2018-2021")
    first, last = _year(match[1]), _year(match[2] or match[1])
    if first > last:
        raise argparse.ArgumentTypeError(f"{text!r}: the range runs backwards")
    return list(range(first, last + 1))


def _code(text: str, codes: Sequence[str]) -> str:
    if text not in codes:
        raise argparse.ArgumentTypeError(f"unknown platform {text!r}; one of {', '.join(codes)}")
    return text


def _platform(text: str) -> str:
    return _code(text, PLATFORM_CODES)


def _source(text: str) -> str:
    """A platform, or `forms` (sync and backfill read the forms folder too)."""
    return _code(text, SOURCE_CODES)


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
    talk = cli.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="only the result and errors")
    talk.add_argument(
        "-v", "--verbose", action="store_true", help="every step message as well as progress"
    )
    commands = cli.add_subparsers(dest="command", required=True)

    sync = commands.add_parser("sync", help="pull, process and load one year")
    sync.add_argument("--year", type=_year, default=None, help="default: the current year")
    sync.add_argument("--platform", type=_source, action="append", help="repeatable")
    _accept_withdrawals(sync)

    backfill = commands.add_parser("backfill", help="the same over a range of years, as one run")
    backfill.add_argument("--years", type=_years, required=True, help="e.g. 2018-2021")
    backfill.add_argument("--platform", type=_source, action="append", help="repeatable")
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

    explain = commands.add_parser(
        "explain", help="one person's hours, records and title eligibility, from the ledger"
    )
    explain.add_argument("id_number", help="any form C1 accepts (15 digits, lower-case x)")
    explain.add_argument("--year", type=_year, default=None, help="default: every year")
    explain.add_argument("--json", action="store_true", help="JSON for machines")

    report = commands.add_parser(
        "report", help="the compliance report of a year: HTML page and CSV figures"
    )
    report.add_argument("--year", type=_year, required=True)
    forms = commands.add_parser("forms", help="unit registration forms (FORMS.md)")
    forms_commands = forms.add_subparsers(dest="forms_command", required=True)
    check = forms_commands.add_parser(
        "check", help="validate one unit's file offline and show the 结果/原因 it would get"
    )
    check.add_argument("path", type=Path, help="the unit's <unit>.xlsx")
    check.add_argument("--year", type=_year, default=None, help="default: the file's folder name")
    check.add_argument(
        "--register", type=Path, default=None, help="default: 备案登记.xlsx beside it"
    )
    check.add_argument("--out", type=Path, default=None, help="also write the result workbook here")

    demo = commands.add_parser("demo", help="the main job on the embedded default")
    demo.add_argument("--records", type=int, default=DEMO_RECORDS)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(platform=None, accept_withdrawals=[])
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from pipelines.progress import configure_logging, log_file
    from pipelines.resources import data_dir

    args.mode = "quiet" if args.quiet else "verbose" if args.verbose else "normal"
    args.log = log_file(data_dir()) if args.command in RUN_COMMANDS else None
    configure_logging(args.log, args.mode)
    handlers = {
        "sync": _sync,
        "backfill": _backfill,
        "pull": _pull,
        "sandbox": _sandbox,
        "demo": _demo,
        "explain": _explain,
        "report": _report,
        "forms": _forms_check,
    }
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _sync(args: argparse.Namespace) -> int:
    return _run([args.year or current_year()], args)


def _backfill(args: argparse.Namespace) -> int:
    return _run(args.years, args, backfill=True)


def _run(years: list[int], args: argparse.Namespace, *, backfill: bool = False) -> int:
    import dagster as dg
    from dagster._core.utils import make_new_run_id

    from pipelines.late import late_records, summary_line
    from pipelines.progress import follow
    from pipelines.runs import dagster_home, launch, output_paths

    dagster_home()
    platforms, quiet = args.platform, args.mode == "quiet"
    label = str(years[0]) if len(years) == 1 else f"{years[0]}–{years[-1]}"
    if not quiet:
        print(f"xueshi: syncing {label} from {', '.join(platforms or ['all platforms'])}")
    started = time.monotonic()
    resources = {"platforms": {"attempts": args.attempts}} if args.attempts else None
    ops: dict[str, dict[str, object]] = {
        f"raw_{code}": {"accept_withdrawals": True}
        for code in args.accept_withdrawals
        if not platforms or code in platforms
    }
    instance, run_id = dg.DagsterInstance.get(), make_new_run_id()
    with follow(instance, run_id, years=years, out=sys.stdout, log_path=args.log, mode=args.mode):
        outcome = launch(
            years,
            platforms,
            instance=instance,
            resources=resources,
            run_id=run_id,
            ops=ops,
            backfill=backfill,
        )
    print(
        f"\nrun {outcome.run_id} {'succeeded' if outcome.success else 'FAILED'}"
        f" in {time.monotonic() - started:.1f} s\n"
    )
    if not outcome.summary.empty and not quiet:
        print(outcome.summary.to_string())
        print()
    for file, reason in _refused_forms(outcome.run_id).items():
        print(f"forms: {file}.xlsx refused: {reason}")
    late = summary_line(late_records(instance, outcome.run_id))
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
        print(f"detailed log: {args.log}", file=sys.stderr)
        return 1
    if not quiet:
        for name, path in output_paths().items():
            print(f"{name:>16}: {path}")
    print(f"    detailed log: {args.log}")
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


def _explain(args: argparse.Namespace) -> int:
    from pipelines.answers import UnknownPerson, person_answer, render_text
    from pipelines.assets.ledger import employer_types
    from pipelines.resources import Database
    from pipelines.store import Store

    store = Store.from_url(Database().resolved_url())
    try:
        store.migrate()
        answer = person_answer(
            store, args.id_number, year=args.year, employer_types=employer_types()
        ).as_dict()
    except UnknownPerson as exc:
        print(f"explain: {exc}", file=sys.stderr)
        return 1
    finally:
        store.dispose()
    print(json.dumps(answer, ensure_ascii=False, indent=2) if args.json else render_text(answer))
    return 0


def _report(args: argparse.Namespace) -> int:
    from pipelines.report import build_report
    from pipelines.resources import Database, ProvincialOutput
    from pipelines.store import Store

    store = Store.from_url(Database().resolved_url())
    try:
        store.migrate()
        found, page = build_report(store, args.year, ProvincialOutput().path())
    finally:
        store.dispose()
    people, compliant = int(found.cities["people"].sum()), int(found.cities["compliant"].sum())
    if not people:
        print(f"report: no hours for {args.year} yet (run `xueshi sync --year {args.year}`)")
    else:
        print(f"{args.year}: {people} people, {compliant / people:.1%} compliant (R1)")
        print(
            found.cities[["city", "people", "compliant", "compliant_share"]].to_string(index=False)
        )
    print(f"report: {page}\nfigures: {page.parent}/*.csv")
    return 0


def _refused_forms(run_id: str) -> dict[str, str]:
    """The form files this run refused (`year/unit` → reason), from raw_forms' metadata."""
    import dagster as dg

    from schemas.platforms import FORMS

    event = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey(f"raw_{FORMS}"))
    if event is None or event.run_id != run_id or event.asset_materialization is None:
        return {}
    refused = event.asset_materialization.metadata.get("refused")
    return dict(refused.value) if refused is not None else {}


def _forms_check(args: argparse.Namespace) -> int:
    """The rules on one file alone: caps and duplicates against platform records, which the
    file cannot show, are applied at sync. Prints 序号, 结果 and 原因 only (no ID numbers)."""
    from connectors import forms
    from pipelines.forms import result_rows, write_result
    from pipelines.rules import apply_rules

    path: Path = args.path
    year = args.year or (int(path.parent.name) if path.parent.name.isdigit() else current_year())
    try:
        data = path.read_bytes()
        rows = forms.read_form(data)
    except (OSError, forms.FormRefused) as exc:
        print(f"{path.name}: refused: {exc}", file=sys.stderr)
        return 1
    register_file = args.register or path.parent / forms.REGISTER_FILE
    try:
        register = forms.read_register(register_file.read_bytes())
    except (OSError, forms.FormRefused) as exc:
        print(f"{register_file.name}: no filing register ({exc}): trainings count as unfiled")
        register = forms.empty_register()
    form = forms.FormFile(path.stem, year, path, hashlib.sha256(data).hexdigest())
    records = forms.form_records(rows, form, register=register)
    frame = result_rows(rows, apply_rules(records).completion, form)
    for row in frame[["序号", "结果", "原因"]].itertuples(index=False):
        print("\t".join(row))
    counts = frame["结果"].value_counts()
    print(f"{path.name}: {len(frame)} rows, " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if args.out is not None:
        write_result(args.out, frame)
        print(f"result workbook → {args.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pipelines.resources import FormsFolder
    from pipelines.runs import dagster_home
    from sandbox.generator import generate
    from sandbox.generator.forms import YEAR, forms_world
    from sandbox.server import Sandbox

    home = dagster_home()
    print(f"xueshi demo: generating {args.records} records and starting the sandbox", flush=True)
    dataset = generate(records=args.records, seed=args.seed)
    forms = FormsFolder().path()
    forms_world(dataset).write(forms)
    print(f"xueshi demo: unit registration forms for {YEAR} in {forms}", flush=True)
    with Sandbox(dataset, port=0) as sandbox:
        os.environ.update(sandbox.env())
        code = _run(list(range(FIRST_YEAR, current_year() + 1)), args)
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
