"""Files written whole or not at all: a temporary file beside the target, then a rename; and the CSV
text they often hold. Imports nothing heavy, so that light modules (the sweep summary) share it."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def write_atomically(path: Path, content: bytes | str) -> Path:
    """Write to a temporary file beside `path` (its folder must exist), then rename: a crash never
    leaves half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content.encode() if isinstance(content, str) else content)
    os.replace(temporary, path)
    return path


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV table as text: the header, then one line a row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
