"""Measuring a Dagster run: stages from the run's step events plus timers inside the ledger and
the raw steps, peak RSS per stage from a 50 ms sampler, and py-spy profiles folded by stage.

Stage times come from the instance's event log (STEP_START to STEP_SUCCESS/STEP_FAILURE of each
step) and are split further by timing the store's methods and `apply_rules` in this process:
the raw steps into `pull` (fetch and decode) and `load_raw` (`Store.store_batch`), the ledger
step into `read_raw`, `rules` and `load_outputs`. Whatever the run spends outside its steps or
those timers is `overhead` (run start and end, resource setup, metadata).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any

import dagster as dg
import psutil

import pipelines.refresh
from pipelines import validation
from pipelines.store import Store

STAGES: tuple[str, ...] = (
    "pull",
    "load_raw",
    "read_raw",
    "rules",
    "load_outputs",
    "checks",
    "files",
    "overhead",
)
SAMPLE_SECONDS = 0.05
PROFILE_RATE = 100  # py-spy samples a second
STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
}
Interval = tuple[float, float]


class RssSampler:
    """This process's resident set size every 50 ms, in a daemon thread. With `children`, the
    largest RSS among the processes started since the sampler was made instead (the step
    processes of a multiprocess run and the server they are forked from, not the sandbox) goes
    to `samples`, and their sum to `totals`."""

    def __init__(self, interval: float = SAMPLE_SECONDS, *, children: bool = False) -> None:
        self.interval = interval
        self.children = children
        self.samples: list[tuple[float, int]] = []
        self.totals: list[int] = []
        self._process = psutil.Process()
        before = self._process.children(recursive=True) if children else []
        self._before = {p.pid for p in before}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            if self.children:
                started = self._process.children(recursive=True)
                sizes = [_rss(p) for p in started if p.pid not in self._before]
                self.samples.append((now, max(sizes, default=0)))
                self.totals.append(sum(sizes))
            else:
                self.samples.append((now, self._process.memory_info().rss))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, intervals: list[Interval]) -> int:
        """The highest sample taken within any of `intervals`, or up to one sampling interval
        before it (so that a stage shorter than the interval still has its RSS)."""
        return max(
            (
                rss
                for at, rss in self.samples
                if any(a - self.interval <= at <= b for a, b in intervals)
            ),
            default=0,
        )


def _rss(process: psutil.Process) -> int:
    """A process's RSS, or 0 once it has ended between listing and reading."""
    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0


@dataclass
class InnerTimers:
    """Wall-clock intervals of the timed store methods and rules, by inner stage."""

    intervals: dict[str, list[Interval]] = field(default_factory=lambda: defaultdict(list))

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.time()
            try:
                return function(*args, **kwargs)
            finally:
                self.intervals[stage].append((started, time.time()))

        return timed


@contextmanager
def instrumented() -> Iterator[InnerTimers]:
    """Time the store's loads and reads and the rules, for the duration of the block."""
    timers = InnerTimers()
    targets: list[tuple[Any, str, str]] = [
        (Store, "store_batch", "load_raw"),
        (Store, "raw_records", "read_raw"),
        (Store, "ledger_rows", "read_raw"),
        (Store, "replace_outputs", "load_outputs"),
        (Store, "begin_full", "load_outputs"),
        (Store, "finish_full", "load_outputs"),
        (Store, "append_reconciliation", "load_outputs"),
        (Store, "state_counts", "load_outputs"),
        (Store, "live_raw_counts", "load_outputs"),
        (pipelines.refresh, "apply_rules", "rules"),
        (validation, "validate_raw", "checks"),
        (validation, "validate_completion", "checks"),
        (validation, "validate_hours_bank", "checks"),
        (validation, "build_data_docs", "checks"),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in targets]
    for owner, name, stage in targets:
        setattr(owner, name, timers.wrap(stage, getattr(owner, name)))
    try:
        yield timers
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def step_intervals(instance: dg.DagsterInstance, run_id: str) -> dict[str, Interval]:
    """Each step's start and end (unix seconds) from the run's event log."""
    starts: dict[str, float] = {}
    spans: dict[str, Interval] = {}
    connection = instance.get_records_for_run(run_id, of_type=STEP_EVENTS)
    for record in connection.records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.step_key in starts:
            spans[event.step_key] = (starts[event.step_key], entry.timestamp)
    return spans


def step_stage(step_key: str, raw_steps: frozenset[str]) -> str:
    if step_key in raw_steps:
        return "pull"
    if step_key.startswith("ledger."):  # the ledger graph: plan, shard parts, finish
        return "ledger"
    if step_key == "provincial_files":
        return "files"
    return "checks"


def _inside(interval: Interval, spans: list[Interval]) -> bool:
    middle = (interval[0] + interval[1]) / 2
    return any(a <= middle <= b for a, b in spans)


@dataclass(frozen=True)
class StageFigures:
    seconds: dict[str, float]
    peak_bytes: dict[str, int]
    steps: dict[str, float]


def stage_figures(
    spans: dict[str, Interval],
    timers: InnerTimers,
    sampler: RssSampler,
    total: Interval,
    raw_steps: frozenset[str],
) -> StageFigures:
    """Seconds and peak RSS per stage of one run (see the module's docstring)."""
    by_step: dict[str, list[Interval]] = defaultdict(list)
    for key, span in spans.items():
        by_step[step_stage(key, raw_steps)].append(span)
    intervals: dict[str, list[Interval]] = {"pull": by_step["pull"], "files": by_step["files"]}
    inner_home = {
        "load_raw": ("pull",),
        "read_raw": ("ledger",),
        "rules": ("ledger",),
        "load_outputs": ("ledger",),
        "checks": ("pull", "ledger"),
    }
    for stage, homes in inner_home.items():
        steps = [span for home in homes for span in by_step[home]]
        intervals[stage] = [i for i in timers.intervals[stage] if _inside(i, steps)]

    def length(spans_: list[Interval]) -> float:
        return sum(b - a for a, b in spans_)

    seconds = {stage: length(spans_) for stage, spans_ in intervals.items()}
    raw_checks = [i for i in intervals["checks"] if _inside(i, by_step["pull"])]
    seconds["pull"] -= seconds["load_raw"] + length(raw_checks)
    measured = sum(seconds.values())
    seconds["overhead"] = max(0.0, (total[1] - total[0]) - measured)
    peaks = {stage: sampler.peak(spans_) for stage, spans_ in intervals.items()}
    peaks["overhead"] = sampler.peak([total])
    return StageFigures(
        seconds={s: seconds[s] for s in STAGES},
        peak_bytes={s: peaks[s] for s in STAGES},
        steps={key: b - a for key, (a, b) in sorted(spans.items())},
    )


# --- profiles -------------------------------------------------------------------------------


class Profiler:
    """py-spy attached to this process, sampling without pausing it, raw (collapsed) output."""

    def __init__(self, output: Path, rate: int = PROFILE_RATE) -> None:
        self.output = output
        self.rate = rate
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        binary = Path(sys.executable).with_name("py-spy")
        command = [str(binary), "record", "--pid", str(os.getpid()), "--nonblocking"]
        command += ["--rate", str(self.rate), "--format", "raw", "--output", str(self.output)]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(1.0)  # py-spy needs a moment to attach
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGINT)
            self._process.wait(timeout=120)


STAGE_FRAMES = {
    "_raw": "pull",
    "ledger": "ledger",
    "provincial_files": "files",
    "validate_raw": "checks",
    "validate_completion": "checks",
    "validate_hours_bank": "checks",
    "build_data_docs": "checks",
}
"""The innermost of these frames on a stack names its stage."""


def _frame_parts(frame: str) -> tuple[str, str]:
    """`function (path:line)` → (function, path relative to the repository if inside it)."""
    function, _, location = frame.partition(" (")
    path = location.rsplit(":", 1)[0]
    root = str(Path.cwd()) + os.sep
    return function, path.removeprefix(root)


def _project(path: str) -> bool:
    return path.split("/", 1)[0] in {"pipelines", "connectors", "schemas"}


def fold_profile(path: Path, rate: int = PROFILE_RATE, top: int = 12) -> dict[str, Any]:
    """Seconds per stage and the top functions: inclusive time of project functions and self
    time of any function, both per stage (from py-spy's collapsed stacks)."""
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    own: dict[str, Counter[str]] = defaultdict(Counter)
    stage_samples: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_parts(f) for f in stack.split(";")]
        names = [f.rsplit(".", 1)[-1] for f, _ in frames]  # `raw_asset.<locals>._raw` → `_raw`
        stage = next((STAGE_FRAMES[n] for n in reversed(names) if n in STAGE_FRAMES), "other")
        stage_samples[stage] += count
        seen = {f"{p}:{f}" for f, p in frames if _project(p)}
        for key in seen:
            inclusive[stage][key] += count
        leaf_function, leaf_path = frames[-1]
        own[stage][f"{leaf_path}:{leaf_function}"] += count

    def seconds(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": key, "seconds": round(n / rate, 2)} for key, n in counter.most_common(top)
        ]

    return {
        "rate_hz": rate,
        "stage_seconds": {s: round(n / rate, 2) for s, n in stage_samples.most_common()},
        "inclusive": {s: seconds(c) for s, c in inclusive.items()},
        "self": {s: seconds(c) for s, c in own.items()},
    }
