"""The report page in a real headless browser (Debian's chromium): it renders its charts, its
script runs, the console stays silent, and a screenshot is kept in `test-artifacts/`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.report import build_report
from pipelines.store import Store

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\] (.*)")


@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser; skips outside CI when absent (.ci/run installs it), fails under CI=true."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required under CI (.ci/run installs it)")
        pytest.skip("chromium not installed: apt-get install -y chromium")
    return found


def browse(chromium: str, page: Path, profile: Path, *action: str) -> tuple[str, list[str]]:
    """Open `page` headless with `action` (e.g. --dump-dom); stdout and console messages."""
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # root in containers; the page is our own local file
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            "--window-size=1280,4200",
            "--virtual-time-budget=3000",
            *action,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout, [m[1] for m in CONSOLE.finditer(done.stderr)]


def test_the_console_check_catches_errors_and_logs(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<script>console.error('boom'); missing();</script>", encoding="utf-8")
    _, console = browse(chromium, page, tmp_path / "profile", "--dump-dom")
    assert any("boom" in line for line in console)
    assert any("ReferenceError" in line for line in console)


def test_the_report_renders_its_charts_with_a_silent_console(
    chromium: str, store: Store, tmp_path: Path, database_url: str
) -> None:
    _, page = build_report(store, 2022, tmp_path / "out")
    dom, console = browse(chromium, page, tmp_path / "profile", "--dump-dom")
    assert console == []
    assert 'data-ready="true"' in dom  # the inline script ran to its end
    assert dom.count("<svg") == 5
    assert dom.count("<rect") > 50
    shot = tmp_path / "report.png"
    _, console = browse(chromium, page, tmp_path / "profile", f"--screenshot={shot}")
    assert console == []
    assert shot.stat().st_size > 20_000
    ARTIFACTS.mkdir(exist_ok=True)
    engine = database_url.split(":")[0].split("+")[0]
    shutil.copyfile(shot, ARTIFACTS / f"report-2022-{engine}.png")
