"""Where a run is, for the person who started it: progress per platform and per stage, read
from the run's events in the Dagster instance.

Reading the instance, not a logger inside the steps, works whichever executor runs them (in
process, multiprocess, another machine). The full event log and every library's messages go
to one log file under the data folder; the terminal gets bars (a pseudo-terminal) or a few
plain lines (a pipe or file), `--verbose` adds every step message, `--quiet` shows nothing.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

import dagster as dg
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

QUIET, NORMAL, VERBOSE = "quiet", "normal", "verbose"
POLL_SECONDS = 0.25
STAGE_NAMES = {
    "ledger": "ledger, hours bank, D4",
    "provincial_files": "provincial files",
    "title_eligibility": "title eligibility (R3)",
    "compliance_report": "compliance report",
}
# A stage that runs as several steps (a graph asset: `ledger.ledger_plan`, its parallel parts,
# `ledger.ledger_finish`) is done when its last step is.
LAST_STEPS = {"ledger": "ledger.ledger_finish"}
_STORED = re.compile(r"^(?P<code>\w+) (?P<year>\d{4}): (?P<records>\d+) records stored")
"""What `stored_message` writes, read back from the run's events."""
_OUR_LOGGERS = ("xueshi", "pipelines", "connectors", "sandbox", "benchmarks", "__main__")


@dg.logger(description="Silent: the CLI shows progress from the run's events (`follow`).")
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    """Replaces Dagster's console logger, so steps print nothing whatever the executor."""
    logger = logging.getLogger("xueshi.run")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def stored_message(code: str, year: int | str, records: int) -> str:
    """The event a raw step logs when a year is stored: the progress bar counts it."""
    return f"{code} {year}: {records} records stored"


def log_file(data: Path) -> Path:
    """A new file under `<data>/logs/` for one command's detailed log."""
    folder = data / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"xueshi-{datetime.now():%Y%m%d-%H%M%S-%f}.log"


class _Ours(logging.Filter):
    """The terminal shows xueshi's own messages; libraries reach it only with errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.startswith(_OUR_LOGGERS) or record.levelno >= logging.ERROR


def configure_logging(path: Path | None, mode: str = NORMAL) -> None:
    """Everything (libraries' info, Python warnings) to `path`, if any; the terminal gets
    xueshi's warnings (its info too with `--verbose`) and anyone's errors, nothing with
    `--quiet`."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    if path is not None:
        detailed = logging.FileHandler(path, encoding="utf-8")
        detailed.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(detailed)
    terminal = logging.StreamHandler()
    terminal.setFormatter(logging.Formatter("%(message)s"))
    terminal.addFilter(_Ours())
    terminal.setLevel(
        {QUIET: logging.CRITICAL + 1, VERBOSE: logging.INFO}.get(mode, logging.WARNING)
    )
    root.addHandler(terminal)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    warnings.simplefilter("default")


@dataclass
class _Platform:
    years: int
    done: int = 0
    records: int = 0
    started: float = field(default_factory=time.monotonic)


class RunProgress:
    """Follows one run's event log: updates bars or prints lines, and copies every event to
    the detailed log. `poll()` reads what is new; `follow()` polls on a thread."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        run_id: str,
        *,
        years: int,
        out: TextIO,
        log: TextIO,
        mode: str = NORMAL,
        terminal: bool | None = None,
    ) -> None:
        self.instance, self.run_id, self.years = instance, run_id, years
        self.out, self.log, self.mode = out, log, mode
        self.terminal = out.isatty() if terminal is None else terminal
        self.cursor: str | None = None
        self.platforms: dict[str, _Platform] = {}
        self.stages: dict[str, float] = {}
        self.steps_done: dict[str, int] = {}
        self.ended: set[str] = set()
        self.bars: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        if self.terminal and mode != QUIET:
            self.bars = Progress(
                SpinnerColumn(),
                TextColumn("{task.description:<28}"),
                BarColumn(bar_width=24),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=Console(file=out, force_terminal=True),
                transient=False,
            )
            self.bars.start()

    # --- reading the event log ----------------------------------------------------------

    def poll(self) -> None:
        while True:
            batch = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, limit=500)
            for record in batch.records:
                self._entry(record.event_log_entry)
            self.cursor = batch.cursor
            if not batch.has_more:
                break
        self.log.flush()

    def _entry(self, entry: dg.EventLogEntry) -> None:
        event = entry.dagster_event
        kind = event.event_type_value if event else ""
        step = entry.step_key or "run"
        stamp = datetime.fromtimestamp(entry.timestamp).isoformat(timespec="milliseconds")
        message = entry.user_message.replace("\n", "\n    ")
        self.log.write(f"{stamp} {entry.level:<2} {step} {kind} {message}\n")
        if event is None:
            self._message(step, entry.user_message)
        elif kind == "STEP_START":
            self._started(step)
        elif kind in {"STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"}:
            self._finished(step, kind == "STEP_SUCCESS")

    def _message(self, step: str, message: str) -> None:
        if self.mode == VERBOSE:
            self._say(f"  {step}: {message.strip().splitlines()[0] if message else ''}")
        stored = _STORED.match(message)
        if stored and step.startswith("raw_"):
            platform = self.platforms.setdefault(step, _Platform(self.years))
            platform.done += 1
            platform.records += int(stored["records"])
            self._update(step)

    def _started(self, step: str) -> None:
        if step.startswith("raw_"):
            self.platforms[step] = _Platform(self.years)
        else:
            step = _stage(step)
            if step in self.stages:
                return
            self.stages[step] = time.monotonic()
            if self.bars is None and self.mode != QUIET:
                self._say(f"{STAGE_NAMES.get(step, step)}: started")
        if self.bars is not None:
            name = step.removeprefix("raw_") if step.startswith("raw_") else STAGE_NAMES.get(step)
            total = self.years if step.startswith("raw_") else None
            self.tasks[step] = self.bars.add_task(name or step, total=total, detail="")
        self._update(step)

    def _finished(self, step: str, success: bool) -> None:
        stage = _stage(step)
        if success and step not in self.platforms and step not in (stage, LAST_STEPS.get(stage)):
            self.steps_done[stage] = self.steps_done.get(stage, 0) + 1
            self._update(stage)
            return
        step = stage  # a platform's step is its own stage
        if step in self.ended:
            return
        self.ended.add(step)
        verdict = "done" if success else "FAILED"
        if step in self.platforms:
            platform = self.platforms[step]
            seconds = time.monotonic() - platform.started
            line = (
                f"{step.removeprefix('raw_')}: {platform.records:,} records, "
                f"{platform.done}/{platform.years} years in {seconds:.1f} s"
            )
        else:
            seconds = time.monotonic() - self.stages.get(step, time.monotonic())
            line = f"{STAGE_NAMES.get(step, step)}: {verdict} in {seconds:.1f} s"
        if self.bars is not None and step in self.tasks:
            task = self.tasks[step]
            total = self.bars.tasks[task].total or 1
            detail = self._detail(step, verdict) if success else f"{verdict} (see the log)"
            self.bars.update(task, total=total, detail=detail)
            if success:
                self.bars.update(task, completed=total)
            self.bars.stop_task(task)
        elif self.mode != QUIET:
            self._say(line if success else f"{line} ({verdict})")

    def _detail(self, step: str, verdict: str = "") -> str:
        platform = self.platforms.get(step)
        if platform is None:
            done = self.steps_done.get(step)
            return f"{done} steps done" if done and not verdict else verdict
        rate = platform.records / max(time.monotonic() - platform.started, 1e-3)
        return f"{platform.records:>9,} records {rate:>8,.0f}/s {platform.done}/{platform.years} y"

    def _update(self, step: str) -> None:
        if self.bars is not None and step in self.tasks:
            done = self.platforms[step].done if step in self.platforms else 0
            self.bars.update(self.tasks[step], completed=done, detail=self._detail(step))

    def _say(self, line: str) -> None:
        if self.bars is not None:
            self.bars.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.out, flush=True)

    def close(self) -> None:
        self.poll()
        if self.bars is not None:
            self.bars.stop()


def _stage(step: str) -> str:
    """The asset a step belongs to: `ledger` for `ledger.ledger_part[shards_3]`."""
    return step.split(".", 1)[0]


@contextmanager
def follow(
    instance: dg.DagsterInstance,
    run_id: str,
    *,
    years: Sequence[int],
    out: TextIO,
    log_path: Path,
    mode: str = NORMAL,
    terminal: bool | None = None,
) -> Iterator[RunProgress]:
    """Show the progress of run `run_id` while the body launches and waits for it."""
    with log_path.open("a", encoding="utf-8") as log:
        progress = RunProgress(
            instance, run_id, years=len(years), out=out, log=log, mode=mode, terminal=terminal
        )
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(POLL_SECONDS):
                progress.poll()

        thread = threading.Thread(target=loop, name="xueshi-progress", daemon=True)
        thread.start()
        try:
            yield progress
        finally:
            stop.set()
            thread.join()
            progress.close()
