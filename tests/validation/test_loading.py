"""GX loads once per process, in the background from a raw step's start (its imports take
seconds), and a check that needs it waits for that load instead of starting another. Once it
is loaded, the imported libraries are frozen out of the collector's walks."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import sys, threading
from pipelines.validation import import_great_expectations, preload_great_expectations
preload_great_expectations()
loaders = [t for t in threading.enumerate() if t.name == "great-expectations-import"]
import_great_expectations()
preload_great_expectations()
print(len(loaders), "great_expectations.core" in sys.modules, threading.active_count())
"""


def test_a_check_after_the_preload_finds_great_expectations_loaded_by_one_thread() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["1", "True", "1"]


FROZEN = """
import gc, json
from pipelines.validation import import_great_expectations
import_great_expectations()
print(json.dumps({"frozen": gc.get_freeze_count(), "collected": len(gc.get_objects())}))
"""


def test_once_loaded_the_libraries_are_left_out_of_every_later_collection() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FROZEN], capture_output=True, text=True, check=True
    )
    counts = json.loads(done.stdout)
    assert counts["frozen"] > 100_000
    assert counts["collected"] < 0.01 * counts["frozen"]
