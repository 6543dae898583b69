"""What the runners show on the console: short log lines, progress, --help,
and a clean exit on Ctrl-C or SIGTERM.

* `short_log_format`: absl's ``I1201 20:08:40.433025 139912168938368
  train.py:328]`` prefix becomes ``20:08:40``.
* `Progress`: how far along a phase is, as a bar redrawn in place when
  stderr is a terminal, or as plain lines (at most one every few seconds,
  and the last) when it is a file or a pipe.
* `config_help`: every config key with its default and a one-line
  description, from the options dataclasses' ``Attributes:`` sections and the
  comments of linjax/cli/configs/default.py (the one source of both).
* `raise_on_signals`: SIGINT and SIGTERM raise `Interrupted` (not an
  `Exception`, so no ``except Exception`` swallows it); the runner prints
  one line and exits 128 + the signal number (130, 143).
* `bounded_list`, `short_name`: lists and names in a message, bounded in
  length ("'a', 'b', ... and 880 more"), so that no warning is a page long.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging as std_logging
import os
import re
import signal
import sys
import threading
import time

from absl import logging

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              'configs', 'default.py')


class _ShortFormatter(std_logging.Formatter):

  def format(self, record):
    level = '' if record.levelno < std_logging.WARNING else (
        f'{record.levelname} ')
    stamp = time.strftime('%H:%M:%S', time.localtime(record.created))
    return f'{stamp} {level}{record.getMessage()}'


def short_log_format() -> None:
  """Log lines as ``HH:MM:SS [WARNING ]message`` (call after `app.run`)."""
  logging.get_absl_handler().setFormatter(_ShortFormatter())


class Progress:
  """Progress of a phase of ``total`` units (epochs, documents, ...).

  Args:
    label: the phase, e.g. ``'epoch'``.
    total: units in the phase.
    unit: shown after the count, e.g. ``'documents'``.
    stream: where a bar is drawn (default stderr); plain lines go to the log.
    every: seconds between plain lines (the last one is always shown; 0:
      every update).
  """

  def __init__(self, label: str, total: int, unit: str = '', stream=None,
               every: float = 5.0):
    self.label, self.total = label, max(int(total), 1)
    self.unit = f' {unit}' if unit else ''
    self.stream = stream or sys.stderr
    self.every = every
    self.bar = bool(getattr(self.stream, 'isatty', lambda: False)())
    self._last = -float('inf')

  def update(self, done: int, note: str = '') -> None:
    """Reports ``done`` of ``total`` units; ``note`` is shown beside."""
    now = time.monotonic()
    last = done >= self.total
    if self.bar:
      width = 30
      filled = int(width * min(done, self.total) / self.total)
      self.stream.write(f'\r{self.label} [{"#" * filled}'
                        f'{"." * (width - filled)}] {done}/{self.total}'
                        f'{self.unit} {note}\033[K' + ('\n' if last else ''))
      self.stream.flush()
    elif last or now - self._last >= self.every:
      logging.info('%s %d/%d%s%s', self.label, done, self.total, self.unit,
                   f': {note}' if note else '')
      self._last = now


@contextlib.contextmanager
def phase(label: str):
  """Logs ``label...`` and, when the block ends, how long it took."""
  logging.info('%s...', label)
  start = time.perf_counter()
  yield
  logging.info('%s: done in %.2f s', label, time.perf_counter() - start)


# Bounded messages.

LIST_ITEMS = 10     # items of a list shown in a message at most
NAME_WIDTH = 60     # characters of one name shown at most


def short_name(name, width: int = NAME_WIDTH) -> str:
  """``name`` as a str of at most ``width`` characters (cut with '...')."""
  name = str(name)
  return name if len(name) <= width else name[:width - 3] + '...'


def bounded_list(items, limit: int = LIST_ITEMS, sep: str = ', ') -> str:
  """The first ``limit`` of ``items`` (strs) joined by ``sep``, then
  ``... and N more`` if there are more."""
  items = list(items)
  shown = sep.join(items[:limit])
  if len(items) > limit:
    shown += f'{sep}... and {len(items) - limit} more'
  return shown


# --help: every config key, its default and a one-line description.


def _first_sentence(text: str) -> str:
  text = ' '.join(text.split())
  for match in re.finditer(r'\.(\s|$)', text):
    if not re.search(r'\b(e\.g|i\.e|etc)$', text[:match.start()]):
      return text[:match.start() + 1]
  return text


def attribute_docs(cls) -> dict:
  """{field: one line} from the ``Attributes:`` section of cls's docstring."""
  doc = inspect.getdoc(cls) or ''
  docs, name, in_section = {}, None, False
  for line in doc.splitlines():
    if line.strip() == 'Attributes:':
      in_section = True
      continue
    if not in_section:
      continue
    if line and not line.startswith(' '):
      break  # the section ended
    entry = re.match(r'^ {2}(\w+): ?(.*)$', line)
    if entry:
      name = entry.group(1)
      docs[name] = entry.group(2)
    elif name and line.startswith('    '):
      docs[name] += ' ' + line.strip()
    elif not line.strip():
      name = None
  return {k: _first_sentence(v) for k, v in docs.items()}


def comment_docs(source: str) -> dict:
  """{'section.key': comment} for ``config.section.key = value  # comment``
  lines of a config file, or a comment block just above the line."""
  docs, block = {}, []
  for line in source.splitlines():
    stripped = line.strip()
    if stripped.startswith('#'):
      block.append(stripped.lstrip('#').strip())
      continue
    match = re.match(r'^config\.(\w+)\.(\w+)\s*=[^#]*(?:#\s*(.*))?$', stripped)
    if match:
      text = match.group(3) or ' '.join(block)
      if text:
        docs[f'{match.group(1)}.{match.group(2)}'] = _first_sentence(text)
    block = []
  return docs


# What a key holds, where its comment in default.py says only its default.
_WHAT = {'data.train': 'the training data: a TSV (label<TAB>text header), '
                       'CSV, JSONL or fastText file, a glob of such files '
                       "(quoted, e.g. 'part-*.tsv': several files, or the "
                       "parts of a multi-process run), or a folder of class "
                       'folders;',
         'data.test': 'the test data, likewise (a file, a glob of files or '
                      'a folder);'}


def config_help(config_path: str = DEFAULT_CONFIG) -> str:
  """A table of every key of the config at ``config_path``: the key, its
  default, and a one-line description."""
  from linjax.cli import config_check  # pylint: disable=g-import-not-at-top
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location('_help_config', config_path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  with open(config_path, encoding='utf-8') as f:
    docs = comment_docs(f.read())
  for section, cls in config_check.SECTIONS.items():
    for key, text in attribute_docs(cls).items():
      docs.setdefault(f'{section}.{key}', text)
  for key, what in _WHAT.items():
    docs[key] = f'{what} {docs.get(key, "")}'.strip()
  rows = []
  for section, node in config.items():
    for key, value in node.items():
      rows.append((f'--config.{section}.{key}', repr(value),
                   docs.get(f'{section}.{key}', '')))
  width = max(len(r[0]) + len(r[1]) for r in rows) + 4
  lines = ['config keys (override any with --config.section.key=value):']
  lines += [f'  {k} ({v})'.ljust(width + 2) + f' {d}' for k, v, d in rows]
  return '\n'.join(lines)


# Interrupts.


class Interrupted(BaseException):
  """SIGINT or SIGTERM arrived; ``exit_code`` is 128 + the signal number."""

  def __init__(self, signum: int):
    super().__init__(signal.Signals(signum).name)
    self.signum = signum
    self.exit_code = 128 + signum


def exit_process(code) -> None:
  """Exits like ``sys.exit(code)`` (a str is printed to stderr, status 1).

  If a daemon thread is still busy (the background compile or gradient
  check of a run that failed or was interrupted), the process ends with
  `os._exit` after flushing the output: interpreter shutdown under a thread
  inside XLA can abort with a fatal error instead of the intended status.
  """
  if isinstance(code, str):
    sys.stderr.write(code + '\n')
    code = 1
  code = 0 if code is None else code
  sys.stdout.flush()
  sys.stderr.flush()
  if any(t.daemon and t.is_alive() for t in threading.enumerate()):
    logging.flush()
    os._exit(code)  # pylint: disable=protected-access
  sys.exit(code)


def _raise_interrupted(signum, frame):  # pylint: disable=unused-argument
  raise Interrupted(signum)


@contextlib.contextmanager
def raise_on_signals():
  """Within the block (main thread only), SIGINT and SIGTERM raise
  `Interrupted`; the previous handlers come back afterwards."""
  previous = {s: signal.signal(s, _raise_interrupted)
              for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    yield
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)


@dataclasses.dataclass
class Stage:
  """Where a run is, for the line printed on an interrupt."""

  phase: str = 'starting'
  epochs_done: int = 0
  training: bool = False
  checkpoint_dir: str | None = None   # None: the run writes no checkpoints
  keep_checkpoints: int = 1           # train.keep_checkpoints

  def interrupted_line(self) -> str:
    """``interrupted at epoch e; rerun the same command to resume`` (or to
    start again, when there is no checkpoint to resume from)."""
    from linjax.engine import checkpoint  # pylint: disable=g-import-not-at-top
    if self.training:
      where = f'interrupted at epoch {self.epochs_done + 1}'
    elif self.epochs_done:
      where = (f'interrupted after epoch {self.epochs_done}, while '
               f'{self.phase}')
    else:
      where = f'interrupted while {self.phase} (before epoch 1)'
    latest = None
    if self.checkpoint_dir:
      # A signal between a checkpoint's commit and its pruning leaves one
      # too many: finish the pruning here.
      if os.path.isdir(self.checkpoint_dir):
        checkpoint.prune(self.checkpoint_dir, self.keep_checkpoints)
      latest = checkpoint.latest_epoch(self.checkpoint_dir)
    if latest:
      return (f'{where}; rerun the same command to resume (from the '
              f'checkpoint of epoch {latest})')
    return f'{where}; rerun the same command to start again'
