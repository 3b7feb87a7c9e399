"""The summary of a Hydra sweep: every job's results in one table, the best one marked, and a plot.

Read from the files each job left in its directory, not from memory: jobs may have run in other
processes or on other machines. Imports nothing heavy (no torch; matplotlib only when drawing), so
Hydra can load it at the start of every run (callback.SweepSummaryCallback).
"""

from .jobs import Job, SweepSummary
from .summary import summarize_sweep

__all__ = ["Job", "SweepSummary", "summarize_sweep"]
