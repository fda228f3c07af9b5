"""Hand-made served frames and a running sandbox, for the server tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import pandas as pd

from sandbox.families import SERVED_COLUMNS
from sandbox.faults import Faults
from sandbox.server import Sandbox
from schemas.platforms import PLATFORMS
from schemas.raw import RAW_DTYPES, TZ

SERVED_DTYPES: dict[str, str] = {
    **{c: t for c, t in RAW_DTYPES.items() if c in SERVED_COLUMNS},
    "record_key": "str",
    "epoch": "int64",
    "wire_hours": "str",
    "wire_id_numeric": "bool",
    "hidden_until_paged": "bool",
}
LABELS = {
    "yx": "公需科目",
    "zjp": "公需课",
    "tyjrp": "公需",
    "treewises": "PUBLIC",
    "lllnet": "公需科目",
    "spa": "公需",
    "huaxue": "公需",
}
WIRE_HOURS = {"tyjrp": "90", "huaxue": "2学时"}  # 2 学时 as each family writes them
RAW_ID = "370902198801011234"


def source_key(code: str, number: int) -> str:
    """A record id the way the family shapes it (spa ids are integers, treewises `c_…`)."""
    family = PLATFORMS[code].family
    return {"spa": str(1000 + number), "treewises": f"c_{number:05d}"}.get(
        family, f"{code}-{number:05d}"
    )


def record(code: str, number: int, **overrides: Any) -> dict[str, Any]:
    """A served record of `code`: passed, 2 学时, completed 2022-05-03 08:00 plus `number` hours."""
    family = PLATFORMS[code].family
    completed = pd.Timestamp("2022-05-03 08:00", tz=TZ) + pd.Timedelta(hours=number)
    key = source_key(code, number)
    values: dict[str, Any] = {
        "platform": code,
        "source_key": key,
        "raw_id": RAW_ID,
        "name": f"张{number}",
        "employer": "泰安市第一中学",
        "course_code": f"K{number:03d}",
        "course_title": f"课程{number}",
        "category_label": LABELS[family],
        "hours": 2.0,
        "completed_at": completed,
        "passed": True,
        "score": 85.0,
        "certificate_no": f"CERT{number:04d}",
        "makeup": False,
        "makeup_year": None,
        "updated_at": completed + pd.Timedelta(minutes=30),
        "withdrawn": False,
        "pull_year": 2022,
        "record_key": f"{code}:{key}",
        "epoch": 0,
        "wire_hours": WIRE_HOURS.get(family, "2.0"),
        "wire_id_numeric": False,
        "hidden_until_paged": False,
    }
    values.update(overrides)
    return values


def served_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A frame with exactly the columns and dtypes of `Dataset.served`."""
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in SERVED_DTYPES.items()})
    return pd.DataFrame(list(rows), columns=list(SERVED_DTYPES)).astype(SERVED_DTYPES)


def records(code: str, count: int, **overrides: Any) -> pd.DataFrame:
    return served_frame([record(code, n, **overrides) for n in range(count)])


class FakeDataset:
    """Frames per platform and epoch; a later epoch than given repeats the last one."""

    def __init__(self, frames: Mapping[str, Sequence[pd.DataFrame]]) -> None:
        self.frames = frames

    def served(self, platform: str, epoch: int) -> pd.DataFrame:
        epochs = self.frames.get(platform, [])
        return epochs[min(epoch, len(epochs) - 1)] if epochs else served_frame([])


class Clock:
    """A settable clock: token expiry, ts checks and rate limits tested without sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextmanager
def running(
    frames: Mapping[str, Sequence[pd.DataFrame]], faults: Faults | str = "none", **kwargs: Any
) -> Iterator[Sandbox]:
    """A sandbox on a free port serving `frames` (platform → one frame per epoch)."""
    with Sandbox(FakeDataset(frames), port=0, faults=faults, **kwargs) as sandbox:
        yield sandbox


def client(sandbox: Sandbox, code: str, **kwargs: Any) -> httpx.Client:
    """A plain httpx client on the platform's base URL (loopback HTTP: no TLS context to load)."""
    return httpx.Client(
        base_url=sandbox.base_url(code), **{"timeout": 5.0, "verify": False, **kwargs}
    )
