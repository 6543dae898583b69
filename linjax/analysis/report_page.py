"""report.html: one self-contained page from a report payload.

Host, standard library only. `render(payload)` returns the page: its data
(the JSON of linjax/analysis/report_data.py), CSS and script
(linjax/analysis/report_script.py) inline, no external resource, so it
opens from ``file://`` and makes no request. Documents are untrusted text:
the data sits in a ``<script type="application/json">`` element with
``<``, ``>``, ``&``, U+2028 and U+2029 escaped (so no text can close the
element), and the script builds the page with ``textContent`` and
``createElement``, never ``innerHTML``. A Content-Security-Policy allows
only this page's own script and style (by hash) and, for the what-if page
served by `linjax explore`, requests to its own origin.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from typing import Any

from linjax.analysis import report_script

CSS = """
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #f6f8fa;
  --accent: #0969da; --pos: 22, 140, 60; --neg: 207, 34, 46; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI",
  Roboto, sans-serif; color: var(--fg); background: #fff; }
header { padding: 14px 24px; border-bottom: 1px solid var(--line);
  background: var(--bg); }
header h1 { margin: 0; font-size: 20px; }
header .sub { color: var(--muted); overflow-wrap: anywhere; }
nav { position: sticky; top: 0; z-index: 2; background: #fff;
  border-bottom: 1px solid var(--line); padding: 6px 24px; }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; }
main { padding: 0 24px 48px; max-width: 1400px; }
section { margin-top: 24px; }
h2 { font-size: 17px; border-bottom: 1px solid var(--line);
  padding-bottom: 4px; }
.note { color: var(--muted); font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px;
  min-width: 130px; background: #fff; }
.card .v { font-size: 20px; font-weight: 600; }
.card .k { color: var(--muted); font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; margin-top: 12px; }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 8px;
  text-align: left; vertical-align: top; }
th { background: var(--bg); position: sticky; top: 33px; }
.scroll th { top: 0; }
th.sortable { cursor: pointer; user-select: none; }
th.sortable:hover { color: var(--accent); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.clickable { cursor: pointer; }
tr.clickable:hover td { background: #eef4ff; }
.scroll { overflow: auto; max-height: 560px; max-width: 100%;
  display: inline-block; border: 1px solid var(--line); }
.confusion td { padding: 0; border: 1px solid #fff; }
.confusion th { position: static; font-weight: normal; white-space: nowrap; }
.confusion th.col { writing-mode: vertical-rl; transform: rotate(180deg);
  max-height: 140px; overflow: hidden; text-overflow: ellipsis; }
.confusion button { width: 100%; min-width: 34px; height: 28px; border: 0;
  cursor: pointer; font: inherit; font-variant-numeric: tabular-nums;
  background: transparent; }
.confusion button:hover { outline: 2px solid var(--accent); }
.confusion button.active { outline: 3px solid var(--fg); }
.controls { display: flex; flex-wrap: wrap; gap: 12px; align-items: center;
  margin: 8px 0; }
.controls input[type=search] { width: 240px; }
.docs td.text { max-width: 760px; white-space: pre-wrap;
  overflow-wrap: anywhere; }
.docs td.label { white-space: nowrap; max-width: 220px; overflow: hidden;
  text-overflow: ellipsis; }
.wrong { color: rgb(var(--neg)); font-weight: 600; }
.explains { color: var(--muted); font-size: 12px; display: block; }
.tok { border-radius: 3px; }
.doctext { display: block; max-height: 12em; overflow: auto; }
.templates { display: grid; gap: 12px;
  grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); }
.template { border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
.template h3 { margin: 0 0 6px; font-size: 15px; overflow-wrap: anywhere; }
.feats { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
.feat { display: flex; gap: 6px; align-items: baseline; font-size: 13px; }
.feat .w { font-variant-numeric: tabular-nums; min-width: 52px;
  text-align: right; }
.feat .n { overflow-wrap: anywhere; }
.feat .alt { color: var(--muted); }
.badge { font-size: 11px; border-radius: 8px; padding: 0 5px;
  background: #fff1c2; color: #7d4e00; white-space: nowrap; }
.bar { display: inline-block; height: 8px; border-radius: 2px; }
button.more { margin: 8px 0; }
#whatif textarea { width: 100%; min-height: 90px; font: inherit;
  padding: 6px; }
#whatif .prediction { font-size: 18px; margin: 8px 0; }
#whatif .probs { display: grid; grid-template-columns: max-content 240px
  max-content; gap: 2px 8px; align-items: center; margin: 8px 0; }
#whatif .output { border: 1px solid var(--line); border-radius: 6px;
  padding: 8px; white-space: pre-wrap; overflow-wrap: anywhere;
  min-height: 2em; }
.hidden { display: none; }
"""

_BODY = """<header><h1 id="title">linjax report</h1>
<div class="sub" id="subtitle"></div></header>
<nav id="nav"></nav>
<main>
<noscript><p>This report draws itself with JavaScript; enable it to see
the tables and documents.</p></noscript>
<section id="whatif" class="hidden"></section>
<section id="summary"></section>
<section id="classes"></section>
<section id="confusion"></section>
<section id="documents"></section>
<section id="templates"></section>
<section id="calibration"></section>
</main>
"""

# Characters that must not appear raw inside the JSON's <script> element:
# `<` and `>` (no `</script>` or `<!--`), `&`, and the two line separators
# that older JavaScript parsers treat as line ends.
_ESCAPES = tuple((c, f'\\u{ord(c):04x}') for c in '<>&\u2028\u2029')
_SURROGATE = re.compile('[\ud800-\udfff]')


def _escape_char(match: re.Match) -> str:
  return f'\\u{ord(match.group()):04x}'


def _finite(value: Any) -> Any:
  """``value`` with every NaN or infinity replaced by None (JSON has none)."""
  if isinstance(value, float):
    return value if math.isfinite(value) else None
  if isinstance(value, dict):
    return {k: _finite(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_finite(v) for v in value]
  return value


def script_json(payload: Any) -> str:
  """``payload`` as JSON that is safe inside a ``<script>`` element.

  Inside JSON strings, ``<``, ``>``, ``&``, U+2028, U+2029 and lone
  surrogates become ``\\uXXXX`` escapes: ``JSON.parse`` reads back the same
  text, and no document can end the element or start markup.
  """
  try:
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False,
                      separators=(',', ':'))
  except ValueError:   # a NaN or infinity somewhere: null in JSON
    text = json.dumps(_finite(payload), ensure_ascii=False,
                      separators=(',', ':'))
  for char, escape in _ESCAPES:   # str.replace: a C loop each
    text = text.replace(char, escape)
  try:
    text.encode('utf-8')
  except UnicodeEncodeError:   # lone surrogates (rare): escape them too
    text = _SURROGATE.sub(_escape_char, text)
  return text


def _hash(source: str) -> str:
  digest = hashlib.sha256(source.encode('utf-8')).digest()
  return "'sha256-" + base64.b64encode(digest).decode('ascii') + "'"


def render(payload: dict, whatif: dict | None = None,
           title: str = 'linjax report') -> str:
  """The whole page.

  Args:
    payload: `report_data.build_payload`'s dict (or a smaller one for the
      what-if page: missing sections are not drawn).
    whatif: None for a static report; for `linjax explore`, a dict with at
      least ``endpoint`` (the URL path of the explain request) and
      ``max_chars`` (the longest text it accepts).
    title: the page's title.

  Returns:
    The HTML text (UTF-8 when written).
  """
  data = dict(payload)
  if whatif is not None:
    data['whatif'] = whatif
  script = report_script.SCRIPT
  connect = "'self'" if whatif is not None else "'none'"
  policy = (f"default-src 'none'; script-src {_hash(script)}; "
            f"style-src {_hash(CSS)}; img-src data:; connect-src {connect}; "
            "base-uri 'none'; form-action 'none'")
  return ''.join([
      '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
      f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n',
      '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
      f'<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n',
      '</head>\n<body>\n', _BODY,
      '<script type="application/json" id="report-data">',
      script_json(data), '</script>\n<script>', script,
      '</script>\n</body>\n</html>\n'])
