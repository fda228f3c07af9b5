"""Every family answering every kind of nonsense, over real HTTP through a whole sync run.

One platform per family is broken with one malformed class (sandbox/malformed.py) while a
platform of another family answers well: the run fails naming the broken platform and its URL
(without a full ID number), stores nothing of the broken response, moves none of its
watermarks, finishes the healthy platform's step, and leaves the outputs as they were. Every
case runs on SQLite; every kind runs on PostgreSQL too, broken on the first family it applies
to (the store's transactions are what differs between the engines, not the parsing).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from pipelines.runs import launch
from sandbox.malformed import KINDS_BY_FAMILY
from sandbox.server import Sandbox
from schemas.platforms import PLATFORMS
from tests.conftest import fresh_postgres
from tests.trust.conftest import FAST_PLATFORMS, files, tables

YEAR = 2022
BROKEN = {
    "yx": "ta_yx",
    "zjp": "ta_zjp",
    "tyjrp": "ta_tyjrp",
    "treewises": "ta_sdty",
    "lllnet": "yt_ytu",
    "spa": "yt_naas",
    "huaxue": "yt_ytec",
}
FULL_ID = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
FIRST_FAMILY = {
    kind: next(family for family, kinds in KINDS_BY_FAMILY.items() if kind in kinds)
    for kinds in KINDS_BY_FAMILY.values()
    for kind in kinds
}
CASES = [
    pytest.param(family, kind, "sqlite", id=f"{family}-{kind}")
    for family, kinds in KINDS_BY_FAMILY.items()
    for kind in kinds
] + [
    pytest.param(
        family, kind, "postgres", id=f"postgres-{family}-{kind}", marks=pytest.mark.postgres
    )
    for kind, family in FIRST_FAMILY.items()
]


def good_sync(served: Sandbox, root: Path, url: str) -> None:
    """A good sync of YEAR from every platform into `url`: the state each case starts from."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in served.env().items():
            patch.setenv(name, value)
        patch.setenv("XUESHI_DATABASE_URL", url)
        patch.setenv("XUESHI_OUTPUT_DIR", str(root / "out"))
        patch.setenv("XUESHI_DATA_DIR", str(root / "data"))
        patch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        (root / "dagster_home").mkdir()
        outcome = launch([YEAR], instance=dg.DagsterInstance.ephemeral())
    assert outcome.success, outcome.errors


@pytest.fixture(scope="module")
def baseline(served: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("baseline")
    good_sync(served, root, f"sqlite:///{root / 'x.db'}")
    return root


@pytest.fixture(scope="module")
def postgres_baseline(
    served: Sandbox, tmp_path_factory: pytest.TempPathFactory, postgres_admin_url: str
) -> Iterator[tuple[Path, str]]:
    root = tmp_path_factory.mktemp("postgres_baseline")
    with fresh_postgres(postgres_admin_url) as url:
        good_sync(served, root, url)
        yield root, url


def copied(baseline: Path, to: Path) -> str:
    """A copy of the baseline database (SQLite's backup API: WAL included) and output files."""
    shutil.copytree(baseline / "out", to / "out")
    with sqlite3.connect(baseline / "x.db") as source, sqlite3.connect(to / "x.db") as target:
        source.backup(target)
    return f"sqlite:///{to / 'x.db'}"


@pytest.fixture
def start(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The database URL of a copy of the engine's baseline, its output files under tmp_path."""
    engine = request.node.callspec.params["engine"]
    if engine == "sqlite":
        yield copied(request.getfixturevalue("baseline"), tmp_path)
        return
    root, source = request.getfixturevalue("postgres_baseline")
    shutil.copytree(root / "out", tmp_path / "out")
    admin = request.getfixturevalue("postgres_admin_url")
    with fresh_postgres(admin, template=source.rsplit("/", 1)[1]) as url:
        yield url


@pytest.mark.parametrize(("family", "kind", "engine"), CASES)
def test_a_malformed_answer_fails_its_platform_alone_and_changes_nothing(
    family: str,
    kind: str,
    engine: str,
    served: Sandbox,
    start: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = BROKEN[family]
    healthy = "yt_samet" if family != "spa" else "ta_yx"
    url = start
    for name, value in served.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XUESHI_DATABASE_URL", url)
    monkeypatch.setenv("XUESHI_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("XUESHI_DATA_DIR", str(tmp_path / "data"))
    before_tables, before_files = tables(url), files(tmp_path / "out")
    instance = dg.DagsterInstance.ephemeral()

    served.malform(code, kind)
    try:
        outcome = launch(
            [YEAR], [code, healthy], instance=instance, resources={"platforms": FAST_PLATFORMS}
        )
    finally:
        served.malform(code, None)

    assert not outcome.success
    assert PLATFORMS[code].family == family
    [error] = outcome.errors
    assert error.startswith(f"raw_{code}: ")
    assert f"[{code}]" in error
    assert served.base_url(code) + "/" in error
    assert not FULL_ID.search(error)
    after = tables(url)
    for name in ("raw_record", "watermark"):
        assert after[name][after[name]["platform"] == code].equals(
            before_tables[name][before_tables[name]["platform"] == code]
        ), f"{name} rows of {code} changed"
    for name in ("completion", "hours_bank"):
        assert after[name].equals(before_tables[name]), f"{name} changed"
    assert files(tmp_path / "out") == before_files
    stored = {
        record.asset_key.to_user_string()
        for record in instance.get_records_for_run(
            outcome.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        if record.asset_key is not None
    }
    assert f"raw_{healthy}" in stored
