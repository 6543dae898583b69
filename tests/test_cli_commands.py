"""The commands beside train keep train's contract (issue 23): convert and
explain, predict on a labelled file, --model given a run folder, outputs
never replaced without --overwrite, Ctrl-C in one line (exit 130)."""

import ast
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from linjax import saved_model
from test_runners import _write_tsv
from test_runners import assert_one_line_error
from test_runners import ROOT
from test_runners import run

FAST = ['--config.train.gradcheck=False', '--config.train.epochs=3']


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  base = tmp_path_factory.mktemp('commands')
  train_file = _write_tsv(base / 'train.tsv', 150, 0)
  test_file = _write_tsv(base / 'test.tsv', 30, 1)
  workdir = base / 'run'
  run('train', f'--config.data.train={train_file}',
      f'--config.data.test={test_file}', *FAST, f'--workdir={workdir}')
  return dict(base=base, train=train_file, test=test_file, workdir=workdir,
              model=workdir / 'model')


# -- convert -------------------------------------------------------------------


def test_convert_writes_a_smaller_model_that_predicts_alike(trained, tmp_path):
  out = tmp_path / 'int8'
  proc = run('convert', f'--model={trained["model"]}', f'--out={out}',
             '--precision=int8')
  assert f'wrote {out}: int8' in proc.stdout
  small, full = saved_model.load(out), saved_model.load(trained['model'])
  assert small.precision == 'int8' and full.precision == 'float32'
  assert small.meta['extra']['converted_from'] == dict(
      model=str(trained['model']), precision='float32')
  texts = [l.split('\t', 1)[1] for l in
           trained['test'].read_text().splitlines()[1:]]
  np.testing.assert_array_equal(small.predict_proba(texts).argmax(1),
                                full.predict_proba(texts).argmax(1))
  # Scales per row: each weight within half a step of its float32 value.
  W, Wq = np.asarray(full.params.W), np.asarray(small.params.W)
  step = np.abs(W).max(axis=1, keepdims=True) / 127
  assert np.all(np.abs(W - Wq) <= step / 2 + 1e-6)


def test_convert_never_replaces_without_overwrite(trained, tmp_path):
  model = trained['model']
  before = (model / 'model.json').read_bytes()
  proc = run('convert', f'--model={model}', f'--out={model}', check=False)
  assert_one_line_error(proc, f'--out={model} is --model itself',
                        '--overwrite')
  out = tmp_path / 'f16'
  run('convert', f'--model={model}', f'--out={out}', '--precision=float16')
  first = (out / 'model.json').read_bytes()
  proc = run('convert', f'--model={model}', f'--out={out}',
             '--precision=int8', check=False)
  assert_one_line_error(proc, f'--out={out} holds a saved model',
                        '--overwrite')
  assert (out / 'model.json').read_bytes() == first
  run('convert', f'--model={model}', f'--out={out}', '--precision=int8',
      '--overwrite')
  assert saved_model.load(out).precision == 'int8'
  not_a_model = tmp_path / 'notes'
  not_a_model.mkdir()
  (not_a_model / 'keep.txt').write_text('mine')
  proc = run('convert', f'--model={model}', f'--out={not_a_model}',
             '--overwrite', check=False)
  assert_one_line_error(proc, 'exists and is not a saved model')
  assert (not_a_model / 'keep.txt').read_text() == 'mine'
  assert (model / 'model.json').read_bytes() == before


def test_convert_refuses_to_widen_int8(trained, tmp_path):
  small = tmp_path / 'int8'
  run('convert', f'--model={trained["model"]}', f'--out={small}')
  for precision in ('float32', 'float16'):
    proc = run('convert', f'--model={small}', f'--out={tmp_path / "w"}',
               f'--precision={precision}', check=False)
    assert_one_line_error(proc, f'--precision={precision}',
                          'is stored as int8', 'convert the original')
    assert not (tmp_path / 'w').exists()


def test_run_folder_as_model_suggests_model(trained):
  workdir = trained['workdir']
  for command, extra in (('predict', ['--input=-']),
                         ('evaluate', [f'--data={trained["test"]}']),
                         ('convert', [f'--out={trained["base"] / "x"}']),
                         ('explain', ['--text=hello'])):
    proc = run(command, f'--model={workdir}', *extra, stdin='a text\n',
               check=False)
    assert_one_line_error(proc, f'--model={workdir} is a run folder',
                          f'Fix: --model={workdir / "model"}')


# -- explain -------------------------------------------------------------------


def test_explain_margin_is_the_log_ratio_and_the_lines_add_up(trained):
  text = 'doctor drug the patient of goal'
  proc = run('explain', f'--model={trained["model"]}', f'--text={text}',
             '--json')
  out = json.loads(proc.stdout)
  model = saved_model.load(trained['model'])
  proba = model.predict_proba([text])[0].astype(np.float64)
  order = np.argsort(-proba)
  names = list(model.label_map.names)
  assert out['label'] == names[order[0]]
  assert out['against'] == names[order[1]]          # the runner-up
  assert out['p_label'] == pytest.approx(proba[order[0]], rel=1e-5)
  # Softmax: score difference = log(p_label / p_against).
  assert out['margin'] == pytest.approx(
      math.log(proba[order[0]] / proba[order[1]]), rel=1e-4, abs=1e-5)
  parts = [n['contribution'] for n in out['ngrams']]
  assert out['bias'] + sum(parts) == pytest.approx(out['margin'], abs=1e-9)
  assert {'doctor', 'goal'} <= {n['ngram'] for n in out['ngrams']}
  # The text report: its lines add up to the margin too.
  proc = run('explain', f'--model={trained["model"]}', f'--text={text}',
             '--top_k=2', f'--against={names[order[2]]}')
  lines = proc.stdout.splitlines()
  head = lines[0]
  assert head.startswith(f'{out["label"]} (p=') and names[order[2]] in head
  margin = float(head.split('margin ')[1].split(' ')[0])
  bias = float(head.split('bias ')[1].split(' ')[0])
  listed = [float(l.split()[0]) for l in lines[1:]]
  assert len(lines) == 1 + 2 + 1                 # two n-grams, the rest
  assert bias + sum(listed) == pytest.approx(margin, abs=2e-4)


def test_explain_names_a_bad_label(trained):
  proc = run('explain', f'--model={trained["model"]}', '--text=x',
             '--label=nope', check=False)
  assert_one_line_error(proc, '--label=nope: not a label of the model',
                        "'health'")


# -- predict -------------------------------------------------------------------


def test_predict_on_a_labelled_tsv_takes_its_text_column(trained, tmp_path):
  data = trained['test']
  proc = run('predict', f'--model={trained["model"]}', f'--input={data}')
  rows = data.read_text().splitlines()[1:]
  assert len(proc.stdout.splitlines()) == len(rows)   # no header, no label
  warning = [l for l in proc.stderr.splitlines() if 'labelled corpus' in l]
  assert len(warning) == 1 and 'linjax evaluate' in warning[0]
  texts = tmp_path / 'texts.txt'
  texts.write_text(''.join(r.split('\t', 1)[1] + '\n' for r in rows))
  plain = run('predict', f'--model={trained["model"]}', f'--input={texts}')
  assert plain.stdout == proc.stdout
  assert 'labelled corpus' not in plain.stderr
  whole = run('predict', f'--model={trained["model"]}', f'--input={data}',
              '--format=lines')
  assert len(whole.stdout.splitlines()) == len(rows) + 1


def test_predict_warns_about_blank_lines_and_keeps_them(trained):
  proc = run('predict', f'--model={trained["model"]}', '--input=-',
             stdin='doctor drug\n\ngoal team\n   \n')
  assert len(proc.stdout.splitlines()) == 4
  warning = [l for l in proc.stderr.splitlines() if 'blank' in l]
  assert len(warning) == 1 and '2 blank document(s) (lines 2, 4)' in (
      warning[0])


def test_outputs_are_never_replaced_without_overwrite(trained, tmp_path):
  out = tmp_path / 'predictions.txt'
  out.write_text('earlier\n')
  proc = run('predict', f'--model={trained["model"]}', '--input=-',
             f'--out={out}', stdin='goal\n', check=False)
  assert_one_line_error(proc, f'--out={out} exists', '--overwrite')
  assert out.read_text() == 'earlier\n'
  run('predict', f'--model={trained["model"]}', '--input=-', f'--out={out}',
      '--overwrite', stdin='goal\n')
  assert out.read_text().startswith('sports\t')
  report = tmp_path / 'report.json'
  report.write_text('{}')
  proc = run('evaluate', f'--model={trained["model"]}',
             f'--data={trained["test"]}', f'--out={report}', check=False)
  assert_one_line_error(proc, f'--out={report} exists', '--overwrite')
  assert report.read_text() == '{}'
  run('evaluate', f'--model={trained["model"]}', f'--data={trained["test"]}',
      f'--out={report}', '--overwrite')
  assert json.loads(report.read_text())['num_examples'] == 30
  page = tmp_path / 'report.html'
  page.write_text('earlier')
  proc = run('report', f'--model={trained["model"]}',
             f'--data={trained["test"]}', f'--out={page}', check=False)
  assert_one_line_error(proc, f'--out={page} exists', '--overwrite')
  assert page.read_text() == 'earlier'
  run('report', f'--model={trained["model"]}', f'--data={trained["test"]}',
      f'--out={page}', '--overwrite')
  assert page.read_text().startswith('<!DOCTYPE html>')


def test_ctrl_c_stops_any_command_in_one_line(trained):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(ROOT))
  child = subprocess.Popen(
      [sys.executable, '-m', 'experiments.predict',
       f'--model={trained["model"]}', '--input=-'], cwd=ROOT, env=env,
      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)
  # Until it blocks reading stdin (which stays open): the read(2) system
  # call on fd 0 in /proc (a signal during interpreter start-up would kill
  # Python before any handler of ours exists).
  deadline = time.monotonic() + 240
  syscall = pathlib.Path(f'/proc/{child.pid}/syscall')
  while time.monotonic() < deadline and child.poll() is None:
    try:
      if syscall.read_text().startswith('0 0x0 '):
        break
    except OSError:
      time.sleep(3)
      break
    time.sleep(0.1)
  child.send_signal(signal.SIGINT)
  _, err = child.communicate(timeout=60)
  assert child.returncode == 130
  assert 'Traceback' not in err and 'KeyboardInterrupt' not in err
  assert err.strip().splitlines()[-1] == (
      'linjax predict: interrupted; nothing finished was changed')


def test_a_margin_loss_model_shows_scores(trained, tmp_path):
  """hinge has no probabilities: predict prints scores, explain's margin is
  the score difference (decision_function), evaluate's accuracy is exact."""
  workdir = tmp_path / 'hinge'
  run('train', f'--config.data.train={trained["train"]}', *FAST,
      '--config.train.loss=hinge', f'--workdir={workdir}')
  model = saved_model.load(workdir / 'model')
  text = 'doctor drug the patient of goal'
  scores = model.decision_function([text])[0].astype(np.float64)
  proc = run('predict', f'--model={workdir / "model"}', '--input=-',
             '--top_k=3', stdin=text + '\n')
  fields = proc.stdout.split()
  names = list(model.label_map.names)
  order = np.argsort(-scores)
  assert fields[0::2] == [names[i] for i in order]
  np.testing.assert_allclose([float(v) for v in fields[1::2]],
                             scores[order], rtol=1e-5, atol=1e-5)
  out = json.loads(run('explain', f'--model={workdir / "model"}',
                       f'--text={text}', '--json').stdout)
  assert out['margin'] == pytest.approx(scores[order[0]] - scores[order[1]],
                                        abs=1e-4)
  assert math.isnan(out['p_label'])


@pytest.mark.parametrize('command,finished', [('sweep', 'sweep.json'),
                                              ('landscape', 'landscape.json'),
                                              ('autotune', 'autotune.json')])
def test_a_finished_workdir_is_refused_before_any_work(trained, tmp_path,
                                                       command, finished):
  workdir = tmp_path / command
  workdir.mkdir()
  (workdir / finished).write_text('{"earlier": true}')
  extra = ([f'--model={trained["model"]}'] if command == 'landscape' else
           [f'--config.data.train={trained["train"]}'])
  proc = run(command, *extra, f'--workdir={workdir}', check=False)
  assert_one_line_error(proc, f'--workdir={workdir} holds a finished',
                        '--overwrite')
  assert sorted(p.name for p in workdir.iterdir()) == [finished]
  assert json.loads((workdir / finished).read_text()) == {'earlier': True}


def test_library_convert_refuses_to_widen(trained, tmp_path):
  small = tmp_path / 'int8'
  saved_model.convert(trained['model'], small, precision='int8')
  for precision in ('float16', 'float32'):
    with pytest.raises(ValueError, match=f'stored as int8; {precision}'):
      saved_model.convert(small, tmp_path / precision, precision=precision)
    assert not (tmp_path / precision).exists()
  saved_model.convert(small, tmp_path / 'again', precision='int8')   # same


# -- what a user runs into first (review of 2026-12-07) ------------------------


def _linjax(*args, stdout=subprocess.PIPE, cwd=ROOT):
  """``python -m linjax ARGS`` (the installed command's dispatcher)."""
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(ROOT))
  return subprocess.run([sys.executable, '-m', 'linjax', *map(str, args)],
                        stdout=stdout, stderr=subprocess.PIPE, text=True,
                        cwd=cwd, env=env, timeout=300)


def test_every_subcommand_prints_its_help():
  from linjax.cli import main  # pylint: disable=g-import-not-at-top
  for name, (module, _) in main.COMMANDS.items():
    proc = _linjax(name, '--help')
    assert proc.returncode == 0, (name, proc.stderr[-1000:])
    source = (ROOT / 'linjax' / 'cli' / f'{module}.py').read_text()
    doc = ast.get_docstring(ast.parse(source))   # not imported: its flags
    assert proc.stdout.startswith(doc.strip().splitlines()[0]), name
    assert f'linjax.cli.{module}:' in proc.stdout, name   # its own flags


def test_an_unknown_flag_names_the_closest_flag_of_the_command():
  proc = _linjax('predict', '--modle=run1/model')
  assert_one_line_error(proc, '--modle: no such flag of linjax predict; '
                        'did you mean --model?', 'linjax predict --help')
  # absl would suggest the training runner's --coordinator_address.
  proc = _linjax('train', '--foo=1', '--workdir=unused')
  assert_one_line_error(proc, '--foo: no such flag of linjax train (')
  # ml_collections suggests no key for this one.
  proc = _linjax('sweep', '--config.features.ngram_max=3', '--workdir=unused')
  assert_one_line_error(proc, "--config.features.ngram_max: no such config "
                        "key (did you mean 'ngrams'?) (linjax sweep --help")


def test_a_closed_output_pipe_keeps_the_finished_run(trained, tmp_path):
  """`linjax train ... | head -1`: the reader is gone when the summary is
  printed; the run's files stay, and the command ends quietly (141)."""
  read_end, write_end = os.pipe()
  os.close(read_end)   # every write to the pipe fails with EPIPE
  try:
    workdir = tmp_path / 'run'
    proc = _linjax('train', f'--config.data.train={trained["train"]}', *FAST,
                   f'--workdir={workdir}', stdout=write_end)
    assert proc.returncode == 141, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr and 'error' not in proc.stderr
    results = json.loads((workdir / 'results.json').read_text())
    model = saved_model.load(workdir / 'model')
    assert list(model.label_map.names) == results['labels']
    proc = _linjax('predict', f'--model={workdir / "model"}',
                   f'--input={trained["test"]}', stdout=write_end)
    assert proc.returncode == 141
    assert 'error' not in proc.stderr and 'Traceback' not in proc.stderr
  finally:
    os.close(write_end)


@pytest.mark.parametrize('command', ['evaluate', 'report'])
def test_a_bad_line_names_the_commands_own_flag(trained, tmp_path, command):
  bad = tmp_path / 'bad.tsv'
  bad.write_text('label\ttext\nsports\tthe goal\na line with no tab\n')
  proc = run(command, f'--model={trained["model"]}', f'--data={bad}',
             f'--out={tmp_path / "out"}', check=False)
  assert_one_line_error(proc, f'--data: {bad}:3:', '(--lenient)')
  assert '--config.' not in proc.stderr
  assert not (tmp_path / 'out').exists()


def test_predict_names_the_fix_for_a_folder_or_a_line_without_text(
    trained, tmp_path):
  proc = run('predict', f'--model={trained["model"]}', f'--input={tmp_path}',
             check=False)
  assert_one_line_error(proc, f'--input={tmp_path} is a folder',
                        f'linjax evaluate --data={tmp_path}')
  short = tmp_path / 'short.tsv'
  short.write_text('label\ttext\nsports\tthe goal\nsports\n')
  proc = run('predict', f'--model={trained["model"]}', f'--input={short}',
             check=False)
  assert_one_line_error(proc, f"{short}:3: no 'text' field",
                        '--format=lines')


def test_landscape_slices_the_loss_each_model_trained(trained, tmp_path):
  """Along W itself, alpha = -1 is the zero model (W = 0, b = 0): its loss
  is log C for softmax, 1 for hinge, C log 2 for the multi-label sigmoid
  (a traceback before: a multi-label model's labels were decoded as ids)."""
  tags = tmp_path / 'tags.tsv'
  rng = np.random.default_rng(0)
  names = ['role::program', 'use::editing', 'interface::x11', 'devel::lib']
  lines = ['label\ttext']
  for _ in range(120):
    chosen = sorted(rng.choice(names, rng.integers(1, 3), replace=False))
    words = [t.split('::')[1] for t in chosen] + ['the', 'a', 'tool']
    lines.append(f'{"|".join(chosen)}\t{" ".join(words)}')
  tags.write_text('\n'.join(lines) + '\n')
  cases = [(trained['model'], math.log(3)),
           (tags, len(names) * math.log(2)), ('hinge', 1.0)]
  for i, (source, zero_loss) in enumerate(cases):
    model = source
    if source == tags:
      run('train', '--config=multilabel', f'--config.data.train={tags}',
          "--config.data.label_separator=|", *FAST,
          f'--workdir={tmp_path / "tags"}')
      model = tmp_path / 'tags' / 'model'
    elif source == 'hinge':
      run('train', f'--config.data.train={trained["train"]}', *FAST,
          '--config.train.loss=hinge', f'--workdir={tmp_path / "hinge"}')
      model = tmp_path / 'hinge' / 'model'
    work = tmp_path / f'land{i}'
    run('landscape', f'--model={model}', f'--workdir={work}', '--grid=3',
        '--num_docs=50', '--num_evals=4')
    slices = json.loads((work / 'landscape.json').read_text())['slices']
    assert slices['alphas'][0] == -1.0
    assert slices['slice_toward_init'][0] == pytest.approx(zero_loss,
                                                           rel=1e-5), source
