"""The training runner's console and self-checks (issue 13): --help, short
log lines and progress, the saved test split, label warnings, divergence,
the background gradient check, evaluate's flags in messages."""

import io
import json
import math
import re

import numpy as np
import pytest

from linjax.cli import console
from linjax.cli import run_checks
from linjax.cli.configs import default
from test_runners import _write_tsv
from test_runners import assert_one_line_error
from test_runners import run

ABSL_PREFIX = re.compile(r'^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\]')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A run on a TSV with a class of one document (rare, and absent from
  the carved test split), with the gradient check."""
  base = tmp_path_factory.mktemp('console')
  train_file = _write_tsv(base / 'train.tsv', 150, 0)
  with open(train_file, 'a', encoding='utf-8') as f:
    f.write('lonely\tonly one document has this label\n')
  workdir = base / 'run'
  proc = run('train', f'--config.data.train={train_file}',
             '--config.train.epochs=2', f'--workdir={workdir}')
  return dict(base=base, workdir=workdir, proc=proc,
              results=json.loads((workdir / 'results.json').read_text()))


def test_help_lists_every_config_key_with_default_and_description():
  proc = run('train', '--help')
  assert proc.returncode == 0
  config = default.get_config()
  for section, node in config.items():
    for key, value in node.items():
      line = [l for l in proc.stdout.splitlines()
              if l.strip().startswith(f'--config.{section}.{key} ')]
      assert len(line) == 1, (section, key)
      prefix = f'--config.{section}.{key} ({value!r})'
      assert line[0].strip().startswith(prefix), line
      assert len(line[0].strip()) > len(prefix) + 10, line   # described
  assert '--overwrite' in proc.stdout and '--workdir' in proc.stdout
  assert '--config:' in proc.stdout


def test_attribute_docs_parse_one_line_each():
  class Options:
    """Doc.

    Attributes:
      alpha: the first (e.g. a number). More text
        on the next line.
      beta: second, on
        two lines

    Trailing paragraph: not an attribute.
    """
  assert console.attribute_docs(Options) == {
      'alpha': 'the first (e.g. a number).',
      'beta': 'second, on two lines'}
  source = ('  config.data.x = 1  # inline comment. more\n'
            '  # A block\n  # above. more\n  config.train.y = 2\n'
            '  config.train.z = 3\n')
  assert console.comment_docs(source) == {'data.x': 'inline comment.',
                                          'train.y': 'A block above.'}


def test_log_lines_are_short_and_summary_names_model_size(trained):
  err = trained['proc'].stderr.splitlines()
  assert err and not [l for l in err if ABSL_PREFIX.match(l)], err[:5]
  assert any(re.match(r'^\d\d:\d\d:\d\d epoch 2/2: train loss', l)
             for l in err), err
  assert any('reading' in l and 'done in' in l for l in err)
  assert any(l.startswith(tuple('0123456789')) and 'evaluating' in l
             for l in err)
  size = trained['results']['model_bytes']
  assert size > 1000
  assert re.search(r'model \([\d.]+ [KM]B on disk\)', trained['proc'].stdout)


def test_progress_bar_on_a_terminal_and_lines_otherwise(caplog):
  class Terminal(io.StringIO):
    def isatty(self):
      return True
  tty = Terminal()
  bar = console.Progress('epoch', 4, stream=tty)
  for done in range(1, 5):
    bar.update(done, f'loss {done}')
  text = tty.getvalue()
  assert text.count('\r') == 4 and text.endswith('\n')
  assert '[' + '#' * 30 + '] 4/4 loss 4' in text
  plain = io.StringIO()
  with caplog.at_level('INFO'):
    lines = console.Progress('reading', 100, 'documents', stream=plain,
                             every=3600)
    for done in (10, 50, 100):
      lines.update(done)
  assert plain.getvalue() == ''
  logged = [r.getMessage() for r in caplog.records]
  # The first line, then nothing for an hour, but always the last.
  assert logged == ['reading 10/100 documents', 'reading 100/100 documents']


def test_test_split_is_saved_and_evaluate_reproduces_it(trained):
  results, workdir = trained['results'], trained['workdir']
  split = workdir / 'test_split.jsonl'
  assert results['test_split'] == str(split)
  rows = [json.loads(l) for l in split.read_text().splitlines()]
  assert len(rows) == results['num_test']
  out = trained['base'] / 'report.json'
  run('evaluate', f'--model={workdir / "model"}', f'--data={split}',
      f'--out={out}')
  report = json.loads(out.read_text())
  assert report['num_examples'] == results['num_test']
  assert report['accuracy'] == results['test_accuracy']
  assert report['macro_f1'] == results['test_macro_f1']


def test_rare_and_absent_classes_are_logged(trained):
  err = trained['proc'].stderr
  assert re.search(r"WARNING 1 class with fewer than 5 training documents: "
                   r"'lonely' \(1\)", err), err[-3000:]
  assert re.search(r"WARNING 1 class absent from the test split: 'lonely'",
                   err)
  assert trained['results']['test_report']['absent_classes'] == ['lonely']


def test_gradcheck_ran_in_the_background_and_passed(trained):
  check = trained['results']['gradcheck']
  assert check['passed'] is True and check['num_params'] > 4
  assert check['wait_seconds'] >= 0
  assert 'gradient check over' in trained['proc'].stderr


def _small_corpus(seed=0):
  from linjax.text import csr  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  rows = [(ids, rng.uniform(0.2, 1.0, ids.size)) for ids in
          (np.unique(rng.integers(0, 50, 6)) for _ in range(12))]
  used = np.unique(np.concatenate([r[0] for r in rows])).size
  return csr.from_rows(rows, 50), rng.integers(0, 3, 12), used


def test_run_gradcheck_passes_and_can_fail():
  from linjax.core import gradients  # pylint: disable=g-import-not-at-top
  x, y, used = _small_corpus()
  good = run_checks.run_gradcheck(x, y, 3, 0.01)
  assert good.passed and good.num_params == 3 * (used + 1)
  # Finite differences compared at the right coordinates: tiny errors
  # (a wrong index would compare different coordinates' slopes).
  for method in ('manual', 'numerical'):
    assert max(good.max_rel_error[method].values()) < 1e-8, good.format()
  # The full check of the library agrees on the same problem.
  full = run_checks.quick_gradcheck(x, y, 3, 0.01)
  assert full.passed and full.num_params == good.num_params

  def wrong(params, features, labels, l2):   # forgets the 2 of 2 l2 W
    grad = gradients.manual_grad(params, features, labels, 0.0)
    return grad._replace(W=grad.W + l2 * params.W)
  bad = run_checks.run_gradcheck(x, y, 3, 0.01, manual_fn=wrong)
  assert not bad.passed
  assert bad.max_rel_error['manual']['W'] > 1e-4
  assert bad.max_rel_error['manual']['b'] < 1e-12
  assert 'FAIL' in bad.format()
  coarse = run_checks.run_gradcheck(x, y, 3, 0.01, eps=0.5)
  assert not coarse.passed
  assert coarse.max_rel_error['numerical']['W'] > 1e-6
  assert coarse.max_rel_error['manual']['W'] < 1e-12


def test_run_gradcheck_in_batches_of_slopes(monkeypatch):
  """Finite differences in batches (the memory bound; 7 coordinates a batch,
  which does not divide the count: the last batch is padded) give the
  errors of all coordinates at once, and still catch a coarse step."""
  x, y, used = _small_corpus(2)
  whole = run_checks.run_gradcheck(x, y, 3, 0.01)
  monkeypatch.setattr(run_checks, '_SLOPE_BATCH_VALUES', 7 * 3 * (used + 1))
  batched = run_checks.run_gradcheck(x, y, 3, 0.01)
  assert batched.passed
  for leaf in ('W', 'b'):
    np.testing.assert_allclose(batched.max_abs_error['numerical'][leaf],
                               whole.max_abs_error['numerical'][leaf],
                               rtol=1e-6, atol=1e-15)
  coarse = run_checks.run_gradcheck(x, y, 3, 0.01, eps=0.5)
  assert not coarse.passed and coarse.max_rel_error['numerical']['W'] > 1e-6


def test_background_gradcheck_keeps_float32_in_the_main_thread():
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  x, y, _ = _small_corpus(1)
  job = run_checks.GradcheckInBackground(x, y, 3, 0.01)
  dtypes = []
  while job._thread.is_alive():  # pylint: disable=protected-access
    dtypes.append(jnp.asarray(1.0).dtype)
  background = job.result()
  foreground = run_checks.run_gradcheck(x, y, 3, 0.01)
  assert background.passed
  assert background.max_rel_error == foreground.max_rel_error
  assert dtypes and set(dtypes) == {np.dtype('float32')}  # x64 stayed there


def test_divergence_guard_rule():
  guard = run_checks.DivergenceGuard(num_classes=4, learning_rate=8.0)
  limit = run_checks.EPOCH_FACTOR * math.log(4)
  guard.check_epoch(1, limit * 0.999)        # measured runs stay far below
  with pytest.raises(run_checks.LossExploded,
                     match=r'epoch 3: the mean training loss .* x the '
                           r'initial loss log C = 1.39 .*learning_rate=8 '
                           r'\(e.g. 2\)'):
    guard.check_epoch(3, limit * 1.001)
  from linjax.engine import training  # pylint: disable=g-import-not-at-top
  assert issubclass(run_checks.LossExploded, training.TrainingDiverged)
  assert not guard.check_model(math.log(4) * 0.99)
  assert guard.check_model(math.log(4) * 1.01)


def test_huge_learning_rate_fails_and_writes_nothing(trained, tmp_path):
  """Item 3: lr 1e30 used to train to a loss of 1e29 and exit 0."""
  workdir = tmp_path / 'w'
  proc = run('train', f'--config.data.train={trained["base"] / "train.tsv"}',
             '--config.optimizer.learning_rate=1e30', f'--workdir={workdir}',
             check=False)
  assert proc.returncode == 1
  assert_one_line_error(proc, 'diverged at epoch 1', 'x the initial loss',
                        '--config.optimizer.learning_rate=1e+30')
  assert 'Fatal' not in proc.stderr
  # Issue 23: the failed run removes the workdir it created, and says so.
  assert not workdir.exists()
  assert f'(removed --workdir={workdir}, which this run created)' in (
      proc.stderr.strip().splitlines()[-1])


def test_evaluate_names_its_flags(trained, tmp_path):
  model = trained['workdir'] / 'model'
  empty = tmp_path / 'empty.tsv'
  empty.write_text('')
  proc = run('evaluate', f'--model={model}', f'--data={empty}', check=False)
  assert_one_line_error(proc, '--data', str(empty), 'empty')
  header_only = tmp_path / 'header.tsv'
  header_only.write_text('label\ttext\n')
  proc = run('evaluate', f'--model={model}', f'--data={header_only}',
             check=False)
  assert_one_line_error(proc, '--data', '--format')
  assert 'data.format' not in proc.stderr
  split = trained['workdir'] / 'test_split.jsonl'
  for out, reason in (('/proc/linjax/report.json', 'cannot'),
                      (str(tmp_path), 'is a folder')):
    proc = run('evaluate', f'--model={model}', f'--data={split}',
               f'--out={out}', check=False)
    assert_one_line_error(proc, f'--out={out}', reason)
    assert proc.stdout == ''                 # failed before any work
