"""The runner with another loss or optimiser, end to end (subprocesses).

`linjax train` with ``--config.train.loss=hinge``, label smoothing, a
user's ``MODULE:NAME`` loss, and the optimisers lion, adabelief and a
user's optax transformation: results.json names the loss, the validation
loss is the trained loss, the saved model records it, and every mistake
(unknown loss, a module that does not import, an option the loss does not
take, a saved loss that cannot be found) is one line naming the flag or
the model, before any work.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from test_runners import _write_tsv   # the runner tests' 3-class corpus
from test_runners import ROOT

FAST = ('--config.train.checkpoint_every=0', '--config.train.gradcheck=False',
        '--config.train.compile_cache=')

USER_MODULE = textwrap.dedent('''
    """A user's loss and optimiser, outside linjax."""
    import jax.numpy as jnp
    import optax


    def squared_hinge(logits, labels):
      """Crammer-Singer hinge, squared."""
      return optax.losses.multiclass_hinge_loss(logits, labels) ** 2


    def slow_adam():
      return optax.scale_by_adam(b1=0.5)
''')


def linjax_cmd(*args, cwd, check=True):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(ROOT))
  proc = subprocess.run([sys.executable, '-m', 'linjax', *map(str, args)],
                        capture_output=True, text=True, cwd=cwd, env=env,
                        timeout=600)
  if check and proc.returncode != 0:
    raise AssertionError(proc.stderr[-3000:])
  return proc


def one_line_error(proc, *fragments):
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr, proc.stderr[-2000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith('error: '), proc.stderr[-2000:]
  for fragment in fragments:
    assert fragment in last, last
  return last


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  base = tmp_path_factory.mktemp('loss_runner')
  _write_tsv(base / 'train.tsv', 150, 0)
  _write_tsv(base / 'test.tsv', 45, 1)
  (base / 'userlosses.py').write_text(USER_MODULE)
  return base


def train(folder, workdir, *flags, check=True):
  return linjax_cmd('train', f'--config.data.train={folder / "train.tsv"}',
                    f'--config.data.test={folder / "test.tsv"}',
                    f'--workdir={folder / workdir}', *FAST, *flags,
                    cwd=folder, check=check)


def results(folder, workdir):
  return json.loads((folder / workdir / 'results.json').read_text())


def history(folder, workdir):
  return [json.loads(line) for line in
          (folder / workdir / 'metrics.jsonl').read_text().splitlines()]


@pytest.mark.slow
def test_hinge_trains_validates_and_saves_as_hinge(folder):
  proc = train(folder, 'hinge', '--config.train.loss=hinge',
               '--config.train.gradcheck=True')
  out = results(folder, 'hinge')
  assert out['loss'] == 'hinge' and out['test_accuracy'] > 0.8
  # No probabilities: no log loss or calibration, scores still rank.
  assert out['test_log_loss'] is None and out['test_report']['ece'] is None
  # The gradient check: jax.grad against finite differences (no hand one).
  assert out['gradcheck']['passed']
  assert set(out['gradcheck']['max_rel_error']) == {'numerical'}
  # The validation loss is the mean hinge, 1 at the zero model: below it
  # now, and not softmax's log 3 = 1.10 scale by accident.
  assert 0 <= history(folder, 'hinge')[-1]['val_loss'] < 1.0
  assert 'training: hinge loss' in proc.stderr
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  model = saved_model.load(folder / 'hinge' / 'model')
  assert model.loss == 'hinge' and not model.multi_label
  assert model.predict(['the doctor and the nurse']) == ['health']
  with pytest.raises(ValueError, match="not available for loss 'hinge'"):
    model.predict_proba(['the doctor'])
  assert model.decision_function(['the doctor']).shape == (1, 3)


@pytest.mark.slow
def test_label_smoothing_is_the_validation_loss(folder):
  train(folder, 'smooth', '--config.train.label_smoothing=0.2',
        '--config.data.refit=False')
  out = results(folder, 'smooth')
  assert out['loss'] == 'softmax'
  assert out['config']['train']['label_smoothing'] == 0.2
  # With targets (0.8 + 0.2/3, 0.2/3, 0.2/3) the loss cannot go below their
  # entropy (0.6): the smoothed loss is what validation reports.
  entropy = -(0.8667 * np.log(0.8667) + 2 * 0.0667 * np.log(0.0667))
  assert history(folder, 'smooth')[-1]['val_loss'] > entropy - 1e-3
  assert out['val_loss'] == pytest.approx(history(folder, 'smooth')[-1][
      'val_loss'], rel=1e-5)
  assert out['test_accuracy'] > 0.8


@pytest.mark.slow
def test_a_users_loss_and_optimiser_by_module_name(folder, tmp_path):
  train(folder, 'user', '--config.train.loss=userlosses:squared_hinge',
        '--config.optimizer.name=userlosses:slow_adam',
        '--config.optimizer.learning_rate=0.05',
        '--config.train.update_path=sparse')
  out = results(folder, 'user')
  assert out['loss'] == 'userlosses:squared_hinge'
  assert out['test_accuracy'] > 0.8 and out['test_log_loss'] is None
  meta = json.loads((folder / 'user' / 'model' / 'model.json').read_text())
  assert meta['loss'] == 'userlosses:squared_hinge'
  # From another folder, without userlosses on the path: one line naming
  # the loss the model needs.
  proc = linjax_cmd('predict', f'--model={folder / "user" / "model"}',
                    f'--input={folder / "test.tsv"}', cwd=tmp_path,
                    check=False)
  one_line_error(proc, "trained with loss 'userlosses:squared_hinge'",
                 'cannot be found here', "cannot import module 'userlosses'")


@pytest.mark.slow
@pytest.mark.parametrize('name,lr', [('lion', 0.01), ('adabelief', 0.05),
                                     ('optax:scale_by_lion', 0.01)])
def test_optimisers_on_the_sparse_path(folder, name, lr):
  workdir = 'opt_' + name.replace(':', '_')
  train(folder, workdir, f'--config.optimizer.name={name}',
        f'--config.optimizer.learning_rate={lr}',
        '--config.train.update_path=sparse', '--config.train.l2=1e-4')
  out = results(folder, workdir)
  assert out['update'] == 'sparse' and out['test_accuracy'] > 0.8
  assert out['config']['optimizer']['name'] == name


@pytest.mark.parametrize('flags,fragments', [
    (['--config.train.loss=hinj'],
     ["--config.train.loss must name a loss: unknown loss 'hinj'",
      'softmax, sigmoid, hinge']),
    (['--config.train.loss=nosuchmodule:f'],
     ["--config.train.loss must name a loss", "cannot import module "
      "'nosuchmodule'"]),
    (['--config.train.loss=userlosses:nope'],
     ["--config.train.loss", "has no attribute 'nope'"]),
    (['--config.train.loss=hinge', '--config.train.label_smoothing=0.1'],
     ["--config.train.label_smoothing must be 0 with train.loss='hinge'"]),
    (['--config.optimizer.name=lion', '--config.optimizer.momentum=0.9'],
     ["--config.optimizer.momentum must be 0 with optimizer.name='lion'"]),
    (['--config.optimizer.name=optax:adam'],
     ['--config.optimizer.name must name an optimizer',
      'optax:scale_by_adam']),
])
def test_mistakes_fail_before_any_work_in_one_line(folder, tmp_path, flags,
                                                   fragments):
  workdir = tmp_path / 'never'
  proc = linjax_cmd('train', f'--config.data.train={folder / "train.tsv"}',
                    f'--workdir={workdir}', *FAST, *flags, cwd=folder,
                    check=False)
  one_line_error(proc, *fragments)
  assert not workdir.exists()          # nothing was started
  assert 'featuris' not in proc.stderr  # no work before the error


def test_gradcheck_subcommand_checks_any_loss(tmp_path):
  proc = linjax_cmd('gradcheck', '--loss=hinge', '--sizes=10', '--num_docs=8',
                    '--table_rows=0', cwd=tmp_path)
  assert 'hinge loss' in proc.stdout and 'PASS' in proc.stdout
  assert 'jax.grad vs numerical' in proc.stdout
  assert 'jax.grad vs manual' not in proc.stdout   # no hand-derived one
  proc = linjax_cmd('gradcheck', '--loss=hinj', cwd=tmp_path, check=False)
  one_line_error(proc, "--loss must name a loss: unknown loss 'hinj'")
