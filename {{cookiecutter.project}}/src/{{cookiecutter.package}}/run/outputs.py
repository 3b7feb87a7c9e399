"""Whether a path the user gave for an output can be written: asked before any work, changing nothing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import ConfigurationError


def check_output_writable(key: str, path: str | Path, *, folder: bool = False) -> Path:
    """Refuse `key=path` (a new file, or a `folder` to write into) when it exists as a file, sits under
    a file, or its nearest existing folder cannot be written; return the path. Made and removed: one
    temporary file in that folder, the only honest test (permissions, read-only mounts, ACLs)."""
    path = Path(path).expanduser()
    existing = next(parent for parent in (path, *path.absolute().parents) if parent.exists())
    if existing == path and not (folder and path.is_dir()):
        problem = "is a file, not a folder" if folder and path.is_file() else "exists already"
        raise ConfigurationError(f"{key}={str(path)!r} {problem}; choose a new {key}.")
    if not existing.is_dir():
        raise ConfigurationError(
            f"{key}={str(path)!r}: {str(existing)!r} is a file, not a folder; choose another {key}."
        )
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".write-test-")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise ConfigurationError(
            f"{key}={str(path)!r} cannot be written: {existing} is not writable "
            f"({error.strerror or error}); choose another {key}, in a folder you can write to."
        ) from None
    return path
