"""The connectors against their floor: `python -m benchmarks.pull [--records N]`.

A sandbox process serves N generated records (treewises' rate limit lifted, as in
`benchmarks.run`). Per platform, over every year: (a) the floor, `benchmarks.floor`'s plain
fetch and decode of the same exports, then (b) `connectors.pull.pull` once per year, as the
pipeline calls it. Prints records, wall and CPU seconds, records/s and the wall ratio b/a per
platform; `--only connectors` skips the floor (for profiling the connectors under py-spy).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks import floor
from benchmarks.platforms import Platforms
from connectors.core import PullRequest, settings_for
from connectors.pull import pull
from schemas.clock import current_year
from schemas.platforms import load_specs
from schemas.vocabulary import FIRST_YEAR


@dataclass(frozen=True)
class Timing:
    """Wall seconds (the sandbox serves from its own process meanwhile) and this process's CPU."""

    records: int
    seconds: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def _timed(action: Callable[[str, range, dict[str, str]], int], *args: Any) -> Timing:
    started, cpu = time.perf_counter(), time.process_time()
    records = action(*args)
    return Timing(records, time.perf_counter() - started, time.process_time() - cpu)


def _floor(code: str, years: range, env: dict[str, str]) -> int:
    spec = load_specs()[code]
    settings = settings_for(code, env)
    with httpx.Client(base_url=settings.base_url, timeout=120.0) as http:
        return sum(
            floor.FETCHERS[spec.family](http, spec, settings, PullRequest.for_year(year))
            for year in years
        )


def _connectors(code: str, years: range, env: dict[str, str]) -> int:
    settings = settings_for(code, env)
    return sum(
        len(batch.records)
        for year in years
        for batch in pull(code, PullRequest.for_year(year), settings=settings)
    )


def _row(name: str, timing: Timing | None) -> str:
    if timing is None:
        return f"{name:>10} {'-':>8} {'-':>8} {'-':>8} {'-':>10}"
    return (
        f"{name:>10} {timing.records:>8,} {timing.seconds:>8.2f} {timing.cpu:>8.2f}"
        f" {timing.rate:>10,.0f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pull", description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("floor", "connectors"), default=None)
    parser.add_argument("--platform", action="append", default=None, help="a code; repeatable")
    args = parser.parse_args(argv)
    years = range(FIRST_YEAR, current_year() + 1)
    codes = args.platform or list(load_specs())
    with Platforms(args.records, args.seed, 0.01) as platforms:
        env = platforms.world.env
        print(f"{platforms.world.versions:,} record versions served, years {years.start}..")
        print(
            f"{'platform':<9} {'which':>10} {'records':>8} {'seconds':>8} {'cpu s':>8}"
            f" {'records/s':>10} ratio"
        )
        totals: dict[str, list[Timing]] = {"floor": [], "connectors": []}
        for code in codes:
            base = None if args.only == "connectors" else _timed(_floor, code, years, env)
            mine = None if args.only == "floor" else _timed(_connectors, code, years, env)
            ratio = f"{mine.seconds / base.seconds:5.1f}x" if base and mine else ""
            print(f"{code:<9} {_row('floor', base)}")
            print(f"{'':<9} {_row('connectors', mine)} {ratio}", flush=True)
            for name, timing in (("floor", base), ("connectors", mine)):
                if timing is not None:
                    totals[name].append(timing)
        summed = {
            name: Timing(
                sum(t.records for t in ts), sum(t.seconds for t in ts), sum(t.cpu for t in ts)
            )
            for name, ts in totals.items()
            if ts
        }
        base, mine = summed.get("floor"), summed.get("connectors")
        ratio = f"{mine.seconds / base.seconds:5.1f}x" if base and mine else ""
        print(f"{'all':<9} {_row('floor', base)}")
        print(f"{'':<9} {_row('connectors', mine)} {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
