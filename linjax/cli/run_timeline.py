"""A run's phase timeline: when each phase began and ended, in seconds since
the process started.

The runner records its phases (reading, featurising, training, evaluating,
saving, ...) into results.json's ``timeline``, so that a benchmark that
times the whole process (start to exit) can say where every second went:
the time before the first phase is the interpreter's start and the imports
(JAX's among them), the time after the last one the process's exit.

  timeline = Timeline()
  with timeline.phase('read'):
    ...
  timeline.add('gradient check (background)', start, end)
  results['timeline'] = timeline.as_json()

Times are `time.perf_counter` readings moved to the process's start, which
the kernel records in clock ticks (/proc/self/stat, 10 ms); where that is
not readable (not Linux), the origin is the import of this module.
"""

from __future__ import annotations

import contextlib
import os
import time


def _process_age() -> float | None:
  """Seconds since this process started (Linux /proc), or None."""
  try:
    with open('/proc/self/stat', 'rb') as f:
      stat = f.read()
    # Field 22 (starttime, clock ticks after boot) counts from the field
    # after the command's closing parenthesis (the command may hold spaces).
    start_ticks = int(stat[stat.rindex(b')') + 2:].split()[19])
    boot_age = time.clock_gettime(time.CLOCK_BOOTTIME)
    return max(0.0, boot_age - start_ticks / os.sysconf('SC_CLK_TCK'))
  except (OSError, ValueError, IndexError, AttributeError):
    return None


_AGE = _process_age()
# perf_counter's reading at the process's start.
ORIGIN = time.perf_counter() - (_AGE or 0.0)


def now() -> float:
  """Seconds since the process started."""
  return time.perf_counter() - ORIGIN


class Timeline:
  """Phases of a run: (name, start, end) in seconds since the process start."""

  def __init__(self):
    self.entries: list[tuple[str, float, float]] = []

  @contextlib.contextmanager
  def phase(self, name: str):
    """Records the block as phase ``name`` (also when it raises)."""
    start = now()
    try:
      yield
    finally:
      self.entries.append((name, start, now()))

  def add(self, name: str, start: float, end: float) -> None:
    """Records a phase measured elsewhere (``start``, ``end``: `now()`
    readings, e.g. of a background thread)."""
    self.entries.append((name, float(start), float(end)))

  def seconds(self, name: str) -> float:
    """The summed seconds of the phases called ``name`` (0 if none)."""
    return sum(end - start for n, start, end in self.entries if n == name)

  def as_json(self) -> list[dict]:
    """results.json's ``timeline``: one dict per phase, in start order,
    ``{'phase', 'start_s', 'end_s'}`` (seconds since the process started,
    to the millisecond)."""
    return [dict(phase=name, start_s=round(start, 3), end_s=round(end, 3))
            for name, start, end in sorted(self.entries,
                                           key=lambda e: (e[1], e[2]))]
