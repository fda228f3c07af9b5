"""Unit registration forms in the pipeline (FORMS.md): load a year's files as raw records, and
give each unit its result workbook. Dagster-free; the assets in `pipelines.assets` are thin.

Loading a year: read the filing register, then every unit's file; store the rows of each
readable file (a file already stored at the same version stores nothing new: the rows are the
same), withdraw the rows of files replaced or removed since, and report refused files with
their reasons. A unit's city comes from the platform records of the same employer (the city
most of them name), else `unknown`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import xlsxwriter

from connectors import forms
from connectors.forms import FormFile, FormRefused
from pipelines.provincial import safe_name
from pipelines.rules.clean import employer_key
from pipelines.rules.forms import result_columns
from pipelines.store import Store
from schemas.platforms import FORMS, PLATFORMS
from schemas.raw import TZ


@dataclass(frozen=True)
class RegisterRead:
    """A year's filing register as read: its entries, its version, or why it was refused."""

    year: int
    entries: pd.DataFrame
    sha256: str | None = None
    refused: str | None = None


def read_year_register(folder: Path, year: int) -> RegisterRead:
    """The year's `备案登记.xlsx`; a missing or refused register files nothing (F2)."""
    path = forms.register_path(folder, year)
    if not path.exists():
        return RegisterRead(year, forms.empty_register(), refused="no register file")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    try:
        return RegisterRead(year, forms.read_register(data), sha)
    except FormRefused as exc:
        return RegisterRead(year, forms.empty_register(), sha, str(exc))


@dataclass
class FormsLoad:
    """What loading one year's forms did, for the asset's metadata and the CLI summary."""

    year: int
    files: int = 0
    rows: int = 0
    withdrawn: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    """Unit → reason, for files refused whole."""
    stored: list[pd.DataFrame] = field(default_factory=list)


def unit_cities(store: Store) -> dict[str, str]:
    """Employer matching key → the city most of its platform records name (ties: first)."""
    sql = (
        "SELECT employer, platform, COUNT(*) FROM raw_record "
        f"WHERE platform <> '{FORMS}' AND NOT withdrawn GROUP BY employer, platform"
    )
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(sql).all()
    if not rows:
        return {}
    frame = pd.DataFrame(rows, columns=["employer", "platform", "n"]).dropna()
    frame = frame.assign(
        key=employer_key(frame["employer"].astype("str")),
        city=frame["platform"].map({c: s.city for c, s in PLATFORMS.items()}),
    )
    counts = frame.groupby(["key", "city"], as_index=False)["n"].sum()
    best = counts.sort_values(["key", "n", "city"], ascending=[True, False, True])
    return dict(best.drop_duplicates("key")[["key", "city"]].itertuples(index=False))


def city_of(unit: str, cities: Mapping[str, str]) -> str:
    key = employer_key(pd.Series([unit], dtype="str")).iloc[0]
    return cities.get(key, forms.UNKNOWN_CITY)


def load_year(
    store: Store,
    folder: Path,
    year: int,
    *,
    register: pd.DataFrame,
    cities: Mapping[str, str],
    pulled_at: pd.Timestamp | None = None,
) -> FormsLoad:
    """Store a year's form rows and withdraw those of replaced or removed files."""
    pulled_at = pulled_at or pd.Timestamp.now(tz=TZ)
    load = FormsLoad(year)
    known = store.known_keys(FORMS, year)
    parts = forms.key_parts(pd.Series(sorted(known), dtype="str"))
    stored_versions = dict(zip(parts["unit"], parts["version"], strict=True))
    live: dict[str, str] = {}
    for form in forms.form_files(folder, year):
        load.files += 1
        try:
            rows = forms.read_form(form.path.read_bytes())
        except FormRefused as exc:
            load.refused[form.unit] = str(exc)
            if form.unit in stored_versions:
                live[form.unit] = stored_versions[form.unit]
            continue
        live[form.unit] = form.version
        records = forms.form_records(
            rows, form, register=register, city=city_of(form.unit, cities), pulled_at=pulled_at
        )
        store.store_batch(FORMS, year, records, {"file": form.path.name, "sha256": form.sha256})
        load.rows += len(records)
        load.stored.append(records)
    gone = forms.withdrawals(known, live, year, pulled_at)
    if len(gone):
        store.store_batch(FORMS, year, gone, {"withdrawn": len(gone)})
        load.withdrawn = len(gone)
    return load


# --- result workbooks ----------------------------------------------------------------------

ReadLedger = Callable[[int], pd.DataFrame]
"""Reads the ledger rows of the year's form records (`RESULT_LEDGER_COLUMNS`)."""
RESULT_LEDGER_COLUMNS = ("record_key", "state", "reason", "hours_credited", "hours_trimmed")
RESULT_HEADER: tuple[str, ...] = (*forms.HEADER, "结果", "原因")
RESULTS_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ResultFile:
    unit: str
    year: int
    path: Path
    rows: int
    written: bool


def results_folder(out_dir: Path, year: int) -> Path:
    return out_dir / "provincial" / str(year) / "forms"


def result_rows(rows: pd.DataFrame, ledger: pd.DataFrame, form: FormFile) -> pd.DataFrame:
    """The unit's rows as submitted plus 结果 and 原因, from the ledger rows of its version."""
    keys = f"{FORMS}:{form.unit}:{form.year}:" + rows["序号"] + f":{form.version}"
    results = result_columns(ledger.set_index("record_key").reindex(keys.to_numpy()))
    return rows.assign(结果=results["结果"].to_numpy(), 原因=results["原因"].to_numpy())


def write_result(path: Path, frame: pd.DataFrame) -> None:
    """One result workbook: every cell written as text, so nothing is evaluated (C5)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.tmp.xlsx")
    with xlsxwriter.Workbook(temporary, {"constant_memory": True}) as book:
        text = book.add_format({"num_format": "@"})
        sheet = book.add_worksheet(forms.SHEET)
        sheet.write_row(0, 0, RESULT_HEADER)
        for r, values in enumerate(frame[list(RESULT_HEADER)].itertuples(index=False), start=1):
            for c, value in enumerate(values):
                if isinstance(value, str) and value:
                    sheet.write_string(r, c, value, text)
    os.replace(temporary, path)


def update_results(
    folder: Path, out_dir: Path, years: Sequence[int], read_ledger: ReadLedger
) -> list[ResultFile]:
    """Write `provincial/<year>/forms/<unit>.xlsx` for every readable unit file whose version
    or outcome changed since the folder's manifest; remove the results of vanished files."""
    done: list[ResultFile] = []
    for year in years:
        target = results_folder(out_dir, year)
        old = _read_manifest(target)
        files = forms.form_files(folder, year)
        ledger = read_ledger(year)
        entries: dict[str, dict[str, str]] = {}
        for form in files:
            try:
                rows = forms.read_form(form.path.read_bytes())
            except FormRefused:
                continue
            frame = result_rows(rows, ledger, form)
            digest = hashlib.sha256(
                pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
            ).hexdigest()
            path = target / f"{safe_name(form.unit)}.xlsx"
            entry = {"file": path.name, "sha256": form.sha256, "digest": digest}
            changed = old.get(form.unit) != entry or not path.exists()
            if changed:
                write_result(path, frame)
            entries[form.unit] = entry
            done.append(ResultFile(form.unit, year, path, len(frame), changed))
        for unit, entry in old.items():
            if unit not in entries:
                (target / entry["file"]).unlink(missing_ok=True)
        if entries or old:
            target.mkdir(parents=True, exist_ok=True)
            text = json.dumps(entries, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
            (target / RESULTS_MANIFEST).write_text(text, encoding="utf-8")
    return done


def _read_manifest(target: Path) -> dict[str, dict[str, str]]:
    try:
        document = json.loads((target / RESULTS_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}
