"""Crash-safe writes of the workbooks: temporary names, fsync, rename, folder fsync.

Crash safety. A file is never visible under its final name before its bytes are durable: a
year's changed files are written under temporary names in their folders, all fsynced (in a
thread pool: the file system batches the journal commits), then moved into place with
`os.replace`; then the folders are fsynced and the manifest is written last the same way. A
crash leaves old or new complete files, temporary files that the next run removes, and at worst
a manifest older than some files, which makes the next run rewrite them.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipelines.crash import crash_point
from pipelines.provincial.xlsx import Planned, jobs, workbook_bytes

FSYNC_THREADS = 16
"""Concurrent fsyncs, which the file system commits together: 12k files in 0.7 s, not 3.6 s."""


def write_files(folder: Path, planned: Sequence[Planned]) -> dict[Path, tuple[str, int]]:
    """Write the planned files atomically; returns each path's SHA-256 and size."""
    for kind in {p.sheets.kind for p in planned}:
        (folder / kind).mkdir(parents=True, exist_ok=True)
    temporaries: list[tuple[Path, Path]] = []
    written: dict[Path, tuple[str, int]] = {}
    try:
        for job in jobs(planned):
            temporary = job.path.with_name(f".{job.path.stem}.{uuid.uuid4().hex[:8]}.tmp")
            temporaries.append((temporary, job.path))
            content = workbook_bytes(job.header, job.rows, job.body, job.as_of)
            temporary.write_bytes(content)
            written[job.path] = (hashlib.sha256(content).hexdigest(), len(content))
        with ThreadPoolExecutor(FSYNC_THREADS) as pool:
            list(pool.map(fsync, [t for t, _ in temporaries]))
        for temporary, path in temporaries:
            os.replace(temporary, path)
            crash_point("files")
        temporaries.clear()
    finally:
        for temporary, _ in temporaries:
            temporary.unlink(missing_ok=True)
    for kind in {p.sheets.kind for p in planned}:
        fsync(folder / kind)
    return written


def fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
