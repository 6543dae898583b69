"""The runner's last lines and its phase timeline (in-process)."""

import subprocess
import sys
import time

from linjax.cli import finish_run
from linjax.cli import run_timeline


def test_summary_bounds_the_classes(capsys):
  top = [dict(label=f'class{c}', features=[(f'word{c}', 1.0 + c)])
         for c in range(12)]
  results = dict(test_accuracy=0.5, test_macro_f1=0.4, val_accuracy=0.6,
                 epochs_run=2, train_seconds=0.1, featurize_seconds=0.2,
                 model_bytes=2048)
  finish_run.print_summary(results, top, '/w', '/w/model', 0, None)
  out = capsys.readouterr().out.splitlines()
  shown = [line for line in out if line.startswith('  class')]
  assert shown == [f'  class{c}: word{c} (+{1.0 + c:.2f})'
                   for c in range(finish_run.SUMMARY_CLASSES)]
  assert '  ... and 2 more classes (all in /w/results.json, top_features)' in (
      out)
  assert out[-1] == 'PNG plots on demand: linjax plots --workdir=/w'
  assert '(2 epochs, train 0.10 s' in out[0]


def test_summary_names_the_refit_and_the_plots(capsys):
  results = dict(test_accuracy=0.5, test_macro_f1=0.4, val_accuracy=0.6,
                 epochs_run=3, train_seconds=0.1, featurize_seconds=0.2,
                 model_bytes=2048, refit=dict(epochs=2),
                 plots=['/w/curves.png', '/w/templates.png'])
  finish_run.print_summary(results, [], '/w', '/w/model', 0, None)
  out = capsys.readouterr().out.splitlines()
  assert '(3 epochs + a refit of 2 on train + validation, train' in out[0]
  assert out[-1] == 'plots: /w/curves.png, /w/templates.png'


def test_timeline_counts_from_the_process_start():
  # A child that sleeps 0.3 s before importing the module: its first
  # reading must include the sleep (the kernel's start time, 10 ms ticks).
  code = ('import time; time.sleep(0.3); '
          'from linjax.cli import run_timeline as r; print(r.now())')
  age = float(subprocess.run([sys.executable, '-c', code], check=True,
                             capture_output=True, text=True).stdout)
  assert age >= 0.3


def test_timeline_phases_in_start_order():
  timeline = run_timeline.Timeline()
  with timeline.phase('a'):
    time.sleep(0.01)
  timeline.add('background', 0.0, 0.5)
  with timeline.phase('b'):
    pass
  got = timeline.as_json()
  assert [p['phase'] for p in got] == ['background', 'a', 'b']
  a = got[1]
  assert a['end_s'] - a['start_s'] >= 0.01 - 1e-3
  assert timeline.seconds('a') >= 0.01 - 1e-3
  assert timeline.seconds('missing') == 0.0
