r"""Shows why one text gets its label rather than the runner-up.

  linjax explain --model=run1/model --text="cheap cash prizes, call now"
  linjax explain --model=run1/model --text="..." --label=ham --against=spam

A linear model's score of class c is ``sum over n-grams of weight * W[id,
c] + b[c]`` (`linjax.analysis.interpret.explain`), so the margin between the
predicted label and the runner-up splits exactly into one term per n-gram
plus the bias difference. For a softmax model the margin is ``log(p_label /
p_against)``; for a multi-label (sigmoid) model it is the difference of the
two labels' log-odds; a loss without probabilities (hinge) shows p=nan. The n-grams are listed by the size of their part,
those for the label first (+) and those for the runner-up (-); the rest are
summed on one line, so the lines add up to the margin. ``--json`` prints the
same as one JSON object.
"""

from __future__ import annotations

import json

from absl import app
from absl import flags
import numpy as np

from linjax.cli import config_check
from linjax.cli import console
from linjax.cli import train as train_runner
from linjax.cli import workdir as workdir_lib

FLAGS = flags.FLAGS

flags.DEFINE_string('model', None, 'A saved model folder (a run\'s '
                    'DIR/model).')
flags.DEFINE_string('text', None, 'The text to explain.')
flags.DEFINE_string('label', '', 'The label to explain (default: the '
                    'predicted one).')
flags.DEFINE_string('against', '', 'The label to compare with (default: the '
                    'best other one, the runner-up).')
flags.DEFINE_integer('top_k', 10, 'N-grams listed at most (the rest are '
                     'summed).', lower_bound=1)
flags.DEFINE_bool('json', False, 'Print one JSON object instead of text.')


def _label_index(names, label: str, flag: str) -> int:
  if label not in names:
    raise config_check.ConfigError(
        f'{flag}={label}: not a label of the model; its labels: '
        f'{console.bounded_list(map(repr, names))}')
  return names.index(label)


def contrast(model, text: str, label: str = '', against: str = '') -> dict:
  """Why ``text`` gets ``label`` (default: predicted) rather than
  ``against`` (default: the runner-up).

  Returns:
    A dict: ``label``, ``against``, their probabilities ``p_label``,
    ``p_against`` (the loss's probability map: softmax, each label's own
    sigmoid, ...; nan for a margin loss), ``margin`` (score
    of label - score of against), ``bias`` (b[label] - b[against]) and
    ``ngrams``: one dict per n-gram of the text (``ngram``, ``weight``,
    ``contribution`` = weight * (W[id, label] - W[id, against])), largest
    |contribution| first; ``bias + sum(contributions) == margin``.
  """
  from linjax.analysis import interpret  # pylint: disable=g-import-not-at-top
  names = list(model.label_map.names)
  if len(names) < 2:
    raise config_check.ConfigError('--model: a model with one label has no '
                                   'runner-up to compare with')
  e = interpret.explain(model.params, model.featurizer, text, names)
  scores = e.logits
  entry = model.loss_entry   # its probability map (none for a margin loss)
  probs = (np.asarray(entry.proba(scores[None, :]), np.float64)[0]
           if entry.has_probabilities else np.full(scores.shape, np.nan))
  order = np.argsort(-scores, kind='stable')
  c = (_label_index(names, label, '--label') if label else int(order[0]))
  if against:
    r = _label_index(names, against, '--against')
    if r == c:
      raise config_check.ConfigError(
          f'--against={against}: the same label as --label; choose another')
  else:
    r = int(next(i for i in order if i != c))
  ngrams = [dict(ngram=it['ngram'], weight=it['weight'],
                 contribution=float(it['contributions'][c] -
                                    it['contributions'][r]))
            for it in e.items]
  ngrams.sort(key=lambda it: -abs(it['contribution']))
  return dict(text=text, label=names[c], against=names[r],
              p_label=float(probs[c]), p_against=float(probs[r]),
              margin=float(scores[c] - scores[r]),
              bias=float(e.bias[c] - e.bias[r]), ngrams=ngrams,
              loss=model.loss, multi_label=model.multi_label)


def format_contrast(out: dict, top_k: int = 10) -> str:
  """The text report of `contrast`: one line per listed n-gram."""
  what = 'log-odds' if out['multi_label'] else 'score'
  lines = [f'{out["label"]} (p={out["p_label"]:.3f}) rather than '
           f'{out["against"]} (p={out["p_against"]:.3f}): {what} margin '
           f'{out["margin"]:+.4f} = bias {out["bias"]:+.4f} + the n-grams:']
  shown = out['ngrams'][:top_k]
  for it in shown:
    side = out['label'] if it['contribution'] >= 0 else out['against']
    lines.append(f'  {it["contribution"]:+.4f}  {it["ngram"]!r}  '
                 f'(for {side})')
  rest = out['ngrams'][top_k:]
  if rest:
    lines.append(f'  {sum(it["contribution"] for it in rest):+.4f}  '
                 f'({len(rest)} more n-grams)')
  if not out['ngrams']:
    lines.append('  (no n-gram of the text is a feature of the model: '
                 'the bias decides)')
  return '\n'.join(lines)


def main(argv):
  console.short_log_format()
  with config_check.runner_main(argv, model=FLAGS.model):
    if FLAGS.text is None:
      raise config_check.ConfigError('--text is required (the text to '
                                     'explain, quoted)')
    model = workdir_lib.load_model(FLAGS.model)
    out = contrast(model, FLAGS.text, FLAGS.label, FLAGS.against)
    if FLAGS.json:
      print(json.dumps(out, ensure_ascii=False))
    else:
      print(format_contrast(out, FLAGS.top_k))


def command() -> None:
  """``linjax explain``: parses the flags and runs `main`."""
  app.run(main, flags_parser=train_runner.parse_flags)


if __name__ == '__main__':
  command()
