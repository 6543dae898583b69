"""report.html's numbers, against independent computations (no browser).

The per-token contributions against a reference written here (its own
tokeniser regex and n-grams, the weights of `Featurizer.transform` and W),
the calibration against a hand-worked example, the per-class metrics and
the multi-label threshold curve against scikit-learn, the sampling bounds,
the safe embedding of untrusted text, and `linjax report` / the what-if
server end to end. The browser tests are in tests/test_browser_report.py.
"""

import http.client
import json
import os
import re
import threading

import numpy as np
import pytest

import linjax
from linjax import saved_model
from linjax.analysis import report_calibration
from linjax.analysis import report_contributions as contributions
from linjax.analysis import report_data
from linjax.analysis import report_page
from linjax.data import corpus as corpus_lib
from linjax.text import featurizer as text
from linjax.text import shapes

CLASSES = ('animals', 'space', 'food')
_WORDS = {
    'animals': 'cat dog horse Cow sheep Barks meows fur paw tail zoo',
    'space': 'star Orbit rocket NASA moon planet comet launch sky Mars',
    'food': 'bread cheese Apple soup pasta salt sugar bake cook dinner',
}
# Documents a test injects: markup that must show as text, and characters
# JavaScript counts twice (outside the Basic Multilingual Plane).
HOSTILE = ('<script>window.__pwned = 1</script><img src=x '
           'onerror="window.__pwned = 2"> cat & dog </script>')
ASTRAL = 'Rocket \U0001F680 to the moon \U0001F315 tonight!'


def make_corpus(num: int = 90, seed: int = 0):
  """``num`` short labelled documents over three classes (some off-topic
  words, so that a model makes mistakes), plus the two special ones."""
  rng = np.random.default_rng(seed)
  texts, labels = [], []
  for i in range(num):
    label = CLASSES[i % 3]
    own = _WORDS[label].split()
    other = _WORDS[CLASSES[(i + 1 + i // 3) % 3]].split()
    words = list(rng.choice(own, 4)) + list(rng.choice(other, 3))
    rng.shuffle(words)
    texts.append(' '.join(words) + rng.choice(['.', '!', ' ?', ', ok.']))
    labels.append(label)
  texts += [HOSTILE, ASTRAL]
  labels += ['animals', 'space']
  return texts, labels


def make_model(path, settings=None, seed: int = 0):
  """A saved model (random weights) over a featuriser fitted on the corpus;
  returns (model dir, texts, labels)."""
  texts, labels = make_corpus()
  settings = settings or dict(ngrams=2, buckets=0, min_df=1, shape_ngrams=1,
                              weighting='sublinear_tfidf')
  featurizer = text.Featurizer(**settings).fit(texts)
  rng = np.random.default_rng(seed)
  f = featurizer.num_features
  W = rng.normal(size=(f, len(CLASSES))).astype(np.float32)
  # Each class's own words lean its way, so most predictions are right.
  for c, name in enumerate(CLASSES):
    for word in _WORDS[name].lower().split():
      if not featurizer.hashing and word in featurizer.feature_names(range(f)):
        W[featurizer.feature_names(range(f)).index(word), c] += 2.5
  b = rng.normal(size=len(CLASSES)).astype(np.float32) * 0.1
  label_map = corpus_lib.LabelMap(sorted(CLASSES))
  model_dir = os.path.join(str(path), 'model')
  saved_model.save(model_dir, linjax.Params(W=W, b=b), featurizer, label_map,
                   config={'features': settings})
  return model_dir, texts, labels


def write_tsv(path, texts, labels) -> str:
  with open(path, 'w', encoding='utf-8') as f:
    f.write('label\ttext\n')
    for label, t in zip(labels, texts):
      f.write(f'{label}\t{t}\n')
  return str(path)


def reference_contributions(featurizer, W, text_, target, other):
  """{(start, end): contribution} of one document, computed here.

  Tokens by this test's own regex (words and punctuation marks, lower
  case), n-grams and shape n-grams built here, each feature's weight from
  `Featurizer.transform`, shared evenly by its occurrences, and each
  occurrence's ``weight * (W[id, target] - W[id, other])`` shared evenly by
  the tokens it covers. Vocabulary mode (names are exact).
  """
  settings = featurizer.settings
  toks = [(m.start(), m.end(), m.group())
          for m in re.finditer(r'\w+|[^\w\s]', text_)]
  words = [t.lower() for _, _, t in toks]
  grams = []   # (string, covered token indices)
  for n in range(1, settings['ngrams'] + 1):
    grams += [(' '.join(words[i:i + n]), list(range(i, i + n)))
              for i in range(len(words) - n + 1)]
  shaped = [(shapes.token_shape(t), i) for i, (_, _, t) in enumerate(toks)]
  shaped = [(s, i) for s, i in shaped if s is not None]
  for n in range(1, settings['shape_ngrams'] + 1):
    grams += [(' '.join(s for s, _ in shaped[i:i + n]),
               [j for _, j in shaped[i:i + n]])
              for i in range(len(shaped) - n + 1)]
  vocab = {name: i for i, name in enumerate(
      featurizer.feature_names(range(featurizer.num_features)))}
  row = featurizer.transform([text_])
  weight_of = dict(zip(row.ids.tolist(), row.weights.tolist()))
  found = [(vocab[g], cover) for g, cover in grams if vocab.get(g) in weight_of]
  count = {}
  for fid, _ in found:
    count[fid] = count.get(fid, 0) + 1
  per_token = np.zeros(len(toks))
  for fid, cover in found:
    score = W[fid, target] - (W[fid, other] if other >= 0 else 0.0)
    per_token[cover] += weight_of[fid] / count[fid] * score / len(cover)
  return {(s, e): v for (s, e, _), v in zip(toks, per_token)}


def _predictions(model_dir, texts):
  model = saved_model.load(model_dir)
  return model, np.asarray(model.predict_proba(texts), np.float64)


def test_token_contributions_match_an_independent_computation(tmp_path):
  model_dir, texts, labels = make_model(tmp_path)
  model, proba = _predictions(model_dir, texts)
  W = np.asarray(model.params.W, np.float64)
  y = model.label_map.encode(labels)
  target, other = report_data.explained_classes(y, proba, None)
  slots = contributions.document_slots(model.featurizer, texts)
  values = contributions.token_contributions(W, slots, target, other)
  offsets, start, end, value = contributions.merged_spans(slots, values)
  for n, t in enumerate(texts):
    if t == ASTRAL:
      continue   # its emoji are no token of the reference regex either
    expected = reference_contributions(model.featurizer, W, t, target[n],
                                       other[n])
    lo, hi = offsets[n], offsets[n + 1]
    got = dict(zip(zip(start[lo:hi].tolist(), end[lo:hi].tolist()),
                   value[lo:hi].tolist()))
    assert got.keys() == expected.keys(), t
    np.testing.assert_allclose([got[k] for k in expected],
                               list(expected.values()), rtol=1e-9, atol=1e-12)
    # The prediction is right or wrong for the reasons highlighted:
    # the tokens add up to the score difference less the bias difference.
    logits = np.log(proba[n])
    b = np.asarray(model.params.b, np.float64)
    np.testing.assert_allclose(
        sum(expected.values()),
        logits[target[n]] - logits[other[n]] - (b[target[n]] - b[other[n]]),
        rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('settings', [
    dict(ngrams=2, buckets=4096, min_df=1, shape_ngrams=2),
    dict(ngrams=3, buckets=64, min_df=2, shape_ngrams=0, weighting='tf'),
    dict(ngrams=1, buckets=0, min_df=1, shape_ngrams=2, normalize='none',
         weighting='binary', tokenizer='tweet')])
def test_contributions_add_up_to_the_score_difference(tmp_path, settings):
  model_dir, texts, labels = make_model(tmp_path, settings)
  model, proba = _predictions(model_dir, texts)
  W = np.asarray(model.params.W, np.float64)
  b = np.asarray(model.params.b, np.float64)
  x = model.featurizer.transform(texts)
  rows = np.repeat(np.arange(len(texts)), x.row_lengths())
  scores = np.zeros((len(texts), W.shape[1]))
  np.add.at(scores, rows, x.weights[:, None] * W[x.ids])   # x W, no bias
  target, other = report_data.explained_classes(
      model.label_map.encode(labels), proba, None)
  slots = contributions.document_slots(model.featurizer, texts)
  values = contributions.token_contributions(W, slots, target, other)
  doc = np.repeat(np.arange(len(texts)), np.diff(slots.doc_offsets))
  per_doc = np.bincount(doc, values, minlength=len(texts))
  n = np.arange(len(texts))
  np.testing.assert_allclose(per_doc, scores[n, target] - scores[n, other],
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(  # and x W + b are the model's own scores
      scores + b, np.log(proba) + np.log(np.exp(scores + b).sum(1))[:, None],
      rtol=1e-4, atol=1e-4)


def test_utf16_offsets_count_astral_characters_twice():
  t = 'a\U0001F680b c\U0001F315'
  positions = np.arange(len(t) + 1)
  expected = [len(t[:k].encode('utf-16-le')) // 2 for k in positions]
  assert contributions.utf16_offsets(t, positions).tolist() == expected
  assert contributions.utf16_offsets('plain', np.array([0, 5])).tolist() == [
      0, 5]


def test_explained_classes():
  proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
  target, other = report_data.explained_classes(np.array([0, 1, 1]), proba,
                                                None)
  # right: against the runner-up; wrong: the prediction against the truth.
  assert target.tolist() == [0, 2, 1] and other.tolist() == [1, 1, 2]
  Y = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1]])
  target, other = report_data.explained_classes(Y, proba, 0.5)
  # doc 1: missed label 1 (0.2 under) vs false label 2 (0.1 over);
  # doc 2: missed label 2 (0.2 under) is the only error.
  assert target.tolist() == [0, 1, 2] and other.tolist() == [-1, -1, -1]


def test_reliability_and_ece_hand_worked():
  # 2 bins: (0, .5] holds 0.3 (wrong); (.5, 1] holds .9 (right), .8 (wrong)
  # and .6 (right). ECE = 1/4 |0 - .3| + 3/4 |2/3 - 2.3/3| = .075 + .075.
  cal = report_calibration.reliability([0.9, 0.8, 0.3, 0.6], [1, 0, 0, 1],
                                       num_bins=2)
  assert cal['count'] == [1, 3]
  np.testing.assert_allclose(cal['accuracy'], [0.0, 2 / 3])
  np.testing.assert_allclose(cal['confidence'], [0.3, 2.3 / 3])
  assert cal['ece'] == pytest.approx(0.15)
  empty = report_calibration.reliability([0.95], [1], num_bins=4)
  assert empty['count'] == [0, 0, 0, 1] and empty['accuracy'][0] is None
  assert empty['ece'] == pytest.approx(0.05)


def test_single_label_payload_matches_scikit_learn(tmp_path):
  metrics = pytest.importorskip('sklearn.metrics')
  model_dir, texts, labels = make_model(tmp_path)
  model, proba = _predictions(model_dir, texts)
  y = model.label_map.encode(labels)
  payload = report_data.build_payload(
      texts=texts, y_true=y, proba=proba, W=np.asarray(model.params.W),
      b=np.asarray(model.params.b), featurizer=model.featurizer,
      label_names=model.label_map.names)
  pred = proba.argmax(1)
  p, r, f, s = metrics.precision_recall_fscore_support(
      y, pred, labels=range(3), zero_division=0)
  rows = payload['per_class']
  np.testing.assert_allclose([x['precision'] for x in rows], p)
  np.testing.assert_allclose([x['recall'] for x in rows], r)
  np.testing.assert_allclose([x['f1'] for x in rows], f)
  assert [x['support'] for x in rows] == s.tolist()
  assert payload['confusion'] == metrics.confusion_matrix(
      y, pred, labels=range(3)).tolist()
  assert payload['metrics']['accuracy'] == pytest.approx(
      metrics.accuracy_score(y, pred))
  assert payload['metrics']['macro_f1'] == pytest.approx(
      metrics.f1_score(y, pred, average='macro'))
  # The ECE of the top class, as linjax.analysis.metrics computes it.
  from linjax.analysis import metrics as linjax_metrics
  assert payload['metrics']['ece'] == pytest.approx(
      linjax_metrics.expected_calibration_error(y, proba))
  # Every document is embedded (few), each with the right labels and loss.
  docs = payload['docs']
  assert docs['index'] == list(range(len(texts)))
  assert docs['true'] == y.tolist() and docs['pred'] == pred.tolist()
  np.testing.assert_allclose(docs['loss'], -np.log(proba[np.arange(len(y)), y]),
                             rtol=1e-3, atol=1e-4)
  assert payload['errors_total'] == int((pred != y).sum()) > 0


def test_multi_label_payload_matches_scikit_learn():
  metrics = pytest.importorskip('sklearn.metrics')
  rng = np.random.default_rng(3)
  Y = (rng.random((200, 5)) < 0.3).astype(np.uint8)
  proba = np.clip(0.55 * Y + 0.5 * rng.random((200, 5)), 0, 1)
  texts = [f'doc {i} ' + ' '.join(f'w{j}' for j in np.flatnonzero(Y[i]))
           for i in range(200)]
  featurizer = text.Featurizer(ngrams=1, buckets=256, min_df=1).fit(texts)
  W = rng.normal(size=(256, 5)).astype(np.float32)
  payload = report_data.build_payload(
      texts=texts, y_true=Y, proba=proba, W=W, b=np.zeros(5),
      featurizer=featurizer, label_names=list('abcde'), threshold=0.5,
      options=report_data.ReportOptions(max_docs=50))
  pred = proba >= 0.5
  assert payload['metrics']['micro_f1'] == pytest.approx(
      metrics.f1_score(Y, pred, average='micro'))
  np.testing.assert_allclose([r['f1'] for r in payload['per_class']],
                             metrics.f1_score(Y, pred, average=None))
  curve = payload['threshold_curve']
  for t, micro, macro in zip(curve['thresholds'], curve['micro_f1'],
                             curve['macro_f1']):
    at = proba >= t
    assert micro == pytest.approx(metrics.f1_score(Y, at, average='micro',
                                                   zero_division=0))
    assert macro == pytest.approx(metrics.f1_score(Y, at, average='macro',
                                                   zero_division=0))
  docs = payload['docs']
  assert len(docs['index']) == 50
  for i, true, predicted in zip(docs['index'], docs['true'], docs['pred']):
    assert sorted(true) == np.flatnonzero(Y[i]).tolist()
    assert sorted(predicted) == np.flatnonzero(pred[i]).tolist()
    assert [proba[i, c] for c in predicted] == sorted(
        [proba[i, c] for c in predicted], reverse=True)


def test_choose_documents_bounds_and_strata():
  rng = np.random.default_rng(0)
  n = 5000
  y = rng.integers(0, 4, n)
  pred = np.where(rng.random(n) < 0.3, rng.integers(0, 4, n), y)
  wrong = pred != y
  cost = np.full(n, 100.0)
  options = report_data.ReportOptions(max_docs=400, error_share=0.5)
  chosen = report_data.choose_documents(wrong, y * 4 + pred, y, cost, options)
  assert len(chosen) == 400 and len(set(chosen.tolist())) == 400
  assert wrong[chosen].sum() == 200
  # Every confusion cell with errors is represented, roughly in proportion.
  cells = set((y * 4 + pred)[wrong].tolist())
  assert set((y * 4 + pred)[chosen][wrong[chosen]].tolist()) == cells
  # All errors when they fit; the correct ones fill the rest.
  few = report_data.choose_documents(wrong, y * 4 + pred, y, cost,
                                     report_data.ReportOptions(max_docs=4000))
  assert set(np.flatnonzero(wrong)) <= set(few.tolist()) and len(few) == 4000
  # The byte budget holds: fewer documents, errors still first.
  tight = report_data.choose_documents(
      wrong, y * 4 + pred, y, cost,
      report_data.ReportOptions(max_docs=2000, max_doc_bytes=50_000))
  assert cost[tight].sum() <= 50_000 and wrong[tight].sum() > 0
  assert report_data.choose_documents(
      wrong, y, y, cost, report_data.ReportOptions(max_docs=0)).size == 0


def test_script_json_cannot_close_the_script_element():
  nasty = ['</script><script>alert(1)</script>', '<!--', 'a & b > c',
           'line\u2028sep\u2029', 'lone \ud800 surrogate']
  out = report_page.script_json({'texts': nasty})
  assert not set(out) & set('<>&\u2028\u2029')
  assert json.loads(out) == {'texts': nasty}
  page = report_page.render({'labels': ['a'], 'info': {'corpus': nasty[0]}},
                            title=nasty[0])
  assert page.count('</script>') == 2 and '<script>alert' not in page
  # No URL but the SVG namespace's name (a string, never fetched).
  assert set(re.findall(r'https?://[^\s\'"]*', page)) == {
      'http://www.w3.org/2000/svg'}


def test_report_command_writes_a_self_contained_page(tmp_path, capsys):
  from linjax.cli import report as report_cli
  model_dir, texts, labels = make_model(tmp_path)
  data = write_tsv(tmp_path / 'test.tsv', texts, labels)
  out = str(tmp_path / 'report.html')
  written = report_cli.report_for_model(model_dir, data, out)
  page = open(out, encoding='utf-8').read()
  assert written['bytes'] == len(page.encode('utf-8'))
  assert written['docs'] == len(texts)
  data_element = re.search(
      r'<script type="application/json" id="report-data">(.*?)</script>',
      page, re.S)
  payload = json.loads(data_element.group(1))
  assert payload['docs']['text'] == texts    # verbatim, markup included
  assert sum(map(sum, payload['confusion'])) == len(texts)
  # Nothing outside the page: no element that loads, no URL but the SVG
  # namespace's name (outside the data, which holds the documents' text).
  code = page.replace(data_element.group(1), '')
  assert not re.search(r'<(link|img|iframe|object|embed)\b|\bsrc=', code)
  assert set(re.findall(r'https?://[^\s\'"]*', code)) == {
      'http://www.w3.org/2000/svg'}


def make_multi_label_report(tmp_path) -> str:
  """A multi-label model's report.html (random weights); its path."""
  from linjax.cli import report as report_cli
  texts, labels = make_corpus()
  tags = [(l, 'long') if len(t) > 45 else (l,) for t, l in zip(texts, labels)]
  featurizer = text.Featurizer(ngrams=2, buckets=2048, min_df=1).fit(texts)
  label_map = corpus_lib.LabelMap.fit_multi(tags)
  rng = np.random.default_rng(1)
  W = rng.normal(size=(2048, label_map.num_classes)).astype(np.float32)
  model_dir = str(tmp_path / 'model')
  saved_model.save(model_dir, linjax.Params(W=W, b=np.zeros(
      label_map.num_classes, np.float32)), featurizer, label_map,
                   config={'data': {'label_separator': ','}}, loss='sigmoid',
                   extra={'threshold': 0.4})
  data = tmp_path / 'tags.tsv'
  write_tsv(data, texts, [','.join(t) for t in tags])
  out = str(tmp_path / 'report.html')
  report_cli.report_for_model(model_dir, str(data), out)
  return out


def test_report_on_a_multi_label_model(tmp_path):
  page = open(make_multi_label_report(tmp_path), encoding='utf-8').read()
  payload = json.loads(re.search(r'id="report-data">(.*?)</script>', page,
                                 re.S).group(1))
  assert payload['kind'] == 'multi' and payload['confusion'] is None
  assert payload['metrics']['threshold'] == pytest.approx(0.4)
  assert len(payload['threshold_curve']['thresholds']) > 10


def _post(port, body: bytes, host=None):
  conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
  headers = {'Content-Type': 'application/json'}
  if host:
    headers['Host'] = host
  conn.request('POST', '/api/explain', body=body, headers=headers)
  response = conn.getresponse()
  return response.status, json.loads(response.read())


def test_explore_server_predicts_and_refuses(tmp_path):
  from linjax.cli import config_check
  from linjax.cli import explore
  model_dir, texts, _ = make_model(tmp_path)
  explorer = explore.load_explorer(model_dir, max_chars=200)
  with pytest.raises(config_check.ConfigError, match='--allow_remote'):
    explore.make_server(explorer, '0.0.0.0', 0)
  server = explore.make_server(explorer, '127.0.0.1', 0)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    port = server.server_address[1]
    model = saved_model.load(model_dir)
    for t in texts[:5] + [HOSTILE]:
      status, answer = _post(port, json.dumps({'text': t}).encode())
      assert status == 200
      assert model.label_map.names[answer['pred']] == model.predict([t])[0]
      np.testing.assert_allclose(answer['proba'], model.predict_proba([t])[0],
                                 atol=1e-4)
    # Why this prediction rather than class c: the prediction against c.
    t = texts[0]
    pred = int(np.argmax(model.predict_proba([t])[0]))
    for c in range(3):
      status, answer = _post(port, json.dumps({'text': t, 'against': c}
                                              ).encode())
      assert status == 200 and answer['target'] == pred
      assert answer['other'] == (c if c != pred else int(np.argsort(
          -model.predict_proba([t])[0])[1]))
    assert _post(port, b'{"text": "a", "against": 7}')[0] == 400
    assert _post(port, json.dumps({'text': 'x' * 201}).encode())[0] == 413
    assert _post(port, b'{' * 2000)[0] == 413        # over the byte limit
    assert _post(port, b'not json')[0] == 400
    assert _post(port, b'{"text": 1}')[0] == 400
    assert _post(port, b'{"text": "a"}', host='evil.example:80')[0] == 421
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    conn.request('GET', '/')
    response = conn.getresponse()
    page = response.read().decode('utf-8')
    assert response.status == 200 and 'whatif' in page
    conn.request('GET', '/etc/passwd')
    assert conn.getresponse().status == 404
  finally:
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize('shape,k', [((500, 4), 5), ((7, 3), 5), ((40, 2), 20)])
def test_top_rows_against_a_full_sort(shape, k):
  from linjax.analysis import report_templates
  rng = np.random.default_rng(shape[0])
  W = rng.normal(size=shape).astype(np.float32)
  W[rng.random(shape[0]) < 0.5] = 0.0          # untouched rows
  W[3, 0] = 0.0
  W[shape[0] - 1] = W[shape[0] - 2] = np.abs(W[1]) + 5   # ties: by row id
  positive, negative = report_templates.top_rows(W, k)
  for c in range(shape[1]):
    col = W[:, c]
    pos = [i for i in np.argsort(-col, kind='stable') if col[i] > 0][:k]
    neg = [i for i in np.argsort(col, kind='stable') if col[i] < 0][:k]
    assert [i for i in positive[c] if i >= 0] == pos
    assert [i for i in negative[c] if i >= 0] == neg


def test_templates_name_features_and_mark_collisions():
  from linjax.analysis import report_templates
  texts, _ = make_corpus()
  vocab = text.Featurizer(ngrams=1, buckets=0, min_df=1).fit(texts)
  W = np.zeros((vocab.num_features, 2), np.float32)
  names = vocab.feature_names(range(vocab.num_features))
  W[names.index('rocket'), 0], W[names.index('cheese'), 0] = 2.0, -1.0
  t = report_templates.class_templates(W, np.zeros(2), vocab, ['a', 'b'], 3)
  assert [(f['names'], f['weight'], f['collision']) for f in t[0]['positive']
          ] == [(['rocket'], 2.0, False)]
  assert [f['names'] for f in t[0]['negative']] == [['cheese']]
  assert t[1]['positive'] == t[1]['negative'] == []
  # 4 buckets for dozens of n-grams: every named bucket is a collision.
  hashed = text.Featurizer(ngrams=1, buckets=4, min_df=1).fit(texts)
  W = np.arange(1, 9, dtype=np.float32).reshape(4, 2)
  t = report_templates.class_templates(W, np.zeros(2), hashed, ['a', 'b'], 4)
  for f in t[0]['positive']:
    assert len(f['names']) > 1 and f['collision']


def test_a_training_run_writes_its_report(tmp_path):
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  texts, labels = make_corpus(150, seed=5)
  train = write_tsv(tmp_path / 'train.tsv', texts, labels)
  test_texts, test_labels = make_corpus(60, seed=6)
  test = write_tsv(tmp_path / 'test.tsv', test_texts, test_labels)

  def train_run(workdir, *extra):
    return subprocess.run(
        [sys.executable, '-m', 'linjax', 'train', f'--workdir={workdir}',
         f'--config.data.train={train}', f'--config.data.test={test}',
         '--config.train.epochs=2', '--config.train.gradcheck=False',
         '--config.train.checkpoint_every=0', *extra],
        capture_output=True, text=True, cwd=root, timeout=300,
        env=dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=root))

  proc = train_run(tmp_path / 'run', '--config.report.max_docs=20')
  assert proc.returncode == 0, proc.stderr[-2000:]
  page_path = tmp_path / 'run' / 'report.html'
  # The run's last line names the page.
  assert str(page_path) in proc.stdout.strip().splitlines()[-1]
  results = json.loads((tmp_path / 'run' / 'results.json').read_text())
  assert results['report'] == str(page_path)
  assert results['report_bytes'] == page_path.stat().st_size
  assert results['report_seconds'] > 0 and results['report_docs'] == 20
  payload = json.loads(re.search(
      r'id="report-data">(.*?)</script>', page_path.read_text('utf-8'),
      re.S).group(1))
  # The page's numbers are the run's.
  assert payload['metrics']['accuracy'] == pytest.approx(
      results['test_accuracy'])
  assert payload['confusion'] == results['test_report']['confusion_matrix']
  assert [h['epoch'] for h in payload['history']] == [1, 2]
  assert all(payload['docs']['text'][i] == test_texts[j]
             for i, j in enumerate(payload['docs']['index']))
  # report.max_docs=0: no page; a bad value fails before any work.
  proc = train_run(tmp_path / 'none', '--config.report.max_docs=0')
  assert proc.returncode == 0 and not (tmp_path / 'none' / 'report.html'
                                       ).exists()
  proc = train_run(tmp_path / 'bad', '--config.report.max_docs=-3')
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines()[-1].startswith(
      'error: report.max_docs')
  assert not (tmp_path / 'bad' / 'results.json').exists()


@pytest.mark.parametrize('settings', [
    dict(ngrams=2, buckets=0, min_df=1, shape_ngrams=1),
    dict(ngrams=2, buckets=4096, min_df=2, shape_ngrams=2),
    dict(ngrams=3, buckets=64, min_df=1, shape_ngrams=0, weighting='tf'),
    dict(ngrams=1, buckets=0, min_df=1, shape_ngrams=2, normalize='none',
         weighting='binary', tokenizer='tweet', lowercase=False)])
def test_batch_analysis_matches_the_reference(settings):
  texts, _ = make_corpus()
  texts += ['See https://example.org/x?y=1 now!', 'İstanbul ΣΑΣ ok',
            '', '   ', '#tag @user ...', 'x' * 40]
  featurizer = text.Featurizer(**settings).fit(texts)
  if not hasattr(featurizer, 'analyze_batch'):
    pytest.skip('this Featurizer has no analyze_batch')
  batch = contributions.from_batch_analysis(featurizer.analyze_batch(texts))
  reference = contributions.reference_slots(featurizer, texts)
  rng = np.random.default_rng(0)
  W = rng.normal(size=(featurizer.num_features, 3))
  target = rng.integers(0, 3, len(texts))
  other = np.where(rng.random(len(texts)) < 0.3, -1, (target + 1) % 3)
  got = contributions.merged_spans(
      batch, contributions.token_contributions(W, batch, target, other))
  want = contributions.merged_spans(
      reference, contributions.token_contributions(W, reference, target,
                                                   other))
  for g, w in zip(got[:3], want[:3]):
    np.testing.assert_array_equal(g, w)
  np.testing.assert_allclose(got[3], want[3], rtol=1e-9, atol=1e-12)


def make_hinge_report(tmp_path):
  """A hinge model (random weights) and its report.html: (model dir, page
  path, texts, labels, label map)."""
  from linjax.cli import report as report_cli
  texts, labels = make_corpus()
  featurizer = text.Featurizer(ngrams=2, buckets=0, min_df=1).fit(texts)
  rng = np.random.default_rng(2)
  W = rng.normal(size=(featurizer.num_features, 3)).astype(np.float32)
  model_dir = str(tmp_path / 'model')
  label_map = corpus_lib.LabelMap(sorted(CLASSES))
  saved_model.save(model_dir, linjax.Params(W=W, b=np.zeros(3, np.float32)),
                   featurizer, label_map, config={}, loss='hinge')
  data = write_tsv(tmp_path / 'test.tsv', texts, labels)
  out = str(tmp_path / 'report.html')
  report_cli.report_for_model(model_dir, data, out)
  return model_dir, out, texts, labels, label_map


def test_report_of_a_margin_loss_model(tmp_path):
  """A hinge model gives scores, not probabilities: margins, hinge losses,
  no log loss or calibration."""
  from linjax.cli import explore
  model_dir, out, texts, labels, label_map = make_hinge_report(tmp_path)
  payload = json.loads(re.search(r'id="report-data">(.*?)</script>', open(
      out, encoding='utf-8').read(), re.S).group(1))
  assert payload['probabilities'] is False
  assert payload['calibration'] is None
  assert payload['metrics']['log_loss'] is None
  scores = saved_model.load(model_dir).decision_function(texts)
  y = label_map.encode(labels)
  ranked = np.sort(scores, axis=1)
  rival = np.max(np.where(np.eye(3, dtype=bool)[y], -np.inf, scores), axis=1)
  docs = payload['docs']
  np.testing.assert_allclose(docs['conf'], (ranked[:, -1] - ranked[:, -2])[
      docs['index']], atol=1e-4)
  np.testing.assert_allclose(docs['loss'], np.maximum(
      0, 1 + rival - scores[np.arange(len(y)), y])[docs['index']], atol=1e-4)
  assert payload['metrics']['accuracy'] == pytest.approx(
      np.mean(scores.argmax(1) == y))
  answer = explore.load_explorer(model_dir).explain(texts[0])
  assert answer['probabilities'] is False
  np.testing.assert_allclose(answer['proba'], scores[0], atol=1e-4)
