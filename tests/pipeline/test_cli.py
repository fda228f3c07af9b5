"""`xueshi` as an operator uses it: clear errors, exit codes, summaries."""

from pathlib import Path

import pandas as pd
import pytest

from pipelines.cli import main
from sandbox.generator import Dataset
from sandbox.server import Sandbox


def test_a_backwards_year_range_is_refused_with_exit_code_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["backfill", "--years", "2021-2018"])
    assert exit_.value.code == 2
    assert "runs backwards" in capsys.readouterr().err


def test_an_unknown_platform_is_refused_with_the_known_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["sync", "--platform", "ta_nope"])
    assert "ta_yx" in capsys.readouterr().err


def test_pull_writes_the_year_to_parquet_and_prints_the_count(
    environment: Sandbox, dataset: Dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "yx.parquet"
    assert main(["pull", "--platform", "ta_yx", "--year", "2021", "--out", str(out)]) == 0
    served = dataset.served("ta_yx")
    expected = served[served["pull_year"] == 2021]
    frame = pd.read_parquet(out)
    assert sorted(frame["source_key"]) == sorted(expected["source_key"])
    assert f"{len(expected)} records from ta_yx 2021" in capsys.readouterr().out


def test_sync_prints_the_d4_counts_per_platform_and_the_outputs(
    environment: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "--year", "2022", "--platform", "yt_ytec"]) == 0
    out = capsys.readouterr().out
    assert "succeeded" in out
    assert "yt_ytec" in out
    assert "quarantined" in out
    assert "provincial files" in out


def test_sync_from_an_unreachable_platform_exits_1_naming_it(
    environment: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XUESHI_YT_YTEC_BASE_URL", "http://127.0.0.1:9/yt_ytec")
    code = main(["--attempts", "2", "sync", "--year", "2022", "--platform", "yt_ytec"])
    err = capsys.readouterr().err
    assert code == 1
    assert "yt_ytec" in err
    assert "XUESHI_<CODE>_" in err
