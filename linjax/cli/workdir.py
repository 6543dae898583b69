"""The training runner's output folder: checked first, written safely.

A workdir is in one of three states, told apart before any work starts:

  new        empty or absent: a fresh run.
  unfinished checkpoints of an interrupted run, no results.json: the same
             command resumes it (`linjax.engine.training.fit` checks that the
             checkpoints come from the same config and data).
  finished   results.json, or a saved model with no checkpoint to resume
             from: refused unless ``--overwrite``, so a finished run's model,
             results and plots are never replaced by accident.

A failed run (an error, not an interrupt) leaves the workdir as it found
it: `cleaned_up_on_failure` removes what the run added (the folder itself
if the run created it) and says so on the error's line; an interrupted run
keeps everything, so that the same command resumes.

`prepare` decides this, creates the folder and proves it writable before
data are loaded, so a read-only mount or a typo fails in milliseconds with a
line naming ``--workdir`` and the path. Nothing is deleted or truncated
there: `MetricsLog` opens metrics.jsonl only when the first epoch of the run
has finished (after `fit` accepted any checkpoints), and every file the
runner writes goes to a temporary name first and is renamed over the old one
(`write_atomic`), so an interrupt leaves the old file or the new one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import shutil
import tempfile

RESULTS = 'results.json'
_UMASK = os.umask(0o022)
os.umask(_UMASK)
METRICS = 'metrics.jsonl'
MODEL = 'model'
CHECKPOINTS = 'checkpoints'
TEST_SPLIT = 'test_split.jsonl'


class PathError(OSError):
  """A path named by a flag cannot be used; the message names both."""

  def __str__(self):
    return self.args[0]


_REASONS = {errno.EROFS: 'the file system is read-only',
            errno.EACCES: 'permission denied',
            errno.EPERM: 'permission denied',
            errno.ENOSPC: 'no space left on the device',
            errno.EEXIST: 'a file of that name exists',
            errno.ENOTDIR: 'a part of the path is a file, not a folder',
            errno.ENOENT: 'a part of the path does not exist and cannot be '
                          'created there'}


def path_error(flag: str, path: str, error: OSError, doing: str) -> PathError:
  """A `PathError` naming ``flag``, ``path``, what failed and why."""
  reason = _REASONS.get(error.errno, error.strerror or str(error))
  return PathError(f'{flag}={path}: cannot {doing} ({reason}); choose a '
                   f'folder you can write to.')


def ensure_writable_dir(path: str, flag: str, value: str | None = None
                        ) -> None:
  """Creates folder ``path`` if needed and proves a file can be made in it.

  Args:
    path: the folder.
    flag: the flag named in messages.
    value: the flag's value shown in messages (default: ``path``).

  Raises:
    PathError: naming ``flag`` and its value (a file of that name, a
      read-only file system, no permission, /proc, ...).
  """
  value = path if value is None else value
  if os.path.exists(path) and not os.path.isdir(path):
    raise PathError(f'{flag}={value}: {path} is a file, not a folder; choose '
                    f'a new folder name.' if value != path else
                    f'{flag}={path}: is a file, not a folder; choose a new '
                    f'folder name.')
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise path_error(flag, value, e, 'create the folder') from None
  try:
    fd, probe = tempfile.mkstemp(prefix='.write-test-', dir=path)
    os.close(fd)
    os.remove(probe)
  except OSError as e:
    raise path_error(flag, value, e, 'write into the folder') from None


def write_atomic(path: str, text: str, flag: str = '--workdir') -> None:
  """Writes ``text`` to ``path`` via a temporary file and a rename.

  An interrupt or error leaves the previous file untouched (and no
  temporary file behind).

  Raises:
    PathError: naming ``flag`` and ``path``.
  """
  directory = os.path.dirname(os.path.abspath(path))
  tmp = None
  try:
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', dir=directory)
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
      f.write(text)
    os.chmod(tmp, 0o666 & ~_UMASK)   # mkstemp makes it private (0600)
    os.replace(tmp, path)
    tmp = None
  except OSError as e:
    raise path_error(flag, path, e, 'write the file') from None
  finally:
    if tmp is not None and os.path.exists(tmp):
      os.remove(tmp)


def check_output_file(path: str, flag: str) -> None:
  """Fails now, naming ``flag``, if file ``path`` could not be written later.

  Creates its folder if needed; does not create or change the file.
  """
  if os.path.isdir(path):
    raise PathError(f'{flag}={path}: is a folder; name a file.')
  ensure_writable_dir(os.path.dirname(os.path.abspath(path)), flag, path)
  if os.path.exists(path) and not os.access(path, os.W_OK):
    raise PathError(f'{flag}={path}: cannot write the file (permission '
                    f'denied); choose another path.')


def check_model_dir(path: str, flag: str = '--model') -> None:
  """Fails now, naming ``flag``, if ``path`` is no saved model folder; a run
  folder (``RUN/model`` holds the model) gets the flag to type.

  Raises:
    PathError: a missing path, a file, or a run folder.
  """
  if not os.path.exists(path):
    raise PathError(f'{flag}={path}: no such folder; give a saved model '
                    f'folder (a run\'s DIR/{MODEL}).')
  if not os.path.isdir(path):
    raise PathError(f'{flag}={path}: is a file; give a saved model folder '
                    f'(a run\'s DIR/{MODEL}).')
  if (not os.path.isfile(os.path.join(path, 'model.json')) and
      os.path.isfile(os.path.join(path, MODEL, 'model.json'))):
    raise PathError(f'{flag}={path} is a run folder, not a saved model. '
                    f'Fix: {flag}={os.path.join(path, MODEL)}')


def load_model(path: str, flag: str = '--model'):
  """The saved model at ``path`` (a `linjax.loaded_model.SavedModel`),
  after `check_model_dir` (a run folder gets the flag to type).

  Raises:
    PathError: see `check_model_dir`; ModelFileError: the model does not
      verify (naming the file).
  """
  check_model_dir(path, flag)
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  return saved_model.load(path)


def check_new_output(path: str, flag: str, overwrite: bool,
                     what: str = 'file') -> None:
  """Refuses an output ``path`` that exists unless ``overwrite``; checks its
  folder is writable (creating it if needed).

  Raises:
    PathError: naming ``flag`` and the fix.
  """
  if what == 'file':
    check_output_file(path, flag)
  else:
    ensure_writable_dir(os.path.dirname(os.path.abspath(path)), flag, path)
  if os.path.exists(path) and not overwrite:
    raise PathError(f'{flag}={path} exists; nothing was changed. Pass '
                    f'--overwrite to replace it, or choose another {flag}.')


@dataclasses.dataclass(frozen=True)
class State:
  """What `prepare` found in a workdir."""

  path: str
  finished: bool         # a finished run is there (being overwritten)
  checkpoints: bool      # checkpoints of an earlier run are there

  def join(self, *names: str) -> str:
    return os.path.join(self.path, *names)


def prepare(path: str, overwrite: bool, flag: str = '--workdir') -> State:
  """Checks ``path`` before any work; creates it and proves it writable.

  Args:
    path: the workdir.
    overwrite: whether a finished run there may be replaced.
    flag: the flag named in messages.

  Returns:
    State.

  Raises:
    PathError: not a writable folder, or a finished run and no
      ``overwrite`` (the message says how to proceed).
  """
  from linjax.engine import checkpoint  # pylint: disable=g-import-not-at-top
  ensure_writable_dir(path, flag)
  has_checkpoints = bool(checkpoint.epochs(os.path.join(path, CHECKPOINTS)))
  has_model = os.path.isfile(os.path.join(path, MODEL, 'model.json'))
  finished = os.path.isfile(os.path.join(path, RESULTS)) or (
      has_model and not has_checkpoints)
  if finished and not overwrite:
    raise PathError(
        f'{flag}={path} holds a finished run ({RESULTS} and {MODEL}/); '
        f'nothing was changed. Pass --overwrite to replace it, or choose '
        f'another {flag}.')
  return State(path=path, finished=finished, checkpoints=has_checkpoints)


def _entries(path: str) -> set:
  try:
    return set(os.listdir(path))
  except OSError:
    return set()


def remove_added(path: str, existed: bool, before: set,
                 flag: str = '--workdir') -> str:
  """Removes the entries of folder ``path`` not in ``before`` (and the
  folder, if it did not exist before and is then empty); returns a note
  saying what was removed, or '' if nothing was."""
  added = sorted(_entries(path) - before)
  for name in added:
    target = os.path.join(path, name)
    if os.path.isdir(target) and not os.path.islink(target):
      shutil.rmtree(target, ignore_errors=True)
    else:
      with contextlib.suppress(OSError):
        os.remove(target)
  if not existed and os.path.isdir(path) and not _entries(path):
    with contextlib.suppress(OSError):
      os.rmdir(path)
    return f'removed {flag}={path}, which this run created'
  if added:
    return (f'removed what this run wrote into {flag}={path}: '
            f'{", ".join(added[:5])}{" ..." if len(added) > 5 else ""}')
  return ''


@contextlib.contextmanager
def cleaned_up_on_failure(path: str | None, flag: str = '--workdir',
                          finished: str = RESULTS):
  """On a failure inside the block, removes what the block added to folder
  ``path`` (the folder too if it created it) and appends a note to the
  one-line error.

  A failure is a ``SystemExit`` with a non-zero status (the runners' one-line
  user errors) or an ``Exception``. An interrupt (`console.Interrupted`,
  KeyboardInterrupt) keeps everything: the same command resumes. A refused
  finished run adds nothing, so nothing of it is touched. Nor is a run
  that wrote ``finished`` (its last file: results.json, sweep.json, ...)
  before failing, e.g. on printing its summary into a closed pipe
  (``linjax train ... | head -1``): it is a finished run.
  """
  if not path:
    yield
    return
  existed = os.path.isdir(path)
  before = _entries(path)
  marker = os.path.join(path, finished)
  started = _mtime(marker)
  def wrote_marker():
    return _mtime(marker) not in (None, started)
  try:
    yield
  except SystemExit as e:
    if e.code in (0, None) or wrote_marker():
      raise
    note = remove_added(path, existed, before, flag)
    if note and isinstance(e.code, str):
      raise SystemExit(f'{e.code} ({note})') from None
    if note:
      import sys  # pylint: disable=g-import-not-at-top
      sys.stderr.write(f'{note}\n')
    raise
  except Exception:
    if not wrote_marker():
      remove_added(path, existed, before, flag)
    raise


def _mtime(path: str) -> int | None:
  """``path``'s modification time in ns (None if absent): the runs'
  last file is rewritten by rename, so a new one always differs."""
  try:
    return os.stat(path).st_mtime_ns
  except OSError:
    return None


def forget_finished_run(state: State) -> None:
  """Deletes a finished run's results.json and checkpoints, once the run
  replacing it (--overwrite) is known to proceed. Its model, log and plots
  stay until the new ones replace them, so that if this run is interrupted
  the workdir is an unfinished run that the same command resumes."""
  from linjax.engine import checkpoint  # pylint: disable=g-import-not-at-top
  results = state.join(RESULTS)
  if os.path.isfile(results):
    os.remove(results)
  checkpoint.remove(state.join(CHECKPOINTS))


class MetricsLog:
  """metrics.jsonl, one JSON line per epoch, written as epochs finish.

  The file is opened on the first record only (by then `fit` has accepted
  or started over from the checkpoints), so a refused run never truncates
  an earlier run's log. A resumed run keeps the lines of the epochs before
  its first one. `finish` rewrites the whole history atomically.
  """

  def __init__(self, path: str):
    self.path = path
    self._file = None

  def write(self, record: dict) -> None:
    """Appends ``record`` (with an int ``epoch``, counted from 1)."""
    if self._file is None:
      kept = []
      if record['epoch'] > 1 and os.path.isfile(self.path):
        kept = [line for line in _read_lines(self.path)
                if _epoch(line) is not None and _epoch(line) < record['epoch']]
      write_atomic(self.path, ''.join(line + '\n' for line in kept))
      self._file = open(self.path, 'a', encoding='utf-8')  # pylint: disable=consider-using-with
    self._file.write(json.dumps(record) + '\n')
    self._file.flush()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None

  def finish(self, history: list) -> None:
    """Replaces the file with the full ``history`` (restored epochs too)."""
    self.close()
    write_atomic(self.path, ''.join(json.dumps(r) + '\n' for r in history))


def _read_lines(path: str) -> list:
  with open(path, encoding='utf-8', errors='replace') as f:
    return f.read().splitlines()


def _epoch(line: str):
  try:
    epoch = json.loads(line).get('epoch')
  except (ValueError, AttributeError):
    return None
  return epoch if isinstance(epoch, int) else None


def split_as_jsonl(texts, labels, text_column: str,
                     label_column: str) -> str:
  """The carved test split as JSONL text that `read_corpus` reads back
  exactly (any text: tabs and newlines included), with the run's columns.
  A multi-label document's labels (a tuple) are written as a JSON list."""
  return ''.join(json.dumps({label_column: list(map(str, label))
                             if isinstance(label, (tuple, list))
                             else str(label), text_column: text},
                            ensure_ascii=False) + '\n'
                 for text, label in zip(texts, labels))


def disk_size(path: str) -> int:
  """Bytes of the files under ``path`` (a file or a folder)."""
  if os.path.isfile(path):
    return os.path.getsize(path)
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(path) for name in names)


def format_bytes(n: int) -> str:
  """``n`` bytes as ``'812 B'``, ``'3.4 KB'``, ``'23.1 MB'`` or ``'1.2 GB'``."""
  if n < 1000:
    return f'{n} B'
  for unit in ('KB', 'MB', 'GB'):
    n /= 1000.0
    if n < 1000 or unit == 'GB':
      return f'{n:.1f} {unit}'
