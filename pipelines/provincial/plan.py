"""What a run writes: per year, the workbooks whose rows changed, then `manifest.json`.

One process. A thread reads the next batch of rows from the database while the last one is
written (`read_ahead`, one batch ahead: the database's own work then overlaps the XML and zlib).
Two worker processes writing the years made the writing 1.7 times faster in isolation, but cost
0.5 GB more at peak, and `spawn` re-imports the caller's main module in each (1.8 s for
`benchmarks.run`); two threads writing measured no faster on the shared 2-core machine.

Skipping. Every file has a digest of its cells (vectorized row hashes, combined per file with
their positions), its creation time, `FORMAT_VERSION` and a fingerprint of the fixed parts and
the zlib build, kept in `manifest.json`. A rerun writes only the files whose digest changed or
whose file is missing or of another size, and removes the files its manifest no longer lists.
A workbook's creation date is the newest completion among its rows (the data's own time, not
the clock, nor the time records were last seen), so the same rows write byte-identical files
with the same SHA-256: a night that re-sights every record of the year but changes one
employer's rows rewrites that employer's files only.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from connectors.pull import read_ahead
from pipelines.crash import crash_point
from pipelines.memory import release_memory
from pipelines.provincial import xlsx
from pipelines.provincial.atomic import fsync, write_files
from pipelines.provincial.names import file_stems
from pipelines.provincial.template import (
    HOURS_HEADER,
    LEARNERS_HEADER,
    LEDGER_COLUMNS,
    UNKNOWN_EMPLOYER,
    hours_rows,
    learner_rows,
)
from pipelines.provincial.xlsx import Planned, Sheets, format_version
from schemas.platforms import PLATFORMS, PlatformSpec

HOURS = "hours"
LEARNERS = "learners"


@dataclass(frozen=True)
class ProvincialFile:
    year: int
    kind: str  # "hours" or "learners"
    employer: str
    path: Path
    rows: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What one run wrote: every workbook, and each year's manifest.json."""

    out_dir: Path
    files: tuple[ProvincialFile, ...]
    manifests: Mapping[int, Path]
    compared: tuple[int, ...] = ()
    """The years whose files were compared with the ledger and written where they differed."""

    def rows(self, kind: str, year: int | None = None) -> int:
        return sum(f.rows for f in self.files if f.kind == kind and year in (None, f.year))

    @property
    def file_count(self) -> int:
        return len(self.files)

    @property
    def row_count(self) -> int:
        """Hours rows: the credited records delivered to the province."""
        return self.rows(HOURS)

    @property
    def years(self) -> list[int]:
        return sorted(self.manifests)


def write_provincial(
    completion: pd.DataFrame,
    hours_bank: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    platforms: Mapping[str, PlatformSpec] = PLATFORMS,
    *,
    sources: Mapping[int, str] | None = None,
) -> Manifest:
    """Write `provincial/<year>/{hours,learners}/<employer>.xlsx` and `manifest.json` per year.

    Years are those of `sources` when given (each manifest then records its year's source),
    else those of the hours bank and of the credited records; a year with no credited hours
    gets an empty manifest, and its stale workbooks are removed. Files whose digest is in the
    year's previous manifest and that are still on disk are left untouched.
    """
    root = Path(out_dir) / "provincial"
    hours = hours_rows(completion, hours_bank, platforms)
    learners = learner_rows(hours)
    years = (
        sorted(sources)
        if sources is not None
        else sorted({int(y) for y in hours_bank["year"]} | {int(y) for y in hours["year"]})
    )
    done = [
        _write_year(
            _Written.read(root / str(y)),
            y,
            file_stems(_in_year(hours, y)["_file"]),
            [(_in_year(hours, y), _in_year(learners, y))],
            None if sources is None else sources[y],
        )
        for y in years
    ]
    return Manifest(
        Path(out_dir),
        tuple(f for year_files, _ in done for f in year_files),
        {year: manifest for year, (_, manifest) in zip(years, done, strict=True)},
        tuple(years),
    )


class LedgerFiles(Protocol):
    """What the files read of the ledger, a year and a few files at a time, so that memory
    holds one batch of employers' rows, never a year (`pipelines.store.Store` is one)."""

    def file_sizes(
        self, year: int, unknown: str, files: Collection[str] | None = None
    ) -> Mapping[str, int]:
        """Hours rows per file of the year (or of those of `files` with rows): employer, or
        `unknown` for none."""
        ...

    def file_rows(
        self, year: int, files: Collection[str], unknown: str, columns: Collection[str]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The credited ledger rows (their `columns`) and the bank rows of those files."""
        ...

    def changed_files(self, year: int, since: int) -> set[str] | None:
        """Employers (`''`: none) whose file of `year` changed after write `since`; None when
        every file must be compared."""
        ...


def update_provincial(
    ledger: LedgerFiles,
    out_dir: str | os.PathLike[str],
    writes: Mapping[int, int],
    platforms: Mapping[str, PlatformSpec] = PLATFORMS,
) -> Manifest:
    """Bring the files up to date with a ledger whose years last changed in `writes` (the
    store's `output_years`): rewrite the years whose manifest names another write or another
    writer, or whose files are missing or resized, and leave the others unread. A year is read
    in batches of about `xlsx.BATCH_ROWS` rows, whole employers each.

    A night that changes one year's records reads that year's changed files only: the
    employer-years the store says its writes since the manifest's touched (`changed_files`);
    the other files stay as the manifest lists them.
    """
    root = Path(out_dir) / "provincial"
    version = writer_version(platforms)
    sources = {year: f"{write}/{version}" for year, write in writes.items()}
    written = {year: _Written.read(root / str(year)) for year in sources}
    current = {
        year: files
        for year, source in sources.items()
        if (files := _current(written[year], year, source)) is not None
    }
    done = {}
    for year, source in sorted(sources.items()):
        if year in current:
            continue
        compare = _to_compare(written[year], ledger, year, version)
        sizes = ledger.file_sizes(year, UNKNOWN_EMPLOYER, compare)
        kept = _unchanged(written[year], compare)
        stems = file_stems({*sizes, *kept})
        renamed = {e for e, entries in kept.items() if not _named(entries, stems[e])}
        if renamed:  # a new employer's name now clashes with theirs: rewrite under the new name
            sizes |= ledger.file_sizes(year, UNKNOWN_EMPLOYER, renamed)
            kept = {e: entries for e, entries in kept.items() if e not in renamed}
        batches = read_ahead(_batches(ledger, year, sizes, platforms), depth=1)
        done[year] = _write_year(written[year], year, stems, batches, source, kept)
        release_memory()
    return Manifest(
        Path(out_dir),
        tuple(f for files in current.values() for f in files)
        + tuple(f for files, _ in done.values() for f in files),
        {year: root / str(year) / "manifest.json" for year in current}
        | {year: manifest for year, (_, manifest) in done.items()},
        tuple(done),
    )


def _batches(
    ledger: LedgerFiles, year: int, sizes: Mapping[str, int], platforms: Mapping[str, PlatformSpec]
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """The year's hours and learner rows, whole files at a time, about `xlsx.BATCH_ROWS` each."""
    batch: list[str] = []
    rows = 0
    for file in sorted(sizes):
        if batch and rows + sizes[file] > xlsx.BATCH_ROWS:
            yield _rows_of(ledger, year, batch, platforms)
            batch, rows = [], 0
        batch.append(file)
        rows += sizes[file]
    if batch:
        yield _rows_of(ledger, year, batch, platforms)


def _rows_of(
    ledger: LedgerFiles, year: int, files: list[str], platforms: Mapping[str, PlatformSpec]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    credited, bank = ledger.file_rows(year, files, UNKNOWN_EMPLOYER, LEDGER_COLUMNS)
    hours = hours_rows(credited, bank, platforms)
    return hours, learner_rows(hours)


def writer_version(platforms: Mapping[str, PlatformSpec] = PLATFORMS) -> str:
    """What the files depend on besides the ledger: this writer's format, its fixed parts and
    zlib, and the organizers named in `主办单位`."""
    organizers = json.dumps(
        sorted((code, spec.organizer) for code, spec in platforms.items()), ensure_ascii=False
    )
    text = f"{format_version()}|{organizers}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _current(written: _Written, year: int, source: str) -> list[ProvincialFile] | None:
    """The year's files as its manifest lists them, when it was written from `source` and
    every file is still on disk at its size; None when the year must be compared again."""
    if written.document.get("source") != source:
        return None
    entries = written.entries.values()
    if not all(written.intact(e) for e in entries):
        return None
    try:
        return [written.file(year, e) for e in entries]
    except (KeyError, TypeError, ValueError):
        return None


def _to_compare(written: _Written, ledger: LedgerFiles, year: int, version: str) -> set[str] | None:
    """The employers whose files must be compared with the ledger: those the writes since the
    manifest's touched, and those whose files are not on disk as the manifest lists them;
    None when every file must be (another writer, or a write that replaced everything)."""
    write, _, written_by = str(written.document.get("source", "")).partition("/")
    if written_by != version or not write.isdigit():
        return None
    changed = ledger.changed_files(year, int(write))
    if changed is None:
        return None
    broken = {e for e, entries in written.by_employer.items() if not _whole(written, entries)}
    return {e or UNKNOWN_EMPLOYER for e in changed} | broken


def _unchanged(written: _Written, compare: set[str] | None) -> dict[str, list[Mapping[str, Any]]]:
    """The manifest entries (hours and learners) of the employers not to compare: kept unread."""
    if compare is None:
        return {}
    return {
        employer: [entries[HOURS], entries[LEARNERS]]
        for employer, entries in written.by_employer.items()
        if employer not in compare
    }


def _whole(written: _Written, entries: Mapping[str, Mapping[str, Any]]) -> bool:
    """Both of an employer's files are listed and on disk at their size."""
    return set(entries) == {HOURS, LEARNERS} and all(written.intact(e) for e in entries.values())


def _named(entries: Sequence[Mapping[str, Any]], stem: str) -> bool:
    """The entries' files are under today's name for their employer."""
    return all(e.get("path") == f"{e.get('kind')}/{stem}.xlsx" for e in entries)


def _in_year(frame: pd.DataFrame, year: int) -> pd.DataFrame:
    """The year's rows of a frame sorted by year."""
    first, last = np.searchsorted(frame["year"].to_numpy(), [year, year + 1])
    return frame.iloc[first:last]


def _write_year(
    written: _Written,
    year: int,
    stems: Mapping[str, str],
    batches: Iterable[tuple[pd.DataFrame, pd.DataFrame]],
    source: str | None,
    kept: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> tuple[list[ProvincialFile], Path]:
    """Write one year's changed workbooks batch by batch (hours and learner rows of whole
    files), then its manifest (with the `kept` files' entries as they were), and remove its
    stale files."""
    folder = written.folder
    year_files: list[ProvincialFile] = []
    sizes: dict[Path, int] = {}
    digests: dict[Path, str] = {}
    for entries in (kept or {}).values():
        for e in entries:
            kept_file = written.file(year, e)
            year_files.append(kept_file)
            sizes[kept_file.path], digests[kept_file.path] = int(e["bytes"]), str(e["digest"])
    for hours, learners in batches:
        kinds = (
            Sheets.of(HOURS, HOURS_HEADER, hours),
            Sheets.of(LEARNERS, LEARNERS_HEADER, learners),
        )
        planned = _plan(written, kinds, stems)
        made = write_files(folder, [p for p in planned if p.entry is None])
        for p in planned:
            year_files.append(
                ProvincialFile(
                    year,
                    p.sheets.kind,
                    p.sheets.employers[p.index],
                    p.path,
                    p.rows,
                    str(p.entry["sha256"]) if p.entry else made[p.path][0],
                )
            )
            sizes[p.path] = int(p.entry["bytes"]) if p.entry else made[p.path][1]
            digests[p.path] = p.sheets.digests[p.index]
    manifest = _write_manifest(folder, year, year_files, digests, sizes, source)
    _remove_stale(folder, {f.path for f in year_files})
    return year_files, manifest


def _plan(written: _Written, kinds: Sequence[Sheets], stems: Mapping[str, str]) -> list[Planned]:
    """The batch's files, each with its old manifest entry when digest and size still match."""
    planned = []
    for sheets in kinds:
        for index in range(len(sheets.employers)):
            name = f"{sheets.kind}/{stems[sheets.employers[index]]}.xlsx"
            entry = written.entries.get(name)
            keep = (
                entry is not None
                and entry.get("digest") == sheets.digests[index]
                and written.intact(entry)
            )
            planned.append(Planned(sheets, index, written.folder / name, entry if keep else None))
    return planned


# --- manifest.json ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Written:
    """A year's folder as the last run left it: its manifest and the sizes of its files on
    disk, read once and asked by every step of the plan."""

    folder: Path
    document: Mapping[str, Any]
    entries: Mapping[str, Mapping[str, Any]]
    """The manifest's file entries by path (`hours/<stem>.xlsx`)."""
    sizes: Mapping[str, Mapping[str, int]]
    """Bytes of each file on disk, by kind folder and name."""

    @classmethod
    def read(cls, folder: Path) -> _Written:
        document = _manifest(folder)
        sizes = {kind: _sizes(folder / kind) for kind in (HOURS, LEARNERS)}
        return cls(folder, document, _manifest_entries(document), sizes)

    @cached_property
    def by_employer(self) -> dict[str, dict[str, Mapping[str, Any]]]:
        """The manifest's entries by employer and kind (asked by two steps of the plan)."""
        found: dict[str, dict[str, Mapping[str, Any]]] = {}
        for entry in self.entries.values():
            found.setdefault(str(entry.get("employer")), {})[str(entry.get("kind"))] = entry
        return found

    def intact(self, entry: Mapping[str, Any]) -> bool:
        """The entry's file is on disk at the size its manifest lists."""
        kind, _, name = str(entry.get("path", "")).partition("/")
        return self.sizes.get(kind, {}).get(name) == entry.get("bytes")

    def file(self, year: int, entry: Mapping[str, Any]) -> ProvincialFile:
        """The file an entry lists, as this run reports it."""
        return ProvincialFile(
            year,
            str(entry["kind"]),
            str(entry["employer"]),
            self.folder / str(entry["path"]),
            int(entry["rows"]),
            str(entry["sha256"]),
        )


def _manifest(folder: Path) -> dict[str, Any]:
    """The year's manifest.json as written; empty when it is missing or unreadable."""
    try:
        document = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _manifest_entries(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A manifest's file entries by path; empty when they are not as this writer writes them."""
    try:
        return {str(e["path"]): e for e in document.get("files", [])}
    except (KeyError, TypeError):
        return {}


def _sizes(folder: Path) -> dict[str, int]:
    """Sizes of the regular files in `folder` by name; empty when it does not exist."""
    try:
        with os.scandir(folder) as entries:
            return {e.name: e.stat().st_size for e in entries if e.is_file()}
    except FileNotFoundError:
        return {}


def _write_manifest(
    folder: Path,
    year: int,
    files: Sequence[ProvincialFile],
    digests: Mapping[Path, str],
    sizes: Mapping[Path, int],
    source: str | None,
) -> Path:
    """Write manifest.json (temporary name, fsync, replace) unless it already says the same.

    `source` names the ledger write and the writer the files were compared with."""
    entries = [
        {
            "path": f.path.relative_to(folder).as_posix(),
            "kind": f.kind,
            "employer": f.employer,
            "rows": f.rows,
            "sha256": f.sha256,
            "bytes": sizes[f.path],
            "digest": digests[f.path],
        }
        for f in sorted(files, key=lambda f: (f.kind, f.path.name))
    ]
    document = {
        "year": year,
        "rows": {kind: sum(f.rows for f in files if f.kind == kind) for kind in (HOURS, LEARNERS)},
        "files": entries,
    }
    if source is not None:
        document["source"] = source
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    path = folder / "manifest.json"
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except OSError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".manifest.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        fsync(temporary)
        crash_point("manifest")
        os.replace(temporary, path)
        fsync(folder)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _remove_stale(folder: Path, keep: set[Path]) -> None:
    """Remove the files of the year's kind folders that its manifest does not list, and
    manifests a crash left under their temporary names."""
    for leftover in folder.glob(".manifest.*.tmp"):
        leftover.unlink(missing_ok=True)
    for kind in (HOURS, LEARNERS):
        for name in _sizes(folder / kind):
            if folder / kind / name not in keep:
                (folder / kind / name).unlink(missing_ok=True)
