"""A pull that parses but is not believable is refused before anything of it is stored."""

from __future__ import annotations

import pandas as pd
import pytest

from connectors.core import Batch, PullRequest
from connectors.frames import raw_frame
from pipelines.cli import main
from pipelines.guards import ImplausiblePull, Limits, guarded
from schemas.platforms import load_specs
from tests.trust.conftest import Environment

SPECS = load_specs()
YEAR = 2022
NO_ACCEPT = Limits()


def records(count: int, withdrawn: int = 0) -> pd.DataFrame:
    keys = [f"k{i}" for i in range(count + withdrawn)]
    return raw_frame(
        {"source_key": keys, "withdrawn": [False] * count + [True] * withdrawn},
        platform="yt_ytec",
        pulled_at=pd.Timestamp("2026-01-01", tz="Asia/Shanghai"),
        pull_year=YEAR,
    )


def run(code: str, batches: list[Batch], held: int, limits: Limits = NO_ACCEPT, **request):
    spec = SPECS[code]
    return list(
        guarded(
            spec, PullRequest.for_year(YEAR, **request), iter(batches), held=held, limits=limits
        )
    )


def test_a_snapshot_withdrawing_more_than_the_share_is_refused() -> None:
    with pytest.raises(ImplausiblePull, match=r"withdraw 21 of the 100 records .*21%"):
        run("yt_ytec", [Batch(records(79, withdrawn=21), {})], held=100)


def test_a_snapshot_withdrawing_the_share_exactly_is_stored() -> None:
    assert len(run("yt_ytec", [Batch(records(80, withdrawn=20), {})], held=100)) == 1


def test_a_header_only_snapshot_is_refused_however_small_the_year() -> None:
    with pytest.raises(ImplausiblePull, match="withdraw 12 of the 12"):
        run("yt_ytec", [Batch(records(0, withdrawn=12), {})], held=12)


def test_the_refusal_says_how_to_accept_it_on_purpose() -> None:
    with pytest.raises(ImplausiblePull) as refused:
        run("yt_ytec", [Batch(records(0, withdrawn=12), {})], held=12)
    assert "--accept-withdrawals yt_ytec" in str(refused.value)
    assert "accept_withdrawals: true" in str(refused.value)


def test_an_accepted_mass_withdrawal_is_stored() -> None:
    batches = [Batch(records(0, withdrawn=12), {})]
    assert run("yt_ytec", batches, held=12, limits=Limits(accept=True)) == batches


def test_a_whole_window_coming_back_empty_where_thousands_were_is_refused() -> None:
    empty = [Batch(records(0), {"through": f"{YEAR}-01-31"}), Batch(records(0), {"through": "x"})]
    with pytest.raises(ImplausiblePull, match="returned no records where the database holds 1000"):
        run("ta_zjp", empty, held=1000)


def test_a_refused_empty_pull_yields_no_watermark_before_failing() -> None:
    spec = SPECS["ta_zjp"]
    empty = iter([Batch(records(0), {"through": f"{YEAR}-01-31"})])
    pulled = guarded(spec, PullRequest.for_year(YEAR), empty, held=5000, limits=Limits())
    with pytest.raises(ImplausiblePull):
        next(pulled)


def test_empty_months_before_the_first_records_are_stored_in_order() -> None:
    batches = [Batch(records(0), {"through": "a"}), Batch(records(3), {"through": "b"})]
    assert run("ta_zjp", batches, held=5000) == batches


def test_an_incremental_pull_may_come_back_empty() -> None:
    empty = [Batch(records(0), {"through": f"{YEAR}-12-31"})]
    assert run("ta_zjp", empty, held=5000, watermark={"through": f"{YEAR}-12-01"}) == empty


def test_an_empty_pull_where_fewer_than_the_floor_were_held_is_stored() -> None:
    empty = [Batch(records(0), {"through": f"{YEAR}-12-31"})]
    assert run("ta_zjp", empty, held=999) == empty


# --- through the CLI, against the sandbox ---------------------------------------------------


def live_keys(environment: Environment, code: str) -> set[str]:
    raw = environment.tables()["raw_record"]
    return set(raw.loc[(raw["platform"] == code) & ~raw["withdrawn"], "source_key"])


def test_sync_refuses_an_empty_snapshot_and_keeps_the_records_and_files(
    environment: Environment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "--year", str(YEAR), "--platform", "yt_ytec"]) == 0
    held, files = live_keys(environment, "yt_ytec"), environment.files()
    capsys.readouterr()
    environment.sandbox.malform("yt_ytec", "no_rows")
    try:
        code = main(["sync", "--year", str(YEAR), "--platform", "yt_ytec"])
    finally:
        environment.sandbox.malform("yt_ytec", None)
    err = capsys.readouterr().err
    assert code == 1
    assert f"the snapshot would withdraw {len(held)} of the {len(held)} records" in err
    assert "--accept-withdrawals yt_ytec" in err
    assert live_keys(environment, "yt_ytec") == held
    assert environment.files() == files


def test_sync_with_accept_withdrawals_stores_the_empty_snapshot(
    environment: Environment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "--year", str(YEAR), "--platform", "yt_ytec"]) == 0
    environment.sandbox.malform("yt_ytec", "no_rows")
    try:
        code = main(
            [
                "sync",
                "--year",
                str(YEAR),
                "--platform",
                "yt_ytec",
                "--accept-withdrawals",
                "yt_ytec",
            ]
        )
    finally:
        environment.sandbox.malform("yt_ytec", None)
    assert code == 0, capsys.readouterr().err
    assert live_keys(environment, "yt_ytec") == set()
