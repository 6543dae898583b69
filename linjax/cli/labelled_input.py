"""A labelled ``--data`` corpus read the way a saved model was trained.

`linjax evaluate` and `linjax report` (and explore's ``--data``) score a
saved model on a labelled file. Where a flag (``--format``,
``--text_column``, ``--label_column``) is empty, the model's own training
settings apply (its ``config.data``), and a multi-label model reads the
file as multi-label with its run's ``label_separator``/``allow_unlabeled``.
The reader's errors name config keys (``data.lenient``); here they name the
command's flags (``--lenient``), prefixed by ``--data``.
"""

from __future__ import annotations

from linjax.cli import config_check


def read_for_model(data_path: str, model, format: str = '',  # pylint: disable=redefined-builtin
                   text_column: str = '', label_column: str = '',
                   lenient: bool = False):
  """The corpus at ``data_path`` as ``model`` (a `SavedModel`) reads it.

  Returns:
    (`linjax.data.corpus.Corpus`, multi_label: bool). Multi-label corpora
    hold a tuple of label names per document.

  Raises:
    DataError: one line starting ``--data:`` (bad lines, no documents).
  """
  from linjax.cli import multilabel_run  # pylint: disable=g-import-not-at-top
  from linjax.data import corpus as data  # pylint: disable=g-import-not-at-top
  trained = model.config.get('data', {})
  multi_label = bool(getattr(model, 'multi_label', False))
  multilabel = multilabel_run.read_options(trained) if multi_label else {}
  try:
    corpus = data.read_corpus(
        data_path, format or '',
        text_column or trained.get('text_column', 'text'),
        label_column or trained.get('label_column', 'label'),
        lenient, **multilabel)
  except data.DataError as e:
    message = config_check.data_keys_as_flags(config_check.one_line(e))
    raise data.DataError(f'--data: {message}') from None
  if not corpus.texts:
    raise data.DataError('--data: no documents.', path=data_path,
                         fix='give --data a labelled corpus.')
  return corpus, multi_label
