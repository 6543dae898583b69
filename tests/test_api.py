"""The public API contract of docs/design.md is importable from `linjax`."""

import inspect

import linjax

CONTRACT = ('Params', 'init_params', 'SparseFeatures', 'featurize', 'logits',
            'softmax', 'log_softmax', 'softmax_loss', 'l2_penalty',
            'objective', 'manual_grad', 'numerical_grad', 'check_grad')
CONVENIENCE = ('Featurizer', 'tokenize', 'read_corpus', 'LabelMap',
               'DataError', 'CsrFeatures', 'fit', 'predict_logits',
               'predict_proba', 'TrainingDiverged', 'ConfigError',
               'LinjaxClassifier', 'save_model', 'load_model',
               'ModelFileError')


def test_contract_names_and_signatures():
  for name in CONTRACT + CONVENIENCE:
    assert getattr(linjax, name) is not None, name
  assert list(inspect.signature(linjax.init_params).parameters)[:4] == [
      'key', 'num_features', 'num_classes', 'scale']
  assert list(inspect.signature(linjax.numerical_grad).parameters)[:3] == [
      'fn', 'params', 'eps']
  for fn in (linjax.manual_grad, linjax.check_grad):
    assert list(inspect.signature(fn).parameters)[:4] == [
        'params', 'x', 'y', 'l2']
  assert linjax.Params._fields == ('W', 'b')
  assert linjax.SparseFeatures._fields == ('ids', 'weights')


def test_unknown_attribute():
  try:
    linjax.no_such_name  # pylint: disable=pointless-statement
  except AttributeError as e:
    assert 'no_such_name' in str(e)
  else:
    raise AssertionError('expected AttributeError')
