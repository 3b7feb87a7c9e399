"""Files and folders written whole or not at all (a temporary one beside the target, then a rename),
for results, checkpoints and exports alike; and the CSV text they often hold. Imports nothing heavy,
so that light modules (the sweep summary) share it."""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def replaced_atomically(path: Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write (a file, or with `directory` a new folder);
    rename it to `path` when the block ends, remove it when the block fails. A crash never leaves half
    a file or folder at `path`. The temporary one is made as any new file is (umask permissions)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    _remove(temporary)  # left by a process killed while writing
    if directory:
        temporary.mkdir()
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        _remove(temporary)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_atomically(path: Path, content: bytes | str) -> Path:
    """Write `content` to `path` whole or not at all (its folder must exist)."""
    with replaced_atomically(path) as temporary:
        temporary.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV table as text: the header, then one line a row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
