"""PNG plots of runs, evaluations and landscapes (matplotlib, Agg, headless).

matplotlib is imported inside each function, so ``import linjax`` stays fast
and a machine without a display (or without matplotlib, until a plot is
asked for) works. Figures are drawn on an explicit Agg canvas, never through
pyplot's global state. Every function writes one PNG and returns its path.
"""

from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np


def _figure(width: float = 6.0, height: float = 4.0):
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(width, height), dpi=100)
  FigureCanvasAgg(fig)
  return fig


def _save(fig, path) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, format='png')
  return path


def training_curves(history: Sequence[dict], path) -> pathlib.Path:
  """Loss (train, val) and validation accuracy per epoch.

  Args:
    history: one dict per epoch with ``epoch``, ``train_loss`` and optionally
      ``val_loss``, ``val_accuracy`` (None where absent).
    path: the PNG to write.
  """
  fig = _figure(9, 3.5)
  ax_loss, ax_acc = fig.subplots(1, 2)
  epochs = [h['epoch'] for h in history]
  for key, label in (('train_loss', 'train'), ('val_loss', 'validation')):
    values = [h.get(key) for h in history]
    if any(v is not None for v in values):
      ax_loss.plot(epochs, [np.nan if v is None else v for v in values],
                   marker='o', label=label)
  ax_loss.set_xlabel('epoch')
  ax_loss.set_ylabel('loss')
  ax_loss.legend()
  acc = [h.get('val_accuracy') for h in history]
  if any(v is not None for v in acc):
    ax_acc.plot(epochs, [np.nan if v is None else v for v in acc],
                marker='o', color='tab:green')
  ax_acc.set_xlabel('epoch')
  ax_acc.set_ylabel('validation accuracy')
  return _save(fig, path)


def confusion_matrix(cm, label_names: Sequence[str], path,
                     normalize: bool = True) -> pathlib.Path:
  """Heat map of a [C, C] confusion matrix (rows true, columns predicted).

  Args:
    cm: int [C, C] counts.
    label_names: C names.
    path: the PNG to write.
    normalize: colour by the fraction of each true class (row), annotate
      with counts.
  """
  cm = np.asarray(cm)
  c = cm.shape[0]
  size = min(14.0, 2.5 + 0.45 * c)
  fig = _figure(size + 1, size)
  ax = fig.subplots()
  rows = cm.sum(axis=1, keepdims=True)
  shown = cm / np.maximum(rows, 1) if normalize else cm
  image = ax.imshow(shown, cmap='Blues', vmin=0)
  fig.colorbar(image, ax=ax, fraction=0.046)
  ax.set_xticks(range(c))
  ax.set_yticks(range(c))
  ax.set_xticklabels(label_names, rotation=60, ha='right', fontsize=8)
  ax.set_yticklabels(label_names, fontsize=8)
  ax.set_xlabel('predicted')
  ax.set_ylabel('true')
  if c <= 30:
    top = shown.max() if shown.size else 0
    for i in range(c):
      for j in range(c):
        ax.text(j, i, str(cm[i, j]), ha='center', va='center', fontsize=7,
                color='white' if shown[i, j] > top / 2 else 'black')
  return _save(fig, path)


def landscape_1d(alphas, values, path, label: str = 'objective',
                 xlabel: str = 'step along the direction') -> pathlib.Path:
  """Line plot of 1-D slices against alphas [A].

  Args:
    alphas: float [A].
    values: float [A], or {name: float [A]} for several directions.
    path: the PNG to write.
    label: y axis label.
    xlabel: x axis label.
  """
  fig = _figure()
  ax = fig.subplots()
  lines = values if isinstance(values, dict) else {None: values}
  for name, v in lines.items():
    ax.plot(np.asarray(alphas), np.asarray(v), marker='.', label=name)
  if isinstance(values, dict):
    ax.legend(fontsize=8)
  ax.axvline(0.0, color='gray', lw=0.5)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(label)
  return _save(fig, path)


def landscape_2d(alphas, betas, grid, path, paths: dict | None = None,
                 label: str = 'objective',
                 axis_labels: tuple = ('alpha', 'beta')) -> pathlib.Path:
  """Contour plot of grid [A, B] over alphas [A] (x) and betas [B] (y).

  Args:
    alphas: float [A].
    betas: float [B].
    grid: float [A, B] values.
    path: the PNG to write.
    paths: optional {name: points [T, 2]} trajectories drawn on top (the
      lecture's random search and gradient descent).
    label: colour bar label.
    axis_labels: (x, y) axis labels.
  """
  fig = _figure(6, 5)
  ax = fig.subplots()
  grid = np.asarray(grid)
  finite = grid[np.isfinite(grid)]
  levels = (np.linspace(finite.min(), finite.max(), 25)
            if finite.size and finite.max() > finite.min() else 10)
  contour = ax.contourf(np.asarray(alphas), np.asarray(betas), grid.T,
                        levels=levels, cmap='viridis')
  fig.colorbar(contour, ax=ax, label=label)
  for name, pts in (paths or {}).items():
    pts = np.asarray(pts)
    style = dict(marker='.', lw=1) if 'gradient' in name else dict(
        marker='x', lw=0)
    ax.plot(pts[:, 0], pts[:, 1], label=name, **style)
  if paths:
    ax.legend(loc='upper right', fontsize=8)
  ax.plot([0], [0], marker='*', color='red', ms=10)
  ax.set_xlabel(axis_labels[0])
  ax.set_ylabel(axis_labels[1])
  return _save(fig, path)


def search_curves(traces: dict, path) -> pathlib.Path:
  """Best loss so far against loss evaluations, one line per method.

  Args:
    traces: {name: best-loss array [T]}.
    path: the PNG to write.
  """
  fig = _figure()
  ax = fig.subplots()
  for name, best in traces.items():
    best = np.asarray(best)
    ax.plot(np.arange(1, best.shape[0] + 1), best, label=name)
  ax.set_yscale('log')
  ax.set_xlabel('loss evaluations')
  ax.set_ylabel('lowest loss so far')
  ax.legend()
  return _save(fig, path)


def templates(top: Sequence[dict], path, max_classes: int = 12
              ) -> pathlib.Path:
  """Bar charts of the largest template weights of each class.

  Args:
    top: per class, a dict with ``label`` and ``features``: a list of
      (name, weight) pairs (as `linjax.interpret.top_features` returns).
    path: the PNG to write.
    max_classes: at most this many panels.
  """
  top = list(top)[:max_classes]
  cols = min(3, max(1, len(top)))
  rows = -(-len(top) // cols) if top else 1
  k = max([len(t['features']) for t in top] + [1])
  fig = _figure(4.2 * cols, 0.3 * k * rows + 1.2 * rows)
  axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
  for ax, entry in zip(axes, top):
    names = [_shorten(n) for n, _ in entry['features']][::-1]
    weights = [w for _, w in entry['features']][::-1]
    ax.barh(range(len(names)), weights,
            color=['tab:blue' if w >= 0 else 'tab:red' for w in weights])
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=7)
    ax.set_title(str(entry['label']), fontsize=9)
  for ax in axes[len(top):]:
    ax.axis('off')
  return _save(fig, path)


def _shorten(name: str, width: int = 28) -> str:
  return name if len(name) <= width else name[:width - 1] + '\u2026'
