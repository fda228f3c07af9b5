"""Employer names as file names: safe on any file system, and never two employers in one file."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

MAX_NAME_BYTES = 180
"""File-name stem cap in UTF-8 bytes: 255-byte file systems, with room for suffix and temp name."""
HASH_CHARS = 8

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_DEVICE = re.compile(r"^(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])(\..*)?$", re.IGNORECASE)


def safe_name(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A file-name stem valid on Windows and Linux, at most `max_bytes` of UTF-8 (plus `_`)."""
    text = _UNSAFE.sub("_", unicodedata.normalize("NFC", name)).strip()
    text = text.encode()[:max_bytes].decode(errors="ignore").rstrip(". ")
    if not text or text.startswith("."):
        text = "_" + text
    return "_" + text if _DEVICE.match(text) else text


def file_stems(employers: Iterable[str]) -> dict[str, str]:
    """A distinct stem per employer; stems that collide (ignoring case) all get a hash suffix."""
    safe = {e: safe_name(e) for e in sorted(set(employers))}
    clashes = Counter(s.casefold() for s in safe.values())
    stems = {
        e: s
        if clashes[s.casefold()] == 1
        else f"{safe_name(e, MAX_NAME_BYTES - HASH_CHARS - 1)}~{_digest(e)}"
        for e, s in safe.items()
    }
    if len({s.casefold() for s in stems.values()}) != len(stems):
        raise ValueError("employer file names still collide after hashing")
    return stems


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]
