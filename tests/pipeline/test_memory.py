"""Freed memory goes back to the system between units of work (`pipelines.memory`)."""

import gc
import json
import subprocess
import sys
import weakref

import pandas as pd

from pipelines.memory import release_memory

FREED_FRAMES = """
import json
import numpy as np
import pandas as pd
from pipelines.memory import release_memory

def rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20

frames = [
    pd.DataFrame({"text": pd.Series(np.arange(50_000).astype(str)) + "x", "n": np.arange(50_000)})
    for _ in range(100)
]
held = rss_mb()
del frames
freed = rss_mb()
release_memory()
print(json.dumps({"held": held, "freed": freed, "released": rss_mb()}))
"""


def test_release_memory_returns_what_freed_frames_left_to_the_allocators() -> None:
    run = subprocess.run(
        [sys.executable, "-c", FREED_FRAMES], capture_output=True, text=True, check=True
    )
    rss = json.loads(run.stdout)
    assert rss["freed"] - rss["released"] > 0.5 * (rss["held"] - rss["released"])


class Cycle:
    """An object that holds a frame and itself, as a Great Expectations validation leaves."""

    def __init__(self) -> None:
        self.frame = pd.DataFrame({"n": range(1000)})
        self.itself = self


def test_release_memory_frees_what_only_reference_cycles_hold() -> None:
    gc.disable()  # only the call under test may collect
    try:
        held = weakref.ref(Cycle())
        assert held() is not None

        release_memory()

        assert held() is None
    finally:
        gc.enable()
