"""GX takes seconds to import: load it once for the whole validation suite."""

from __future__ import annotations

import pytest

from pipelines.validation import import_great_expectations


@pytest.fixture(scope="session", autouse=True)
def great_expectations_loaded() -> None:
    import_great_expectations()
