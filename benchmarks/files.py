"""Time the provincial files stage alone on a synthetic ledger of the 1M-record shape.

`python -m benchmarks.files --rows 700000` builds a completion ledger and hours bank with about
600 employers, 10 years, 2/7 of a person-year per credited hours row (1M records give ≈700k hours
rows and ≈200k person-years) and times three runs of `write_provincial` into a fresh folder:
the first write, a rerun with nothing changed, and a rerun after 1% of the credited rows changed
(hours and `last_seen_at`, as a nightly sync would). It prints seconds, rows/s, files rewritten
and the process's peak RSS; it asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.provincial import write_provincial
from schemas.ledger import COMPLETION_DTYPES, HOURS_BANK_DTYPES
from schemas.platforms import PLATFORMS
from schemas.raw import TZ, conform

EMPLOYERS = 600
YEARS = tuple(range(2016, 2026))
NOT_CREDITED_SHARE = 0.1


def synthetic(rows: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A ledger with `rows` credited hours rows (plus 10% not credited) and its hours bank."""
    rng = np.random.default_rng(seed)
    person_years = max(1, rows * 2 // 7)
    people = max(1, person_years // 3)
    person = rng.integers(0, people, person_years)
    year = rng.choice(YEARS, person_years)
    bank = pd.DataFrame({"person": person, "year": year}).drop_duplicates(ignore_index=True)
    seq = pd.Series(np.arange(people))
    ids = (
        "3709"
        + (seq % 90 + 10).astype("str")
        + (1960 + seq % 40).astype("str")
        + (seq % 12 + 1).astype("str").str.zfill(2)
        + (seq % 28 + 1).astype("str").str.zfill(2)
        + (seq // 1000 % 1000).astype("str").str.zfill(3)
        + "X"
    )
    employer_names = pd.Series([f"泰安市第{i}中学" for i in range(EMPLOYERS)], dtype="str")
    employer = rng.integers(0, EMPLOYERS, len(bank))
    hours_bank = pd.DataFrame(
        {
            "id_number": ids.to_numpy()[bank["person"]],
            "year": bank["year"],
            "name": pd.Series(np.arange(len(bank)) % 5000).map(lambda i: f"张{i}"),
            "employer": employer_names.to_numpy()[employer],
            "city": "taian",
            "public_hours": 30.0,
            "professional_hours": 60.0,
            "total_hours": 90.0,
            "makeup_hours": 0.0,
            "public_short": 0.0,
            "professional_short": 0.0,
            "compliant": True,
            "binding": True,
        }
    )
    total = int(rows * (1 + NOT_CREDITED_SHARE))
    owner = rng.integers(0, len(bank), total)
    credited = np.arange(total) < rows
    platforms = np.array(list(PLATFORMS))
    start = pd.to_datetime(hours_bank["year"].to_numpy()[owner].astype("str")).tz_localize(TZ)
    completed = start + pd.to_timedelta(rng.integers(0, 364 * 86_400, total), unit="s")
    keys = pd.Series(np.arange(total)).astype("str")
    platform = pd.Series(platforms[rng.integers(0, len(platforms), total)], dtype="str")
    completion = pd.DataFrame(
        {
            "record_key": platform + ":" + keys,
            "platform": platform,
            "city": "taian",
            "id_number": hours_bank["id_number"].to_numpy()[owner],
            "name": hours_bank["name"].to_numpy()[owner],
            "employer": hours_bank["employer"].to_numpy()[owner],
            "course_title": "课程" + pd.Series(rng.integers(0, 3000, total)).astype("str"),
            "course_key": "",
            "subject": np.where(rng.random(total) < 0.3, "public", "professional"),
            "mode": "training",
            "completed_at": completed,
            "credited_year": hours_bank["year"].to_numpy()[owner],
            "makeup": rng.random(total) < 0.05,
            "hours_reported": 2.0,
            "hours_credited": np.where(credited, rng.integers(1, 30, total) / 10 * 5, 0.0),
            "hours_trimmed": 0.0,
            "certificate_no": "C" + keys.str.zfill(9),
            "state": np.where(credited, "credited", "not_credited"),
            "reason": None,
            "merged_into": None,
            "first_seen_at": pd.Timestamp("2025-12-01 02:00", tz=TZ),
            "last_seen_at": pd.Timestamp("2025-12-01 02:00", tz=TZ),
        }
    )
    return conform(completion, COMPLETION_DTYPES), conform(hours_bank, HOURS_BANK_DTYPES)


def changed(completion: pd.DataFrame, share: float = 0.01, seed: int = 11) -> pd.DataFrame:
    """`share` of the credited rows with other hours, seen again by a later sync."""
    rng = np.random.default_rng(seed)
    credited = np.flatnonzero((completion["state"] == "credited").to_numpy())
    picked = rng.choice(credited, int(len(credited) * share), replace=False)
    result = completion.copy()
    column = result.columns.get_loc
    result.iloc[picked, column("hours_credited")] += 0.5
    result.iloc[picked, column("last_seen_at")] = pd.Timestamp("2025-12-02 02:00", tz=TZ)
    return result


def peak_rss_mb() -> float:
    """This process's peak RSS so far (the synthetic frames included)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stamps(root: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*.xlsx")}


def timed(label: str, completion: pd.DataFrame, bank: pd.DataFrame, out: Path) -> None:
    before = stamps(out)
    started = time.perf_counter()
    manifest = write_provincial(completion, bank, out)
    seconds = time.perf_counter() - started
    after = stamps(out)
    rewritten = sum(1 for p, s in after.items() if before.get(p) != s)
    rows = manifest.row_count
    print(
        f"{label:<14} {seconds:8.2f} s  {rows / seconds:10,.0f} hours rows/s  "
        f"{rewritten:6d}/{manifest.file_count} files written  peak RSS {peak_rss_mb():7.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=700_000, help="credited hours rows")
    parser.add_argument("--out", type=Path, help="output folder (default: a temporary one)")
    args = parser.parse_args()
    completion, bank = synthetic(args.rows)
    print(
        f"{len(completion):,} ledger rows, {len(bank):,} person-years, "
        f"{bank['employer'].nunique()} employers, {bank['year'].nunique()} years; "
        f"peak RSS after building {peak_rss_mb():.0f} MB"
    )
    with tempfile.TemporaryDirectory(dir=args.out) as folder:
        out = Path(folder)
        timed("first write", completion, bank, out)
        timed("unchanged", completion, bank, out)
        timed("1% changed", changed(completion), bank, out)


if __name__ == "__main__":
    main()
