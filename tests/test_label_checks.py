"""Labels that look wrong stop a run with the fix to type (issue 23 item 3):
label sets written with another separator, nearly one class per document,
evaluation data with none of the model's labels; warnings stay bounded."""

import json
import re

import numpy as np
import pytest

from linjax.cli import console
from linjax.cli import label_checks
from linjax.data.readers import DataError
from test_runners import assert_one_line_error
from test_runners import run

TAGS = ['role::program', 'use::editing', 'interface::x11', 'devel::lang:c',
        'implemented-in::python', 'scope::utility', 'works-with::text',
        'network::client']
WORDS = {tag: [f'{tag.split("::")[1]}{i}' for i in range(4)] for tag in TAGS}


def tag_sets(n, seed=0):
  """n documents, each with 2-4 of the TAGS (many distinct combinations)."""
  rng = np.random.default_rng(seed)
  docs = []
  for _ in range(n):
    tags = sorted(rng.choice(TAGS, rng.integers(2, 5), replace=False))
    words = [w for t in tags for w in rng.choice(WORDS[t], 2)]
    docs.append((tags, ' '.join(words)))
  return docs


def write_multilabel_tsv(path, docs, separator):
  lines = ['label\ttext'] + [f'{separator.join(tags)}\t{text}'
                             for tags, text in docs]
  path.write_text('\n'.join(lines) + '\n')
  return path


# -- the rules, on hand-made label lists -----------------------------------


def test_space_separated_sets_are_found_and_the_flag_named():
  docs = tag_sets(300)
  names = [' '.join(tags) for tags, _ in docs]     # one "class" per set
  found = label_checks.separator_in_names(sorted(set(names)), ',')
  assert found is not None
  sep, parts, example = found
  assert sep == ' ' and parts == len(TAGS)
  with pytest.raises(DataError) as e:
    label_checks.check_training_labels(names, len(docs), 'sigmoid', ',')
  message = str(e.value)
  assert "--config.data.label_separator=' '" in message
  assert f'split there they are {len(TAGS)} labels' in message
  assert '\n' not in message


def test_single_label_run_on_label_sets_suggests_multilabel():
  names = [';'.join(tags) for tags, _ in tag_sets(300)]
  with pytest.raises(DataError, match=r"--config=multilabel "
                     r"--config.data.label_separator=';'"):
    label_checks.check_training_labels(names, 300, 'softmax')


def test_names_with_spaces_that_do_not_collapse_pass():
  # 'New York' beside 'Los Angeles': splitting gives more parts, not fewer.
  cities = ['New York', 'Los Angeles', 'San Francisco', 'Las Vegas',
            'Rio de Janeiro', 'Hong Kong', 'Buenos Aires', 'Cape Town']
  labels = [c for c in cities for _ in range(10)]
  assert label_checks.separator_in_names(cities) is None
  label_checks.check_training_labels(labels, len(labels))   # no error
  # The configured separator itself is never suggested.
  names = [','.join(tags) for tags, _ in tag_sets(300)]
  assert label_checks.separator_in_names(sorted(set(names)), ',') is None


def test_one_class_per_document_stops_unless_lenient(caplog):
  ids = [f'doc-{i}' for i in range(100)]   # an id column read as labels
  with pytest.raises(DataError, match=r'100 classes for 100 training '
                     r'documents: the median class has 1 document'):
    label_checks.check_training_labels(ids, 100)
  with caplog.at_level('WARNING'):
    label_checks.check_training_labels(ids, 100, lenient=True)
  assert any('data.lenient' in r.getMessage() for r in caplog.records)
  # Many classes with enough documents each are fine.
  label_checks.check_training_labels(
      [f'c{i}' for i in range(40) for _ in range(3)], 120)


def test_warnings_are_bounded(caplog):
  names = [f'{"x" * 200}-{i}' for i in range(900)]
  with caplog.at_level('WARNING'):
    label_checks.warn_about_labels(names, absent=names)
  lines = [r.getMessage() for r in caplog.records]
  assert len(lines) == 2
  for line in lines:
    assert len(line) < 1500, len(line)
    assert f'... and {900 - console.LIST_ITEMS} more' in line


def test_bounded_list_and_short_name():
  assert console.bounded_list(['a', 'b'], 3) == 'a, b'
  assert console.bounded_list(map(str, range(5)), 2) == '0, 1, ... and 3 more'
  assert console.short_name('abcdef', 5) == 'ab...'
  assert console.short_name('abc', 5) == 'abc'


def test_known_labels_check():
  label_checks.check_known_labels(['a', 'zz'], ['a', 'b'])   # one known
  with pytest.raises(DataError, match=r"--data=x.tsv: none of its 2 labels"):
    label_checks.check_known_labels(['ham', 'spam'], ['a', 'b'], path='x.tsv')


# -- end to end (before issue 23: exit 0, 890 classes, macro-F1 0.0068) -----


@pytest.fixture(scope='module')
def files(tmp_path_factory):
  base = tmp_path_factory.mktemp('labels')
  docs = tag_sets(400)
  # Many distinct sets of few tags: the rule needs splitting to collapse.
  assert len({tuple(tags) for tags, _ in docs}) > 4 * len(TAGS)
  return dict(base=base, docs=docs,
              space=write_multilabel_tsv(base / 'space.tsv', docs, ' '),
              comma=write_multilabel_tsv(base / 'comma.tsv', docs, ','))


def test_runner_stops_space_separated_multilabel_tsv(files, tmp_path):
  workdir = tmp_path / 'run'
  proc = run('train', '--config=multilabel',
             f'--config.data.train={files["space"]}',
             '--config.train.gradcheck=False', f'--workdir={workdir}',
             check=False)
  assert_one_line_error(proc, "--config.data.label_separator=' '",
                        f'they are {len(TAGS)} labels')
  assert not workdir.exists()           # the failed run removed its workdir
  longest = max(map(len, proc.stderr.splitlines()))
  assert longest < 1000, longest
  assert len(proc.stderr.splitlines()) < 20


def test_runner_with_the_right_separator_trains(files, tmp_path):
  workdir = tmp_path / 'run'
  run('train', '--config=multilabel', f'--config.data.train={files["space"]}',
      '--config.data.label_separator= ', '--config.train.gradcheck=False',
      f'--workdir={workdir}')
  results = json.loads((workdir / 'results.json').read_text())
  assert results['num_classes'] == len(TAGS)


def test_fasttext_multilabel_under_softmax_names_the_flag(tmp_path):
  lines = [' '.join(f'__label__{t}' for t in tags) + ' ' + text
           for tags, text in tag_sets(200)]
  data = tmp_path / 'tags.txt'
  data.write_text('\n'.join(lines) + '\n')
  proc = run('train', f'--config.data.train={data}', '--config.train.epochs=1',
             '--config.train.gradcheck=False', f'--workdir={tmp_path / "r"}')
  warning = [l for l in proc.stderr.splitlines() if 'several labels' in l]
  assert len(warning) == 1
  assert '--config.train.loss=sigmoid' in warning[0]
  assert not re.search(r'(?<!\()multi_label=True(?!\))', warning[0].split(
      'in Python')[0])


def test_evaluate_multilabel_model_on_foreign_labels_stops(files, tmp_path):
  workdir = tmp_path / 'run'
  run('train', '--config=multilabel', f'--config.data.train={files["comma"]}',
      '--config.train.gradcheck=False', '--config.train.epochs=1',
      f'--workdir={workdir}')
  other = tmp_path / 'other.tsv'
  other.write_text('label\ttext\nham\thello there\nspam\twin cash now\n')
  proc = run('evaluate', f'--model={workdir / "model"}', f'--data={other}',
             check=False)
  assert_one_line_error(proc, 'none of its 2 labels', "'ham'",
                        'every metric would be 0')
  # Data written with another separator: the message says which.
  proc = run('evaluate', f'--model={workdir / "model"}',
             f'--data={files["space"]}', check=False)
  assert_one_line_error(proc, 'separated by a space',
                        "--config.data.label_separator=' '")


def test_evaluate_softmax_model_on_foreign_labels_stops(tmp_path):
  from test_runners import _write_tsv
  train_file = _write_tsv(tmp_path / 'train.tsv', 90, 0)
  workdir = tmp_path / 'run'
  run('train', f'--config.data.train={train_file}', '--config.train.epochs=1',
      '--config.train.gradcheck=False', f'--workdir={workdir}')
  other = tmp_path / 'other.tsv'
  other.write_text('label\ttext\nham\thello there\nspam\twin cash now\n')
  proc = run('evaluate', f'--model={workdir / "model"}', f'--data={other}',
             check=False)
  assert_one_line_error(proc, 'none of its 2 labels')
