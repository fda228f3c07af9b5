"""The CLI's progress while a run goes: plain lines in a pipe, bars in a pseudo-terminal, the
detailed log in a file it names, library noise kept out of the terminal, --quiet and --verbose."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main
from sandbox.server import Sandbox

SYNC = ["sync", "--year", "2022", "--platform", "yt_ytec"]


def detailed_log(out: str) -> Path:
    line = next(line for line in out.splitlines() if "detailed log:" in line)
    return Path(line.split("detailed log:", 1)[1].strip())


def test_a_pipe_gets_one_line_per_platform_and_stage_not_per_page(
    environment: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(SYNC) == 0
    out = capsys.readouterr().out
    assert "yt_ytec: " in out and " records, 1/1 years in " in out
    assert "ledger, hours bank, D4: done in " in out
    assert "page" not in out
    assert "\x1b[" not in out  # no terminal control sequences in a pipe


def test_the_detailed_log_is_named_at_the_end_and_holds_every_step_message(
    environment: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(SYNC) == 0
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1].strip().startswith("detailed log:")
    log = detailed_log(out).read_text(encoding="utf-8")
    assert "raw_yt_ytec" in log and "records stored" in log
    assert "STEP_SUCCESS" in log


def test_library_noise_goes_to_the_log_not_the_terminal(
    environment: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(SYNC) == 0
    captured = capsys.readouterr()
    assert "temporary directory" not in captured.out + captured.err
    assert "Warning" not in captured.err
    assert "temporary directory" in detailed_log(captured.out).read_text(encoding="utf-8")


def test_quiet_prints_only_the_outcome_and_the_log(
    environment: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--quiet", *SYNC]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 2
    assert lines[0].startswith("run ") and "succeeded" in lines[0]
    assert "detailed log:" in lines[1]


def test_verbose_adds_every_step_message(
    environment: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--verbose", *SYNC]) == 0
    out = capsys.readouterr().out
    assert "  raw_yt_ytec: yt_ytec 2022: " in out
    assert "ledger, hours bank, D4: done in " in out


def test_a_pseudo_terminal_gets_progress_bars(environment: Sandbox) -> None:
    command = [str(Path(sys.executable).with_name("xueshi")), *SYNC]
    primary, secondary = pty.openpty()
    env = os.environ | {"TERM": "xterm-256color", "COLUMNS": "140"}
    process = subprocess.Popen(
        command, stdin=secondary, stdout=secondary, stderr=secondary, env=env
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert process.wait(timeout=300) == 0
    screen = b"".join(chunks).decode("utf-8", errors="replace")
    assert "\x1b[" in screen  # drawn and redrawn in place
    assert "━" in screen  # rich's bar
    assert "yt_ytec" in screen and "ledger, hours bank, D4" in screen
    assert "records" in screen and "left" in screen
    assert "succeeded" in screen
