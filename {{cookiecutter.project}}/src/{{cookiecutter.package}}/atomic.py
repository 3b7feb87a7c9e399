"""Files written whole or not at all: a temporary file beside the target, then a rename."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, content: bytes | str) -> Path:
    """Write to a temporary file beside `path` (its folder must exist), then rename: a crash never
    leaves half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content.encode() if isinstance(content, str) else content)
    os.replace(temporary, path)
    return path
