"""One process per run directory: a lock file that the operating system releases when its holder
exits, however it exits, so a killed run never leaves a directory locked."""

from __future__ import annotations

import contextlib
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import ConfigurationError

LOCK_FILE = ".run.lock"


class RunDirectoryLock:
    """Held by the run that uses a directory, from before Hydra writes into it until the run ends."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.lock = FileLock(self.path)

    def acquire(self) -> None:
        """Take the lock without waiting; refuse the run when another process holds it."""
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            raise ConfigurationError(
                f"{self.path.parent} is in use by another run that is still going. Let it finish, "
                "or leave hydra.run.dir at its default (a new directory per run)."
            ) from None

    def release(self) -> None:
        if self.lock.is_locked:
            self.lock.release()
            with contextlib.suppress(OSError):  # the next run of this directory makes it again
                self.path.unlink()
