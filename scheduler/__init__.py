"""kubelite's scheduler: a filter -> score -> bind pipeline over an informer snapshot.

See scheduler/README.md for the pipeline; `run_scheduler` is the entry point.
"""

from scheduler.run import run_scheduler

__all__ = ["run_scheduler"]
