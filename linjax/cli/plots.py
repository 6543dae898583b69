r"""Draws a finished training run's PNG plots, on demand.

  linjax plots --workdir=DIR [--out=DIR]
  python -m experiments.plots --workdir=DIR

Writes ``curves.png`` (loss and validation accuracy per epoch, from
``metrics.jsonl``), ``confusion_matrix.png`` (single-label runs with a test
split, from ``results.json``'s ``test_report``) and ``templates.png`` (each
class's largest template weights, from ``results.json``'s ``top_features``,
or from the saved model for a run written before they were recorded) into
``--out`` (default: ``--workdir``), each atomically, and prints their
paths. A training run draws none of them by default (its ``report.html``
shows the same curves, confusion matrix and templates, and matplotlib's
import alone costs a run about 0.6 s); ``linjax train --plots`` draws them
in the run.
"""

from __future__ import annotations

import json
import os

from absl import app
from absl import flags

from linjax.cli import config_check
from linjax.cli import console
from linjax.cli import workdir as workdir_lib

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string('workdir', None, 'A finished training run\'s folder '
                      '(results.json, metrics.jsonl, model/).')
  flags.DEFINE_string('out', '', 'Folder to write the PNGs into (created if '
                      'needed); empty: --workdir.')


def _read_json(path: str, what: str):
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except FileNotFoundError:
    raise workdir_lib.PathError(
        f'--workdir: no {what} at {path}; is it the folder of a finished '
        f'training run (linjax train --workdir=...)?') from None
  except (OSError, ValueError) as e:
    raise workdir_lib.PathError(f'--workdir: cannot read {path}: '
                                f'{config_check.one_line(e)}') from None


def run_history(workdir: str) -> list:
  """The epochs of ``workdir/metrics.jsonl`` (one dict each)."""
  path = os.path.join(workdir, workdir_lib.METRICS)
  _read_json(os.path.join(workdir, workdir_lib.RESULTS), 'results.json')
  try:
    with open(path, encoding='utf-8') as f:
      return [json.loads(line) for line in f if line.strip()]
  except FileNotFoundError:
    raise workdir_lib.PathError(f'--workdir: no {path}') from None
  except ValueError as e:
    raise workdir_lib.PathError(f'--workdir: {path} is not JSON lines '
                                f'({config_check.one_line(e)})') from None


def top_features_of(workdir: str, results: dict) -> list:
  """results.json's ``top_features``; for an older run, read from its
  saved model (`interpret.top_features`, 10 per class)."""
  if results.get('top_features') is not None:
    return results['top_features']
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  from linjax.analysis import interpret  # pylint: disable=g-import-not-at-top
  model = saved_model.load(os.path.join(workdir, workdir_lib.MODEL))
  return interpret.top_features(model.params, model.featurizer,
                                model.label_map.names, k=10)


def draw(workdir: str, out: str = '') -> list:
  """Draws the plots of the run in ``workdir`` into ``out`` (default
  ``workdir``); returns the paths written.

  Raises:
    PathError: ``workdir`` holds no finished run, or ``out`` is not
      writable.
  """
  from linjax.cli import finish_run  # pylint: disable=g-import-not-at-top
  results = _read_json(os.path.join(workdir, workdir_lib.RESULTS),
                       'results.json')
  history = run_history(workdir)
  workdir_lib.ensure_writable_dir(out or workdir,
                                  '--out' if out else '--workdir')
  out = out or workdir
  report = results.get('test_report')
  if not (isinstance(report, dict) and 'confusion_matrix' in report):
    report = None
  return finish_run.write_plots(out, history, report,
                                top_features_of(workdir, results),
                                results.get('labels') or [])


def main(argv):
  console.short_log_format()
  with config_check.runner_main(argv, workdir=FLAGS.workdir):
    written = draw(FLAGS.workdir, FLAGS.out)
    if not written:
      raise workdir_lib.PathError('plots need matplotlib: pip install '
                                  'matplotlib')
    for path in written:
      print(f'wrote {path}')


def command() -> None:
  """``linjax plots``: defines the flags, parses them and runs `main`."""
  from linjax.cli import runner_flags  # pylint: disable=g-import-not-at-top
  define_flags()
  app.run(main, flags_parser=runner_flags.parse_flags)


if __name__ == '__main__':
  command()
