"""Image files that cannot be read: left out and listed (data.bad_files=skip), or the run stops (error)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ConfigurationError

log = logging.getLogger(__name__)
BAD_FILES_POLICIES = ("skip", "error")


class BadFiles:
    """What happens to files that cannot be read: "skip" leaves them out and lists them, "error" stops.

    Picklable, so loader workers apply the same policy to files that fail only when decoded.
    """

    def __init__(self, policy: str = "skip", list_path: str | Path | None = None) -> None:
        if policy not in BAD_FILES_POLICIES:
            raise ConfigurationError(
                f"data.bad_files={policy!r}: use one of {', '.join(BAD_FILES_POLICIES)}."
            )
        self.policy = policy
        self.list_path = None if list_path is None else Path(list_path).absolute()
        self.found: list[tuple[Path, str]] = []

    def add(self, path: Path, error: BaseException) -> None:
        """Record an unreadable file, or under "error" raise a ConfigurationError naming it."""
        reason = f"{type(error).__name__}: {error}"
        if self.policy == "error":
            raise ConfigurationError(
                f"Cannot read image {path} ({reason}). Fix or remove the file, or set data.bad_files=skip "
                "to leave unreadable files out."
            )
        self.found.append((path, reason))

    def report(self, found_when: str) -> None:
        """Write the files recorded so far to the list file and warn with their number and where it is."""
        if not self.found:
            return
        where = "not written (data.bad_files_list is null)"
        if self.list_path is not None:
            self.list_path.parent.mkdir(parents=True, exist_ok=True)
            with self.list_path.open("a") as listing:
                listing.writelines(f"{path}\t{reason}\n" for path, reason in self.found)
            where = f"listed in {self.list_path}"
        log.warning(
            "Skipped %d unreadable image file(s) %s (data.bad_files=skip), %s; first: %s (%s).",
            len(self.found),
            found_when,
            where,
            *self.found[0],
        )
        self.found = []
