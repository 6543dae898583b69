r"""Converts a saved model to a smaller precision (or a newer format).

  linjax convert --model=run1/model --out=run1/model-int8 --precision=int8

Wraps `linjax.saved_model.convert`: the model is loaded and verified, then
saved again at ``--precision`` (float32: exact; float16; int8 with one scale
per row of W, ``--int8_scale=column`` for one per class), atomically. The
new model records where it came from (``extra.converted_from``: the source
folder and its precision).

Like ``train``, it never replaces anything finished without ``--overwrite``:
an existing model at ``--out``, or ``--out`` equal to ``--model`` (an
in-place conversion), is refused. A conversion that cannot be honest is
refused whatever the flags: int8 or float16 weights written as a wider
precision keep their rounding, so the file would claim a precision its
numbers do not have; convert the original float32 model instead.
"""

from __future__ import annotations

import os

from absl import app
from absl import flags

from linjax.cli import config_check
from linjax.cli import console
from linjax.cli import train as train_runner
from linjax.cli import workdir as workdir_lib

FLAGS = flags.FLAGS

flags.DEFINE_string('model', None, 'The saved model folder to convert (a '
                    'run\'s DIR/model).')
flags.DEFINE_string('out', None, 'The folder of the converted model.')
flags.DEFINE_enum('precision', 'int8', ['float32', 'float16', 'int8'],
                  'How the non-zero rows of W are stored.')
flags.DEFINE_enum('int8_scale', 'row', ['row', 'column'], 'int8: one scale '
                  'per row of W (per feature) or per column (per class).')
flags.DEFINE_bool('overwrite', False, 'Replace an existing model at --out '
                  '(or convert --model in place when --out is --model).')

# Bits of each stored precision: a conversion may only go down.
BITS = {'float32': 32, 'float16': 16, 'int8': 8}


def check_precision(model_dir: str, source: str, precision: str) -> None:
  """Refuses a wider precision than the source's.

  Raises:
    ConfigError: naming --precision and the fix.
  """
  if BITS[precision] > BITS[source]:
    raise config_check.ConfigError(
        f'--precision={precision}: --model={model_dir} is stored as '
        f'{source}; widening keeps its {source} rounding, and the file would '
        f'claim {precision}. Fix: convert the original float32 model, or '
        f'--precision={source}' + (' or smaller' if source != 'int8' else ''))


def check_paths(model_dir: str, out: str, overwrite: bool) -> None:
  """Refuses to replace anything finished.

  Raises:
    PathError: ``model_dir`` is no saved model; ``out`` exists (or is
      ``model_dir``) and not ``overwrite``; ``out`` is a file or a folder
      that is not a saved model.
  """
  workdir_lib.check_model_dir(model_dir)
  same = os.path.realpath(out) == os.path.realpath(model_dir)
  if same and not overwrite:
    raise workdir_lib.PathError(
        f'--out={out} is --model itself: converting in place replaces the '
        f'original; nothing was changed. Pass --overwrite to do so, or '
        f'choose another --out.')
  if os.path.exists(out) and not same:
    is_model = os.path.isfile(os.path.join(out, 'model.json'))
    empty = os.path.isdir(out) and not os.listdir(out)
    if not (is_model or empty):
      raise workdir_lib.PathError(
          f'--out={out} exists and is not a saved model; nothing was '
          f'changed. Choose a new folder name.')
    if is_model and not overwrite:
      raise workdir_lib.PathError(
          f'--out={out} holds a saved model; nothing was changed. Pass '
          f'--overwrite to replace it, or choose another --out.')
  workdir_lib.ensure_writable_dir(os.path.dirname(os.path.abspath(out)),
                                  '--out', out)


def convert(model_dir: str, out: str, precision: str = 'int8',
            int8_scale: str = 'row', overwrite: bool = False) -> dict:
  """Checks, loads (verifying) and saves the model at ``precision``.

  Returns:
    ``source_precision``, ``precision``, ``bytes_before``, ``bytes_after``.

  Raises:
    PathError, ConfigError: see `check_paths`, `check_precision` (before
      anything is written); ModelFileError: the model does not verify.
  """
  from linjax import saved_model  # pylint: disable=g-import-not-at-top
  check_paths(model_dir, out, overwrite)
  m = workdir_lib.load_model(model_dir)
  check_precision(model_dir, m.precision, precision)
  before = workdir_lib.disk_size(model_dir)
  extra = dict(m.meta.get('extra') or {})
  extra['converted_from'] = dict(model=os.path.abspath(model_dir),
                                 precision=m.precision)
  with console.phase(f'writing {out} ({precision})'):
    saved_model.save(out, m.params, m.featurizer, m.label_map,
                     config=m.config, extra=extra, loss=m.loss,
                     precision=precision, int8_scale=int8_scale)
  return dict(source_precision=m.precision, precision=precision,
              bytes_before=before, bytes_after=workdir_lib.disk_size(out))


def main(argv):
  console.short_log_format()
  with config_check.runner_main(argv, model=FLAGS.model, out=FLAGS.out):
    done = convert(FLAGS.model, FLAGS.out, FLAGS.precision, FLAGS.int8_scale,
                   FLAGS.overwrite)
    print(f'wrote {FLAGS.out}: {done["precision"]}, '
          f'{workdir_lib.format_bytes(done["bytes_after"])} (from '
          f'{done["source_precision"]}, '
          f'{workdir_lib.format_bytes(done["bytes_before"])})')


def command() -> None:
  """``linjax convert``: parses the flags and runs `main`."""
  app.run(main, flags_parser=train_runner.parse_flags)


if __name__ == '__main__':
  command()
