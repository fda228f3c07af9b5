"""Every platform's connector against the sandbox, over real HTTP, with one suite.

It runs for every spec of the catalogue and for `yt_test`, a platform this module adds by its
spec alone (a copy of yt_ldu's under another code): a platform of a known family needs no test
code of its own. What a family does beyond these checks (its paging, quirks, decoding) is in
its own module, over MockTransport.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from importlib import resources
from itertools import cycle, islice
from typing import Any

import pandas as pd
import pytest

from connectors.core import AuthError, Batch, PlatformClient, PullRequest, RetryPolicy, Settings
from connectors.pull import ENGINES
from sandbox.families import Options
from sandbox.faults import GENERIC_KINDS, kinds_for
from sandbox.generator import Dataset, generate
from sandbox.profiles import Catalogue
from sandbox.server import Sandbox
from schemas.platforms import PLATFORMS, PlatformSpec, read_spec
from tests.connectors.conftest import SANDBOX_SEED

ADDED = "yt_test"
_LDU = (resources.files("schemas") / "specs" / "yt_ldu.toml").read_text(encoding="utf-8")
CATALOGUE: dict[str, PlatformSpec] = {
    **PLATFORMS,
    ADDED: read_spec(f"{ADDED}.toml", _LDU.replace('code = "yt_ldu"', f'code = "{ADDED}"')),
}
PROFILES = Catalogue(CATALOGUE)
CODES = tuple(CATALOGUE)
FAULTS = [(code, kind) for code in CODES for kind in sorted(kinds_for(code, PROFILES))]

YEARS = (2018, 2022)  # a makeup-era year and the last one
YEAR = 2021
QUICK = {"poll_initial": 0.01, "poll_max": 0.05}
"""Spec options scaled for tests, where a family has them: quick polls."""
PAGED = {"page_size": 10, "job_months": 3}
"""...and, where a test needs several pages or batches a year, small ones."""
SMALL = Options(rate_limit=0, lllnet_page_size=10)
"""Several lllnet pages a month; no treewises rate limit, whose 429s depend on timing, so the
seed alone decides which request shows which fault."""
RETRIES = RetryPolicy(attempts=8, initial_wait=0.01, max_wait=0.5, timeout=0.25)
TIMINGS = "slow=0.3;retry_after=0.05"
"""Fault timings scaled for this suite, which shows each kind on every platform: a stall still
outlasts the read timeout, a Retry-After is short."""
STORMY = "all:5xx,reset,expiry,busy,job,ts"
"""The faults that cost no wait (slow and 429 have tests of their own)."""
FAULT_RATE = 0.3
FAULT_RATES = {"slow": 0.1, "429": 0.2}
"""How often a request draws the fault under test: less often where each one costs a wait.
One at a time: the same fault twice running can be fatal by contract (TS_EXPIRED twice means a
clock off, an auth error)."""
MAX_FAULT_PULLS = 40
"""Year pulls a fault may take to show: kinds that only an ongoing session or a new job can
show are drawn by few requests."""


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    """The conftest's world, with the added platform."""
    return generate(records=3_000, seed=SANDBOX_SEED, platforms=CATALOGUE)


@pytest.fixture(scope="module")
def served(dataset: Dataset) -> Iterator[Callable[[str], Sandbox]]:
    """`served(faults)`: the module's sandbox of the catalogue showing `faults`, started once
    (each platform draws its faults alone, so the platforms' tests do not disturb each other)."""
    with ExitStack() as stack:
        started: dict[str, Sandbox] = {}

        def get(faults: str = "none") -> Sandbox:
            if faults not in started:
                sandbox = Sandbox(
                    dataset,
                    port=0,
                    faults=f"{faults};{TIMINGS}",
                    seed=SANDBOX_SEED,
                    options=SMALL,
                    platforms=CATALOGUE,
                )
                started[faults] = stack.enter_context(sandbox)
            return started[faults]

        yield get


@pytest.fixture
def connect() -> Iterator[Callable[..., PlatformClient]]:
    """`connect(sandbox, code, settings=None)`: a client of `code` talking to the sandbox, with
    the sandbox's credentials unless `settings` says otherwise."""
    with ExitStack() as stack:

        def build(sandbox: Sandbox, code: str, settings: Settings | None = None) -> PlatformClient:
            built = PlatformClient(code, settings or sandbox.settings(code), retry=RETRIES)
            return stack.enter_context(built)

        yield build


def scaled(code: str, paged: bool) -> PlatformSpec:
    spec = CATALOGUE[code]
    wanted = {**QUICK, **PAGED} if paged else QUICK
    options = {k: v for k, v in wanted.items() if k in spec.options}
    return dataclasses.replace(spec, options={**spec.options, **options})


def pulling(
    client: PlatformClient,
    year: int,
    watermark: dict[str, Any] | None = None,
    *,
    paged: bool = False,
    known: frozenset[str] | None = None,
) -> Iterator[Batch]:
    """A pull of `year` with the platform's own page sizes, or small ones when `paged`;
    `known` are the source keys stored before (a snapshot withdraws the ones it lacks)."""
    spec = scaled(client.platform, paged)
    request = PullRequest.for_year(year, watermark=watermark, known_keys=known)
    return ENGINES[spec.family](spec, client, request, lambda _: None)


def records(batches: Iterator[Batch] | list[Batch]) -> pd.DataFrame:
    """The records of some batches, the last version of each source key winning, in key order
    (empty, without columns, when there are none)."""
    frames = [b.records for b in batches]
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames).drop_duplicates("source_key", keep="last")
    return frame.sort_values("source_key", ignore_index=True)


def listed(dataset: Dataset, code: str, year: int) -> pd.DataFrame:
    """What the platform lists for a year's pull: its records of that pull year, withdrawn ones
    only where the family serves them (revoked)."""
    served = dataset.served(code, 0)
    rows = served[served["pull_year"] == year]
    return rows if PROFILES[code].facts.revokes else rows[~rows["withdrawn"]]


def test_the_added_platform_is_served_like_its_family(dataset: Dataset) -> None:
    added = dataset.served(ADDED, 0)
    assert len(added) > 100
    assert added["certificate_no"].str.startswith("TEST").any()
    assert added["updated_at"].notna().all()


@pytest.mark.parametrize("code", CODES)
def test_wrong_credentials_are_refused_with_an_auth_error(
    code: str,
    served: Callable[[str], Sandbox],
    connect: Callable[..., PlatformClient],
) -> None:
    sandbox = served("none")
    wrong = dataclasses.replace(sandbox.settings(code), key="wrong-key", secret="wrong-secret")
    with pytest.raises(AuthError):
        list(pulling(connect(sandbox, code, wrong), YEAR))


@pytest.mark.parametrize("code", CODES)
def test_a_pull_returns_exactly_what_the_sandbox_served(
    code: str,
    served: Callable[[str], Sandbox],
    connect: Callable[..., PlatformClient],
    dataset: Dataset,
    same_records: Callable[[pd.DataFrame, pd.DataFrame], None],
) -> None:
    client = connect(served("none"), code)
    for year in YEARS:
        same_records(records(pulling(client, year, paged=True)), listed(dataset, code, year))


@pytest.mark.parametrize(("code", "kind"), FAULTS)
def test_a_pull_through_each_fault_the_platform_shows_loses_and_doubles_nothing(
    code: str,
    kind: str,
    served: Callable[[str], Sandbox],
    connect: Callable[..., PlatformClient],
    dataset: Dataset,
    same_records: Callable[[pd.DataFrame, pd.DataFrame], None],
) -> None:
    rate = FAULT_RATES.get(kind, FAULT_RATE)
    sandbox = served(f"all:{kind};rate={rate};streak=1")
    client = connect(sandbox, code)
    shown = sandbox.injected(code)[kind]
    in_band = kind not in GENERIC_KINDS  # shown within a session or job: pages needed
    for year in islice(cycle(YEARS), MAX_FAULT_PULLS):
        pulled = records(pulling(client, year, paged=in_band))
        same_records(pulled, listed(dataset, code, year))
        if sandbox.injected(code)[kind] > shown:
            break
    assert sandbox.injected(code)[kind] > shown


@pytest.mark.parametrize("code", CODES)
def test_an_interrupted_pull_resumed_from_its_last_watermark_returns_the_rest(
    code: str,
    served: Callable[[str], Sandbox],
    connect: Callable[..., PlatformClient],
    dataset: Dataset,
    same_records: Callable[[pd.DataFrame, pd.DataFrame], None],
) -> None:
    client = connect(served(STORMY), code)
    batches = pulling(client, YEAR, paged=True)
    first = next(batches)
    batches.close()
    rest = list(pulling(client, YEAR, dict(first.watermark), paged=True))
    same_records(records([first, *rest]), listed(dataset, code, YEAR))


@pytest.mark.parametrize("code", CODES)
def test_two_pulls_give_the_same_records_and_a_third_from_the_watermark_nothing_new(
    code: str,
    served: Callable[[str], Sandbox],
    connect: Callable[..., PlatformClient],
) -> None:
    """The second pull goes through faults; the third starts where the first stopped, knowing
    its records (a re-read look-back or snapshot shows the same records again, withdraws none;
    their row numbers may differ)."""
    first = list(pulling(connect(served("none"), code), YEAR))
    stormy = connect(served(STORMY), code)
    first_records = records(first).drop(columns="pulled_at")
    again = records(pulling(stormy, YEAR)).drop(columns="pulled_at")
    pd.testing.assert_frame_equal(again, first_records)
    known = frozenset(first_records["source_key"])
    since = records(pulling(stormy, YEAR, dict(first[-1].watermark), known=known))
    if not since.empty:
        compared = [c for c in since.columns if c not in ("pulled_at", "payload")]
        expected = first_records[first_records["source_key"].isin(since["source_key"])]
        pd.testing.assert_frame_equal(since[compared], expected[compared].reset_index(drop=True))
