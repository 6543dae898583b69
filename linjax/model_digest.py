"""The integrity digest that seals a saved model's manifest (model.json).

Each manifest entry but ``digest`` (and each entry of a nested object, to
depth 3: ``featurizer.settings.ngrams``) is hashed as canonical JSON,
``json.dumps(v, sort_keys=True, separators=(',', ':'), ensure_ascii=False)``
in UTF-8; ``sections`` maps the dotted paths to those SHA-256s and ``value``
is the SHA-256 of the canonical JSON of ``sections``: the record is
``{"algorithm": "sha256", "sections": {...}, "value": "..."}``. The manifest
holds the SHA-256 of every array file, so the digest seals those too.

`verify` recomputes it and raises `ModelFileError` with one line naming the
file and what changed ("labels differ from those the model was saved
with"). This protects against corruption, truncation and accidental edits,
not against a forger, who can recompute the hashes: for that, set
``LINJAX_MODEL_KEY`` (any secret string) when saving and loading, and
``value`` becomes an HMAC-SHA256 keyed with it (algorithm "hmac-sha256"); a
model saved with the key does not load without it, and with the key set an
unkeyed (or differently keyed) model is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pathlib

KEY_ENV = 'LINJAX_MODEL_KEY'
DEPTH = 3  # nested entries hashed one by one, to name what changed.


class ModelFileError(ValueError):
  """A saved model is missing, truncated, altered or of an unknown format."""


def canonical(value) -> bytes:
  """The canonical JSON bytes of ``value`` that the digest hashes."""
  return json.dumps(value, sort_keys=True, separators=(',', ':'),
                    ensure_ascii=False).encode('utf-8')


def sections(manifest: dict) -> dict[str, str]:
  """SHA-256 of every entry but the digest, and of nested entries to depth 3,
  keyed by dotted path (``featurizer.settings.ngrams``)."""
  out = {}

  def visit(path: str, value, depth: int) -> None:
    out[path] = hashlib.sha256(canonical(value)).hexdigest()
    if isinstance(value, dict) and depth < DEPTH:
      for key, child in value.items():
        visit(f'{path}.{key}', child, depth + 1)

  for key, value in manifest.items():
    if key != 'digest':
      visit(key, value, 1)
  return out


def model_key() -> bytes | None:
  """The signing key from ``LINJAX_MODEL_KEY``, or None."""
  key = os.environ.get(KEY_ENV)
  return key.encode('utf-8') if key else None


def _seal(parts: dict, key: bytes | None) -> str:
  data = canonical(parts)
  if key is None:
    return hashlib.sha256(data).hexdigest()
  return hmac.new(key, data, hashlib.sha256).hexdigest()


def digest(manifest: dict) -> dict:
  """The digest record of a manifest (its JSON round trip, as load sees it)."""
  key = model_key()
  parts = sections(json.loads(json.dumps(manifest, ensure_ascii=False)))
  return dict(algorithm='sha256' if key is None else 'hmac-sha256',
              sections=parts, value=_seal(parts, key))


def changes(saved: dict, now: dict) -> str:
  """'labels differ ...; featurizer.settings.ngrams differs ...' or ''."""
  removed = sorted(saved.keys() - now.keys())
  added = sorted(now.keys() - saved.keys())
  changed = [p for p in sorted(saved.keys() & now.keys()) if saved[p] != now[p]]
  # Name the deepest paths: a parent changes whenever a child does.
  every = removed + added + changed
  changed = [p for p in changed
             if not any(q.startswith(p + '.') for q in every)]
  removed = [p for p in removed if p.rpartition('.')[0] not in removed]
  added = [p for p in added if p.rpartition('.')[0] not in added]
  what = ([f'{p} was removed' for p in removed] +
          [f'{p} was added' for p in added] +
          ['labels differ from those the model was saved with (edited, '
           'reordered or swapped)' if p == 'labels' else
           f'{p} differs from what the model was saved with' for p in changed])
  more = f' (and {len(what) - 3} more)' if len(what) > 3 else ''
  return '; '.join(what[:3]) + more


def verify(file: pathlib.Path, manifest: dict) -> None:
  """Raises `ModelFileError` naming ``file`` unless the digest holds."""
  record = manifest['digest']
  if (not isinstance(record, dict) or
      not isinstance(record.get('sections'), dict) or
      not isinstance(record.get('value'), str)):
    raise ModelFileError(f'{file}: malformed integrity digest record')
  algorithm, key = record.get('algorithm'), model_key()
  if algorithm not in ('sha256', 'hmac-sha256'):
    raise ModelFileError(f'{file}: unknown digest algorithm {algorithm!r}')
  if algorithm == 'hmac-sha256' and key is None:
    raise ModelFileError(f'{file}: the model is signed (hmac-sha256); set '
                         f'{KEY_ENV} to the key it was saved with')
  if algorithm == 'sha256' and key is not None:
    raise ModelFileError(f'{file}: {KEY_ENV} is set but the model is not '
                         'signed; unset it to load an unsigned model, or '
                         're-save the model with the key set')
  what = changes(record['sections'], sections(manifest))
  if what:
    raise ModelFileError(f'{file}: {what}; it was edited or corrupted after '
                         'saving: restore or retrain the model')
  if not hmac.compare_digest(record['value'], _seal(record['sections'], key)):
    raise ModelFileError(
        f'{file}: ' + (f'signature mismatch: another {KEY_ENV}, or the model '
                       'was altered' if key is not None else
                       'the digest does not match its own record (the digest '
                       'was edited)'))
