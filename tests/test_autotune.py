"""Autotune: successive halving over vmapped batches (linjax/engine/autotune.py)
and its runner (experiments/autotune.py), on a tiny corpus with fixed plans.

The chosen model is checked against a separate `training.fit` of the chosen
configuration, the restricted features against dense scores, the halving
against its definition, and the choice for reproducibility with a seed.
"""

import dataclasses
import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from linjax.core.errors import ConfigError
from linjax.engine import autotune
from linjax.engine import step as step_lib
from linjax.engine import training
from linjax.engine.options import OptimizerOptions
from linjax.engine.options import TrainOptions
from linjax.text.featurizer import Featurizer

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORDS = {'sports': 'ball goal team match score win player coach'.split(),
         'health': 'doctor drug patient trial vaccine nurse clinic pain'.split(),
         'tech': 'code chip cloud server data model phone app'.split()}
COMMON = 'the a of and to in is it on for'.split()


def _texts(n, seed, noise=0.35):
  """Documents of 3 class words and 5 common ones; a share of the class
  words come from another class, so that settings matter."""
  rng = np.random.default_rng(seed)
  names = sorted(WORDS)
  texts, labels = [], []
  for i in range(n):
    label = i % 3
    words = [rng.choice(WORDS[names[(label + (rng.random() < noise)) % 3]])
             for _ in range(3)] + list(rng.choice(COMMON, 5))
    rng.shuffle(words)
    texts.append(' '.join(words))
    labels.append(label)
  return texts, np.asarray(labels, np.int32)


def _featurised(make_texts):
  """(train x, train labels, validation x, validation labels) of 240 and 90
  documents drawn by ``make_texts(n, seed)``."""
  train_texts, train_y = make_texts(240, 0)
  val_texts, val_y = make_texts(90, 1)
  featurizer = Featurizer(ngrams=1, buckets=2**12, shape_ngrams=0, min_df=1)
  return (featurizer.fit_transform(train_texts), train_y,
          featurizer.transform(val_texts), val_y)


@pytest.fixture(scope='module')
def corpus():
  return _featurised(_texts)


OPTIONS = autotune.AutotuneOptions(num_configs=6, brackets=1, epochs=(1, 3),
                                   min_docs=60, max_rungs=2, max_models=4,
                                   learning_rate=(0.5, 20.0))
TRAINING = TrainOptions(batch_size=8, token_budget=64, steps_per_call=16)


def _tune(corpus, options=OPTIONS, training_options=TRAINING):
  x, y, vx, vy = corpus
  return autotune.autotune(x, y, 3, val_x=vx, val_y=vy,
                           training=training_options, options=options)


def _key(trial):
  return {k: trial[k] for k in ('bracket', 'rung', 'docs', 'lr', 'l2',
                                'epochs', 'val_accuracy', 'val_loss')}


def test_choice_is_reproducible_with_a_seed(corpus):
  a, b = _tune(corpus), _tune(corpus)
  assert [_key(t) for t in a.trials] == [_key(t) for t in b.trials]
  assert _key(a.best) == _key(b.best)
  np.testing.assert_array_equal(a.params.W, b.params.W)
  other = _tune(corpus, dataclasses.replace(OPTIONS, seed=1))
  assert [t['lr'] for t in other.trials] != [t['lr'] for t in a.trials]


def _refit(best: dict, x, y, options: TrainOptions):
  """A plain `fit` of a trial's configuration (learning rate, L2, epochs)."""
  return training.fit(
      x, y, 3, optimizer=OptimizerOptions(learning_rate=best['lr']),
      training=dataclasses.replace(options, l2=best['l2'],
                                   epochs=best['epochs'], checkpoint_every=0))


def test_chosen_model_is_what_fit_trains(corpus):
  """The winner's params are a plain fit of its configuration (all rows of
  W, same seed and options), and its validation accuracy is that model's."""
  result = _tune(corpus)
  best = result.best
  x, y, vx, vy = corpus
  fit = _refit(best, x, y, TRAINING)
  np.testing.assert_allclose(result.params.W, fit.params.W, rtol=2e-5,
                             atol=2e-6)
  np.testing.assert_allclose(result.params.b, fit.params.b, rtol=2e-5,
                             atol=2e-6)
  z = vx.to_dense() @ fit.params.W + fit.params.b
  assert best['val_accuracy'] == pytest.approx(np.mean(z.argmax(1) == vy))
  assert best['rung'] == 1 and best['docs'] == x.num_docs


def test_successive_halving(corpus):
  result = _tune(corpus)
  x = corpus[0]
  assert result.plan['rungs'] == 2
  assert result.plan['fractions'] == [1 / 3, 1]
  first = [t for t in result.trials if t['rung'] == 0]
  second = [t for t in result.trials if t['rung'] == 1]
  assert len(first) == 6 and len(second) == 2   # ceil(6 / eta)
  # The first rung saw a stratified third of the documents (a third of each
  # class's 80, rounded), the second all.
  assert {t['docs'] for t in first} == {3 * 27}
  assert {t['docs'] for t in second} == {x.num_docs}
  ranked = sorted(first, key=lambda t: (-t['val_accuracy'], t['val_loss']))
  assert ({(t['lr'], t['l2'], t['epochs']) for t in second} ==
          {(t['lr'], t['l2'], t['epochs']) for t in ranked[:2]})
  # Every draw lies in the space.
  for t in first:
    assert 0.5 <= t['lr'] <= 20.0 and t['epochs'] in (1, 3)
    assert t['l2'] == 0 or 1e-8 <= t['l2'] <= 1e-4


def test_memory_bound_limits_the_batch(corpus):
  state_mb = _tune(corpus).plan['state_mb']
  x = corpus[0]
  # One model's state: W's used rows and b (float32), scale and step.
  assert state_mb * 2**20 == (len(np.unique(x.ids)) * 3 + 3 + 2) * 4
  three = _tune(corpus, dataclasses.replace(OPTIONS,
                                            memory_mb=3.5 * state_mb))
  assert three.plan['batch_width'] == 3
  tiny = _tune(corpus, dataclasses.replace(OPTIONS, memory_mb=state_mb / 10))
  assert tiny.plan['batch_width'] == 1   # one model is over: M = 1 anyway
  assert len(tiny.trials) == len(three.trials) == 8
  assert _key(tiny.best) == _key(three.best)


def test_used_features_keep_scores_exact(corpus):
  x, _, vx, _ = corpus
  used, (xu, vu) = autotune.used_features(x, vx)
  assert xu.num_features == used.shape[0] == len(np.unique(x.ids))
  rng = np.random.default_rng(0)
  W = np.zeros((x.num_features, 3), np.float32)
  W[used] = rng.normal(size=(used.shape[0], 3))
  np.testing.assert_allclose(vu.to_dense() @ W[used], vx.to_dense() @ W,
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(xu.to_dense(), x.to_dense()[:, used])


def test_l2_cap_keeps_the_scale_from_underflowing():
  opt, train = OptimizerOptions(), TrainOptions()
  cap = autotune.l2_cap(opt, train, 10**5, 4, 40000, 100.0)
  spec = step_lib.make_spec(opt, dataclasses.replace(train, l2=cap), 10**5,
                            4, 0, l2_nonzero=True)
  assert not step_lib.with_steps(spec, 40000, 100.0, cap).rescale
  assert step_lib.with_steps(spec, 40000, 100.0, 1.1 * cap).rescale
  # No global scale with Adam and no weight decay: no cap.
  assert autotune.l2_cap(OptimizerOptions(name='adam'), train, 10**5, 4,
                         40000, 100.0) == float('inf')


def _tagged(n, seed):
  """Documents with one or two tags (0-2); each tag brings 2 of its words,
  a third of them swapped for another tag's, plus 4 common words."""
  rng = np.random.default_rng(seed)
  names = sorted(WORDS)
  texts, Y = [], np.zeros((n, 3), np.uint8)
  for i in range(n):
    tags = rng.choice(3, 1 + (rng.random() < 0.4), replace=False)
    Y[i, tags] = 1
    words = [rng.choice(WORDS[names[(t + (rng.random() < 0.3)) % 3]])
             for t in tags for _ in range(2)] + list(rng.choice(COMMON, 4))
    rng.shuffle(words)
    texts.append(' '.join(words))
  return texts, Y


@pytest.fixture(scope='module')
def tagged_corpus():
  return _featurised(_tagged)


def test_sigmoid_loss_chooses_by_p_at_1_and_matches_fit(tagged_corpus):
  """Multi-label: the winner is a plain sigmoid fit of its configuration,
  its validation score that model's P@1 (computed here in numpy), and the
  first rung's subset is stratified by rarest tag."""
  sigmoid = dataclasses.replace(TRAINING, loss='sigmoid')
  result = _tune(tagged_corpus, training_options=sigmoid)
  again = _tune(tagged_corpus, training_options=sigmoid)
  assert [_key(t) for t in result.trials] == [_key(t) for t in again.trials]
  best = result.best
  x, Y, vx, vY = tagged_corpus
  fit = _refit(best, x, Y, sigmoid)
  np.testing.assert_allclose(result.params.W, fit.params.W, rtol=2e-5,
                             atol=2e-6)
  z = vx.to_dense() @ fit.params.W + fit.params.b
  p_at_1 = np.mean(vY[np.arange(len(vY)), z.argmax(1)] == 1)
  assert best['val_accuracy'] == pytest.approx(p_at_1)
  assert best['val_accuracy'] > 0.6     # tags are learnable here
  first = {t['docs'] for t in result.trials if t['rung'] == 0}
  assert first == {80}   # a third of the 240, stratum by stratum
  with pytest.raises(ValueError, match="need train.loss='sigmoid'"):
    _tune(tagged_corpus)                  # multi-hot labels, softmax loss


@pytest.mark.parametrize('field,value,message', [
    ('time_budget', 0, 'autotune.time_budget must be > 0'),
    ('learning_rate', (2.0, 1.0), 'autotune.learning_rate must be (low, high)'),
    ('l2', (0.0, 1.0), 'autotune.l2 must be (low, high)'),
    ('epochs', (), 'autotune.epochs must be a non-empty list'),
    ('eta', 1, 'autotune.eta must be >= 2'),
    ('max_models', 0, 'autotune.max_models must be >= 1'),
])
def test_bad_options_name_the_field(field, value, message):
  with pytest.raises(ConfigError, match=message.replace('(', r'\(').replace(
      ')', r'\)')):
    autotune.AutotuneOptions(**{field: value})


# -- the runner ---------------------------------------------------------------


def _write_tsv(path, n, seed):
  texts, labels = _texts(n, seed)
  names = sorted(WORDS)
  path.write_text('label\ttext\n' + ''.join(
      f'{names[l]}\t{t}\n' for t, l in zip(texts, labels)))
  return path


def _run(module, *args):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(ROOT))
  return subprocess.run([sys.executable, '-m', f'experiments.{module}',
                         *map(str, args)], capture_output=True, text=True,
                        cwd=ROOT, env=env, timeout=300)


FAST = ['--config.train.checkpoint_every=0', '--config.train.gradcheck=False',
        '--config.train.batch_size=8', '--config.train.token_budget=64',
        '--config.features.buckets=4096']


def test_runner_writes_a_config_that_train_accepts(tmp_path):
  train_file = _write_tsv(tmp_path / 'train.tsv', 300, 0)
  test_file = _write_tsv(tmp_path / 'test.tsv', 60, 1)
  work = tmp_path / 'tune'
  proc = _run('autotune', f'--config.data.train={train_file}',
              f'--config.data.test={test_file}', *FAST,
              '--num_configs=4', '--brackets=1', '--epochs=1,2',
              '--max_models=4', f'--workdir={work}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  for name in ('best_config.py', 'autotune.json', 'autotune.txt',
               'autotune.png'):
    assert (work / name).is_file(), name
  out = json.loads((work / 'autotune.json').read_text())
  best = out['best']
  assert 'chosen' in (work / 'autotune.txt').read_text()
  spec = importlib.util.spec_from_file_location('best', work / 'best_config.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  assert config.optimizer.learning_rate == best['lr']
  assert (config.train.l2, config.train.epochs) == (best['l2'],
                                                    best['epochs'])
  assert config.data.train == str(train_file)
  # experiments.train retrains the chosen model: same validation accuracy.
  proc = _run('train', f'--config={work / "best_config.py"}',
              f'--workdir={tmp_path / "train"}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((tmp_path / 'train' / 'results.json').read_text())
  assert results['val_accuracy'] == pytest.approx(best['val_accuracy'])
  assert results['test_accuracy'] == pytest.approx(out['test_accuracy'])


def test_runner_flag_errors_are_one_line(tmp_path):
  for flag, fragment in (('--time_budget=-1', '--time_budget must be > 0'),
                         ('--epochs=1,x', '--epochs must be a comma-separated'
                          ' list of integers')):
    proc = _run('autotune', flag, f'--workdir={tmp_path}')
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert 'Traceback' not in proc.stderr and last.startswith('error: ')
    assert fragment in last, last


def test_runner_tunes_a_multilabel_model_that_train_retrains(tmp_path):
  names = sorted(WORDS)

  def write(path, n, seed):
    texts, Y = _tagged(n, seed)
    path.write_text(''.join(
        ' '.join([f'__label__{names[c]}' for c in np.flatnonzero(row)] +
                 [t]) + '\n' for t, row in zip(texts, Y)))
    return path

  train_file = write(tmp_path / 'train.txt', 300, 0)
  test_file = write(tmp_path / 'test.txt', 60, 1)
  work = tmp_path / 'tune'
  proc = _run('autotune', f'--config.data.train={train_file}',
              f'--config.data.test={test_file}', *FAST,
              '--config.train.loss=sigmoid', '--num_configs=4',
              '--brackets=1', '--epochs=1,2', '--max_models=4',
              f'--workdir={work}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads((work / 'autotune.json').read_text())
  assert 0.0 < out['threshold'] < 1.0
  assert {'test_accuracy', 'test_micro_f1', 'test_macro_f1'} <= set(out)
  assert 'test P@1 of the chosen model' in proc.stdout
  proc = _run('train', f'--config={work / "best_config.py"}',
              f'--workdir={tmp_path / "train"}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((tmp_path / 'train' / 'results.json').read_text())
  assert results['val_accuracy'] == pytest.approx(out['best']['val_accuracy'])
  for key in ('test_accuracy', 'test_micro_f1', 'test_macro_f1'):
    assert results[key] == pytest.approx(out[key]), key


# -- issue 23: diverging trials excluded, trials kept and resumed -------------


def _guard_check(num_classes=3):
  """The rule that stops `train` (run_checks.DivergenceGuard.check_epoch)."""
  from linjax.cli import run_checks
  return run_checks.DivergenceGuard(num_classes, 1.0).check_epoch


WIDE = dataclasses.replace(OPTIONS, learning_rate=(0.5, 1e7), num_configs=8)


def test_diverging_trials_are_excluded_and_the_choice_trains(corpus):
  check = _guard_check()
  result = autotune.autotune(*corpus[:2], 3, val_x=corpus[2],
                             val_y=corpus[3], training=TRAINING,
                             options=WIDE, epoch_check=check)
  diverged = [t for t in result.trials if t.get('diverged')]
  assert diverged, 'the range reaches learning rates that diverge'
  assert all('Training diverged at epoch' in t['diverged'] for t in diverged)
  assert all(t['rung'] == 0 for t in diverged)          # never promoted
  assert not result.best.get('diverged')
  # Without the rule the same search picks or promotes what train refuses.
  plain = autotune.autotune(*corpus[:2], 3, val_x=corpus[2], val_y=corpus[3],
                            training=TRAINING, options=WIDE)
  assert not any(t.get('diverged') for t in plain.trials)
  # train's rule passes every epoch of a plain fit of the chosen config.
  x, y, _, _ = corpus
  fit = _refit(result.best, x, y, TRAINING)
  for entry in fit.history:
    check(entry['epoch'], entry['train_loss'])


def test_resume_takes_the_previous_trials_and_gives_the_same_choice(corpus):
  x, y, vx, vy = corpus
  options = dataclasses.replace(OPTIONS, brackets=2)
  written = []
  full = autotune.autotune(x, y, 3, val_x=vx, val_y=vy, training=TRAINING,
                           options=options, on_trials=written.extend)
  assert [_key(t) for t in written] == [_key(t) for t in full.trials]
  for keep in (len(written) // 2, len(written)):   # the best among them too
    previous = [json.loads(json.dumps(t)) for t in written[:keep]]
    again = []
    resumed = autotune.autotune(x, y, 3, val_x=vx, val_y=vy,
                                training=TRAINING, options=options,
                                previous=previous, on_trials=again.extend)
    assert len(again) == len(written) - keep            # only the rest
    assert sum(bool(t.get('resumed')) for t in resumed.trials) == keep
    assert _key(resumed.best) == _key(full.best)
    np.testing.assert_allclose(resumed.params.W, full.params.W, rtol=2e-5,
                               atol=2e-6)
    np.testing.assert_allclose(resumed.params.b, full.params.b, rtol=2e-5,
                               atol=2e-6)


def _search_flags(train_file, work):
  return [f'--config.data.train={train_file}', *FAST, '--num_configs=6',
          '--brackets=25', '--epochs=1,2,3', '--max_models=4',
          f'--workdir={work}']


def test_runner_interrupted_search_resumes_with_its_trials(tmp_path):
  train_file = _write_tsv(tmp_path / 'train.tsv', 300, 0)
  reference = tmp_path / 'reference'
  proc = _run('autotune', *_search_flags(train_file, reference))
  assert proc.returncode == 0, proc.stderr[-3000:]
  work = tmp_path / 'tune'
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(ROOT))
  child = subprocess.Popen(
      [sys.executable, '-m', 'experiments.autotune',
       *_search_flags(train_file, work)], cwd=ROOT, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  trials = work / 'autotune_trials.jsonl'
  deadline = time.monotonic() + 240
  while time.monotonic() < deadline and child.poll() is None:
    if trials.is_file() and len(trials.read_text().splitlines()) >= 3:
      break
    time.sleep(0.02)
  child.send_signal(signal.SIGINT)
  _, err = child.communicate(timeout=120)
  assert child.returncode == 130, err[-3000:]
  assert 'Traceback' not in err
  last = err.strip().splitlines()[-1]
  assert last.startswith('linjax autotune: interrupted;') and (
      'rerun the same command to resume' in last), last
  kept = [json.loads(l) for l in trials.read_text().splitlines()[1:]]
  assert kept and not (work / 'autotune.json').exists()
  assert f'{len(kept)} trial(s) kept' in last
  proc = _run('autotune', *_search_flags(train_file, work))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f'resuming with the {len(kept)} trial(s)' in proc.stderr
  out = json.loads((work / 'autotune.json').read_text())
  ref = json.loads((reference / 'autotune.json').read_text())
  assert out['resumed_trials'] == len(kept)
  assert _key(out['best']) == _key(ref['best'])
  assert len(out['trials']) == len(ref['trials'])
  for trial in kept:   # the kept trials are in the result as they were
    assert any(_key(t) == _key(trial) and t.get('resumed')
               for t in out['trials'])
  # A finished search is never replaced without --overwrite.
  before = (work / 'autotune.json').read_bytes()
  proc = _run('autotune', *_search_flags(train_file, work))
  assert proc.returncode == 1
  assert 'holds a finished search' in proc.stderr.strip().splitlines()[-1]
  assert (work / 'autotune.json').read_bytes() == before
  # Another search's trials are not mixed in.
  (work / 'autotune.json').unlink()
  proc = _run('autotune', *_search_flags(train_file, work), '--seed=3')
  assert proc.returncode == 1
  assert 'trials of another search' in proc.stderr.strip().splitlines()[-1]


def test_runner_diverging_range(tmp_path):
  train_file = _write_tsv(tmp_path / 'train.tsv', 300, 0)
  flags = [f'--config.data.train={train_file}', *FAST, '--num_configs=6',
           '--brackets=1', '--epochs=1,2', '--max_models=4']
  work = tmp_path / 'all'
  proc = _run('autotune', *flags, '--learning_rates=1e6,1e8',
              f'--workdir={work}')
  last = proc.stderr.strip().splitlines()[-1]
  assert proc.returncode == 1 and 'Traceback' not in proc.stderr
  assert 'every configuration trained on all the data diverged' in last
  assert 'Fix: leave --learning_rates out' in last
  assert not work.exists()                      # the failed run cleaned up
  work = tmp_path / 'some'
  proc = _run('autotune', *flags, '--learning_rates=1,1e6',
              f'--workdir={work}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads((work / 'autotune.json').read_text())
  assert any(t.get('diverged') for t in out['trials'])
  assert 'were excluded' in proc.stderr
  # The short console prefix of train, not absl's.
  assert not any(l[:1] in 'IWEF' and l[1:5].isdigit()
                 for l in proc.stderr.splitlines())
  proc = _run('train', f'--config={work / "best_config.py"}',
              f'--workdir={tmp_path / "train"}')
  assert proc.returncode == 0, proc.stderr[-3000:]


def test_interrupt_note_counts_the_trials_in_the_file(tmp_path, monkeypatch):
  """Ctrl-C between a batch's write and the in-memory count (CI hit it:
  '0 trial(s) kept' with 2 in the file): the note counts what a rerun
  resumes from, the file's whole trial lines."""
  from linjax.cli import autotune as autotune_cli  # pylint: disable=g-import-not-at-top
  path = tmp_path / 'autotune_trials.jsonl'
  path.write_text(
      json.dumps(dict(search='s', files=[])) + '\n'
      + json.dumps(dict(lr=1.0, l2=0.0, epochs=1, val_loss=0.5)) + '\n'
      + json.dumps(dict(lr=2.0, l2=0.0, epochs=1, val_loss=0.4)) + '\n'
      + '{"lr": 3.0, "l2"', encoding='utf-8')   # cut short by the interrupt
  monkeypatch.setitem(autotune_cli._KEPT, 'path', str(path))  # pylint: disable=protected-access
  monkeypatch.setitem(autotune_cli._KEPT, 'count', 0)  # pylint: disable=protected-access
  assert autotune_cli.interrupted_note().startswith(
      f'2 trial(s) kept in {path};')
