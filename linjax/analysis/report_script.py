"""The script of report.html (linjax/analysis/report_page.py embeds it).

Plain JavaScript, no framework, no network (the what-if page alone asks its
own server). It reads the payload from ``#report-data`` and builds every
element with ``createElement`` and ``textContent``: no text of a document
is ever parsed as HTML. Stable hooks for tests: ``data-testid`` =
``confusion-cell`` (``data-true``, ``data-pred``, ``data-count``),
``doc-row`` (``data-true``, ``data-pred``), ``token``
(``data-contribution``), ``whatif-input``, ``whatif-label``.

One string, one page's script (over the ~400-line module guideline for
that reason): helpers and SVG charts, then one function per section of the
page (summary, classes, confusion, documents, templates, calibration,
what-if), in the order they are drawn.
"""

SCRIPT = r"""'use strict';
(function () {
const D = JSON.parse(document.getElementById('report-data').textContent);
const L = D.labels || [];
const MULTI = D.kind === 'multi';
const PROBS = D.probabilities !== false;   // false: a margin loss's scores
const SVGNS = 'http://www.w3.org/2000/svg';

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  setAttrs(e, attrs);
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}
function setAttrs(e, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = String(v);
    else if (k === 'class') e.setAttribute('class', v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
}
function fmt(v, d) {
  if (v === null || v === undefined || Number.isNaN(v)) return 'n/a';
  return Number(v).toFixed(d === undefined ? 4 : d);
}
function labelOf(x) {
  if (Array.isArray(x)) return x.length ? x.map(j => L[j]).join(', ') : '(none)';
  return L[x];
}
function attrOf(x) {
  return Array.isArray(x) ? x.map(j => L[j]).join(',') : L[x];
}
function section(id, title, note) {
  const s = document.getElementById(id);
  s.replaceChildren(el('h2', {text: title}));
  if (note) s.append(el('p', {class: 'note', text: note}));
  return s;
}

// Header and navigation. ------------------------------------------------------
function header() {
  const info = D.info || {};
  const corpus = info.corpus || '';
  document.getElementById('title').textContent =
      'linjax report' + (corpus ? ': ' + corpus.split('/').pop() : '');
  const bits = [];
  if (corpus) bits.push('data ' + corpus);
  if (info.test) bits.push('test ' + info.test);
  if (info.model) bits.push('model ' + info.model);
  if (info.workdir) bits.push('run ' + info.workdir);
  if (info.created) bits.push('written ' + info.created);
  document.getElementById('subtitle').textContent = bits.join('  ·  ');
}
function nav(ids) {
  const n = document.getElementById('nav');
  const names = {whatif: 'What-if', summary: 'Summary', classes: MULTI ?
    'Labels' : 'Classes', confusion: 'Confusion', documents: 'Documents',
    templates: 'Templates', calibration: 'Calibration'};
  for (const id of ids) n.append(el('a', {href: '#' + id, text: names[id]}));
}

// Charts (inline SVG). --------------------------------------------------------
const COLORS = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bc4c00'];
function niceStep(lo, hi, n) {
  const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 5, 10].map(f => f * mag).find(s => s >= raw) || raw;
}
function niceTicks(lo, hi, n) {
  const step = niceStep(lo, hi, n), out = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) out.push(k * step);
  return out;
}
function lineChart(title, xs, series, opts) {
  opts = opts || {};
  const W = 420, H = 240, m = {l: 46, r: 12, t: 36, b: 34};
  const vals = [];
  for (const s of series) for (const v of s.values) if (v !== null && v !== undefined) vals.push(v);
  if (opts.yMin !== undefined) vals.push(opts.yMin);
  if (opts.yMax !== undefined) vals.push(opts.yMax);
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
  const step = niceStep(lo, hi, 5);
  lo = Math.floor(lo / step + 1e-9) * step; hi = Math.ceil(hi / step - 1e-9) * step;
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const sx = v => m.l + (x1 > x0 ? (v - x0) / (x1 - x0) : 0.5) * (W - m.l - m.r);
  const sy = v => H - m.b - (v - lo) / (hi - lo) * (H - m.t - m.b);
  const g = svg('svg', {width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img'});
  g.append(svg('title', {text: title}));
  g.append(svg('text', {x: m.l, y: 14, text: title, 'font-weight': 'bold'}));
  for (const v of niceTicks(lo, hi, 5)) {
    const y = sy(v);
    g.append(svg('line', {x1: m.l, x2: W - m.r, y1: y, y2: y, stroke: '#eaeef2'}));
    g.append(svg('text', {x: m.l - 4, y: y + 4, 'text-anchor': 'end', text: +v.toPrecision(4)}));
  }
  const ticks = xs.length <= 12 ? xs : xs.filter((_, i) => i % Math.ceil(xs.length / 10) === 0);
  for (const x of ticks)
    g.append(svg('text', {x: sx(x), y: H - m.b + 14, 'text-anchor': 'middle', text: +(+x).toPrecision(3)}));
  g.append(svg('text', {x: (W + m.l) / 2, y: H - 4, 'text-anchor': 'middle', text: opts.xLabel || ''}));
  if (opts.vline !== undefined && opts.vline !== null)
    g.append(svg('line', {x1: sx(opts.vline), x2: sx(opts.vline), y1: m.t, y2: H - m.b,
                          stroke: '#656d76', 'stroke-dasharray': '4 3'}));
  series.forEach((s, k) => {
    const color = s.color || COLORS[k % COLORS.length];
    let d = '';
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      d += (d ? 'L' : 'M') + sx(xs[i]).toFixed(1) + ',' + sy(v).toFixed(1);
      g.append(svg('circle', {cx: sx(xs[i]), cy: sy(v), r: 2.5, fill: color},
                   svg('title', {text: `${s.name} ${fmt(v)} at ${xs[i]}`})));
    });
    g.append(svg('path', {d, fill: 'none', stroke: color, 'stroke-width': 2}));
    const lx = m.l + k * 130;
    g.append(svg('rect', {x: lx, y: 23, width: 10, height: 3, fill: color}));
    g.append(svg('text', {x: lx + 14, y: 28, text: s.name}));
  });
  return g;
}
function reliabilityChart(cal, title) {
  const W = 360, H = 300, m = {l: 46, r: 12, t: 24, b: 36};
  const sx = v => m.l + v * (W - m.l - m.r), sy = v => H - m.b - v * (H - m.t - m.b);
  const g = svg('svg', {width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img'});
  g.append(svg('title', {text: title}));
  g.append(svg('text', {x: m.l, y: 14, text: title, 'font-weight': 'bold'}));
  for (let i = 0; i <= 4; i++) {
    const v = i / 4;
    g.append(svg('line', {x1: m.l, x2: W - m.r, y1: sy(v), y2: sy(v), stroke: '#eaeef2'}));
    g.append(svg('text', {x: m.l - 4, y: sy(v) + 4, 'text-anchor': 'end', text: v}));
    g.append(svg('text', {x: sx(v), y: H - m.b + 14, 'text-anchor': 'middle', text: v}));
  }
  g.append(svg('text', {x: (W + m.l) / 2, y: H - 4, 'text-anchor': 'middle',
                        text: MULTI ? 'predicted probability' : 'confidence (top class)'}));
  const total = cal.count.reduce((a, b) => a + b, 0) || 1;
  cal.count.forEach((n, b) => {
    if (!n) return;
    const x = sx(cal.lower[b]), w = sx(cal.upper[b]) - x - 1, y = sy(cal.accuracy[b]);
    g.append(svg('rect', {x, y, width: w, height: sy(0) - y, fill: '#0969da',
                          'fill-opacity': 0.25 + 0.75 * Math.sqrt(n / total)},
      svg('title', {text: `${fmt(cal.lower[b], 2)}-${fmt(cal.upper[b], 2)}: ${n} predictions, ` +
                          `${MULTI ? 'positive' : 'accuracy'} ${fmt(cal.accuracy[b])}, ` +
                          `mean confidence ${fmt(cal.confidence[b])}`})));
    g.append(svg('circle', {cx: x + w / 2, cy: sy(cal.confidence[b]), r: 2.5, fill: '#cf222e'}));
  });
  g.append(svg('line', {x1: sx(0), y1: sy(0), x2: sx(1), y2: sy(1), stroke: '#656d76',
                        'stroke-dasharray': '4 3'}));
  return g;
}

// Summary. --------------------------------------------------------------------
function summary() {
  const s = section('summary', 'Summary');
  const M = D.metrics || {}, info = D.info || {};
  const cards = el('div', {class: 'cards'});
  const card = (k, v) => cards.append(el('div', {class: 'card'},
      el('div', {class: 'v', text: v}), el('div', {class: 'k', text: k})));
  card('test documents', String(D.docs_total));
  card(MULTI ? 'labels' : 'classes', String(L.length));
  if (MULTI) {
    card('micro-F1', fmt(M.micro_f1)); card('macro-F1', fmt(M.macro_f1));
    card('P@1', fmt(M.p_at_1)); card('P@5', fmt(M.p_at_5));
    card('threshold', fmt(M.threshold, 2)); card('ECE (per label)', fmt(M.ece));
  } else {
    card('accuracy', fmt(M.accuracy)); card('macro-F1', fmt(M.macro_f1));
    if (PROBS) { card('log loss', fmt(M.log_loss)); card('ECE', fmt(M.ece)); }
  }
  card('misclassified', `${D.errors_total} (${D.errors_embedded} shown)`);
  s.append(cards);
  if (!PROBS)
    s.append(el('p', {class: 'note', text: 'This model\u2019s loss gives scores, not probabilities: ' +
        'documents are ranked by the margin of their best score over the runner-up, their loss is the ' +
        'multiclass hinge loss, and there is no calibration.'}));
  const counts = ['num_train', 'num_val', 'num_test'].filter(k => info[k] !== undefined);
  if (counts.length)
    s.append(el('p', {class: 'note', text: counts.map(k => `${info[k]} ${k.slice(4)}`).join(', ') +
                      ' documents' + (info.train_seconds !== undefined ?
                      `; trained in ${fmt(info.train_seconds, 2)} s` : '')}));
  const H = D.history || [];
  if (H.length) {
    const xs = H.map(h => h.epoch);
    const charts = el('div', {class: 'charts'});
    const loss = [{name: 'train loss', values: H.map(h => h.train_loss)}];
    if (H.some(h => h.val_loss !== undefined))
      loss.push({name: 'validation loss', values: H.map(h => h.val_loss)});
    charts.append(lineChart('loss per epoch', xs, loss, {xLabel: 'epoch'}));
    if (H.some(h => h.val_accuracy !== undefined))
      charts.append(lineChart(MULTI ? 'validation P@1 per epoch' : 'validation accuracy per epoch',
          xs, [{name: MULTI ? 'val P@1' : 'val accuracy', values: H.map(h => h.val_accuracy),
                color: COLORS[2]}], {xLabel: 'epoch'}));
    s.append(charts);
  }
  const keys = Object.keys(D.settings || {});
  if (keys.length) {
    const body = el('tbody');
    for (const k of keys) body.append(el('tr', null, el('td', {text: k}),
                                         el('td', {text: JSON.stringify(D.settings[k])})));
    s.append(el('details', null, el('summary', {text: `run settings (${keys.length})`}),
                el('table', null, body)));
  }
}

// Sortable tables. ------------------------------------------------------------
function sortableTable(columns, rows, onRow) {
  // columns: [{key, name, num, fmt}]; rows: objects.
  const table = el('table');
  const head = el('tr'), body = el('tbody');
  let sortKey = null, dir = 1;
  function draw() {
    const sorted = rows.slice();
    if (sortKey !== null) sorted.sort((a, b) => {
      const x = a[sortKey], y = b[sortKey];
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
    body.replaceChildren();
    for (const r of sorted) {
      const tr = el('tr', {class: onRow ? 'clickable' : null, onclick: onRow ? () => onRow(r) : null});
      for (const c of columns)
        tr.append(el('td', {class: c.num ? 'num' : null, text: c.fmt ? c.fmt(r[c.key]) : r[c.key]}));
      body.append(tr);
    }
  }
  for (const c of columns) {
    const th = el('th', {class: 'sortable' + (c.num ? ' num' : ''), text: c.name,
                         title: 'sort by ' + c.name});
    th.addEventListener('click', () => {
      dir = sortKey === c.key ? -dir : (c.num ? -1 : 1);
      sortKey = c.key; draw();
    });
    head.append(th);
  }
  table.append(el('thead', null, head), body);
  draw();
  return table;
}

function classes() {
  const rows = (D.per_class || []).map((r, c) => Object.assign({c}, r));
  const s = section('classes', MULTI ? 'Labels' : 'Classes',
      'Click a column to sort, a row to list its documents.' +
      (D.absent_classes && D.absent_classes.length ?
       ` Classes without test documents (left out of macro averages): ${D.absent_classes.join(', ')}.` : ''));
  const cols = [{key: 'label', name: MULTI ? 'label' : 'class'},
                {key: 'precision', name: 'precision', num: true, fmt: fmt},
                {key: 'recall', name: 'recall', num: true, fmt: fmt},
                {key: 'f1', name: 'F1', num: true, fmt: fmt},
                {key: 'support', name: 'support', num: true}];
  if (MULTI) cols.push({key: 'predicted', name: 'predicted', num: true});
  s.append(el('div', {class: 'scroll'}, sortableTable(cols, rows, r => {
    showDocuments({trueC: r.c, predC: -1, wrongOnly: false});
  })));
}

// Confusion matrix. -----------------------------------------------------------
function confusion() {
  const C = D.confusion;
  const s = section('confusion', 'Confusion matrix',
      'Rows: true class; columns: predicted. Click a cell to list its documents' +
      (D.errors_embedded < D.errors_total ? ` (the report embeds ${D.errors_embedded} of the ` +
       `${D.errors_total} misclassified documents; a cell lists those embedded).` : '.'));
  const table = el('table', {class: 'confusion'});
  const head = el('tr', null, el('th', {text: 'true \\ predicted'}));
  L.forEach(name => head.append(el('th', {class: 'col', text: name, title: name})));
  table.append(el('thead', null, head));
  const body = el('tbody');
  C.forEach((row, t) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    const tr = el('tr', null, el('th', {text: L[t], title: L[t]}));
    row.forEach((n, p) => {
      const b = el('button', {'data-testid': 'confusion-cell', 'data-true': L[t],
          'data-pred': L[p], 'data-count': n, text: n,
          title: `${n} documents of ${L[t]} predicted as ${L[p]}`});
      const a = n / total;
      b.style.backgroundColor = n === 0 ? '#fff' : t === p ?
          `rgba(9, 105, 218, ${0.08 + 0.8 * a})` : `rgba(207, 34, 46, ${0.1 + 0.85 * Math.sqrt(a)})`;
      if (n && a > 0.55) b.style.color = '#fff';
      b.addEventListener('click', () => {
        for (const x of table.querySelectorAll('button.active')) x.classList.remove('active');
        b.classList.add('active');
        showDocuments({trueC: t, predC: p, wrongOnly: false});
      });
      tr.append(el('td', null, b));
    });
    body.append(tr);
  });
  table.append(body);
  s.append(el('div', {class: 'scroll'}, table));
}

// Highlighted text. -----------------------------------------------------------
function decodeSpans(encoded) {
  // 'gap,length,value,...' (UTF-16 code units) -> [start, end, value, ...].
  const spans = encoded ? encoded.split(',').map(Number) : [];
  let end = 0;
  for (let i = 0; i + 2 < spans.length; i += 3) {
    spans[i] += end;
    spans[i + 1] += spans[i];
    end = spans[i + 1];
  }
  return spans;
}
function highlighted(text, encoded) {
  const spans = decodeSpans(encoded);
  const out = el('span', {class: 'doctext'});
  let maxAbs = 0;
  for (let i = 2; i < spans.length; i += 3) maxAbs = Math.max(maxAbs, Math.abs(spans[i]));
  let pos = 0;
  for (let i = 0; i + 2 < spans.length; i += 3) {
    const s = spans[i], e = spans[i + 1], c = spans[i + 2];
    if (s < pos || e > text.length || e <= s) continue;
    if (s > pos) out.append(text.slice(pos, s));
    const t = el('span', {class: 'tok', 'data-testid': 'token', 'data-contribution': c,
                          title: (c > 0 ? '+' : '') + c}, text.slice(s, e));
    if (c !== 0 && maxAbs > 0) {
      const a = 0.1 + 0.65 * Math.sqrt(Math.abs(c) / maxAbs);
      t.style.backgroundColor = `rgba(${c > 0 ? '22, 140, 60' : '207, 34, 46'}, ${a.toFixed(3)})`;
    }
    out.append(t);
    pos = e;
  }
  if (pos < text.length) out.append(text.slice(pos));
  return out;
}
function explains(target, other) {
  return other >= 0 ? `green: for ${L[target]}, red: for ${L[other]}` :
                      `green: raises ${L[target]}, red: lowers it`;
}

// Documents. ------------------------------------------------------------------
const docs = D.docs || {index: [], text: [], true: [], pred: [], conf: [], loss: [],
                        target: [], other: [], spans: []};
const NDOC = docs.text.length;
const wrong = docs.text.map((_, i) => MULTI ?
    attrOf(docs.true[i].slice().sort((a, b) => a - b)) !== attrOf(docs.pred[i].slice().sort((a, b) => a - b)) :
    docs.true[i] !== docs.pred[i]);
const lower = [];
const state = {wrongOnly: false, trueC: -1, predC: -1, query: '', sort: 'wrong', limit: 300};
const controls = {};

function hasLabel(x, c) { return Array.isArray(x) ? x.includes(c) : x === c; }
function matches(i) {
  if (state.wrongOnly && !wrong[i]) return false;
  if (state.trueC >= 0 && !hasLabel(docs.true[i], state.trueC)) return false;
  if (state.predC >= 0 && !hasLabel(docs.pred[i], state.predC)) return false;
  if (state.query) {
    if (lower[i] === undefined) lower[i] = docs.text[i].toLowerCase();
    if (!lower[i].includes(state.query)) return false;
  }
  return true;
}
const SORTS = {
  wrong: (a, b) => (wrong[b] - wrong[a]) ||
      (wrong[a] ? docs.conf[b] - docs.conf[a] : docs.conf[a] - docs.conf[b]) || a - b,
  loss: (a, b) => docs.loss[b] - docs.loss[a] || a - b,
  'conf-asc': (a, b) => docs.conf[a] - docs.conf[b] || a - b,
  'conf-desc': (a, b) => docs.conf[b] - docs.conf[a] || a - b,
  index: (a, b) => docs.index[a] - docs.index[b],
};
function docRow(i) {
  const tr = el('tr', {'data-testid': 'doc-row', 'data-true': attrOf(docs.true[i]),
                       'data-pred': attrOf(docs.pred[i]), 'data-index': docs.index[i]});
  tr.append(el('td', {class: 'num', text: docs.index[i] + 1}),
            el('td', {class: 'label', text: labelOf(docs.true[i]), title: labelOf(docs.true[i])}),
            el('td', {class: 'label' + (wrong[i] ? ' wrong' : ''), text: labelOf(docs.pred[i]),
                      title: labelOf(docs.pred[i])}),
            el('td', {class: 'num', text: fmt(docs.conf[i], 3)}),
            el('td', {class: 'num', text: fmt(docs.loss[i], 3)}),
            el('td', {class: 'text'}, el('span', {class: 'explains',
                text: explains(docs.target[i], docs.other[i])}),
               highlighted(docs.text[i], docs.spans[i])));
  return tr;
}
let docBody = null, docCount = null, moreButton = null;
function drawDocuments() {
  if (!docBody) return;
  const picked = [];
  for (let i = 0; i < NDOC; i++) if (matches(i)) picked.push(i);
  picked.sort(SORTS[state.sort]);
  const shown = picked.slice(0, state.limit);
  docBody.replaceChildren(...shown.map(docRow));
  let note = `${picked.length} of ${NDOC} embedded documents match`;
  if (D.confusion && state.trueC >= 0 && state.predC >= 0 && !state.query && !state.wrongOnly) {
    const total = D.confusion[state.trueC][state.predC];
    note = `${total} test documents of ${L[state.trueC]} predicted as ${L[state.predC]}` +
        (picked.length < total ? `; the report embeds ${picked.length} of them` : '');
  }
  docCount.textContent = note +
      (shown.length < picked.length ? `; showing the first ${shown.length}` : '') + '.';
  moreButton.classList.toggle('hidden', shown.length >= picked.length);
  moreButton.textContent = `show ${Math.min(500, picked.length - shown.length)} more`;
}
function showDocuments(filters) {
  Object.assign(state, filters, {limit: Math.max(300, NDOC)});
  controls.wrongOnly.checked = state.wrongOnly;
  controls.trueC.value = String(state.trueC);
  controls.predC.value = String(state.predC);
  drawDocuments();
  document.getElementById('documents').scrollIntoView();
}
function documents() {
  const s = section('documents', 'Documents',
      `${NDOC} of the ${D.docs_total} test documents are embedded: ` +
      `${D.errors_embedded} of the ${D.errors_total} misclassified and a stratified sample of the ` +
      'others. Each token is coloured by its exact contribution (weight × template difference ' +
      'of the n-grams covering it) to the predicted class against the true class, or against the ' +
      'runner-up when the prediction is right' + (MULTI ? ' (multi-label: to the score of the ' +
      'label of the largest error, or of the top label)' : '') + '. Hover a token for its value.');
  const options = (any) => [el('option', {value: '-1', text: any}),
                            ...L.map((n, c) => el('option', {value: String(c), text: n}))];
  controls.wrongOnly = el('input', {type: 'checkbox', id: 'wrong-only'});
  controls.trueC = el('select', {'aria-label': 'true class'}, ...options(MULTI ? 'any true label' : 'any true class'));
  controls.predC = el('select', {'aria-label': 'predicted class'}, ...options(MULTI ? 'any predicted label' : 'any prediction'));
  controls.query = el('input', {type: 'search', placeholder: 'search the text', 'aria-label': 'search'});
  controls.sort = el('select', {'aria-label': 'sort'},
      el('option', {value: 'wrong', text: 'most confidently wrong first'}),
      el('option', {value: 'loss', text: 'highest loss first'}),
      el('option', {value: 'conf-asc', text: 'least confident first'}),
      el('option', {value: 'conf-desc', text: 'most confident first'}),
      el('option', {value: 'index', text: 'test order'}));
  const reset = () => { state.limit = 300; drawDocuments(); };
  controls.wrongOnly.addEventListener('change', () => { state.wrongOnly = controls.wrongOnly.checked; reset(); });
  controls.trueC.addEventListener('change', () => { state.trueC = +controls.trueC.value; reset(); });
  controls.predC.addEventListener('change', () => { state.predC = +controls.predC.value; reset(); });
  controls.sort.addEventListener('change', () => { state.sort = controls.sort.value; reset(); });
  let timer = null;
  controls.query.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.query = controls.query.value.toLowerCase(); reset(); }, 150);
  });
  s.append(el('div', {class: 'controls'},
      el('label', null, controls.wrongOnly, ' misclassified only'),
      controls.trueC, controls.predC, controls.query, controls.sort));
  docCount = el('p', {class: 'note'});
  const head = el('tr');
  const sortBy = {'#': 'index', confidence: 'conf-desc', margin: 'conf-desc', loss: 'loss'};
  for (const [name, num] of [['#', 1], [MULTI ? 'true labels' : 'true', 0],
                             [MULTI ? 'predicted labels' : 'predicted', 0],
                             [PROBS ? 'confidence' : 'margin', 1], ['loss', 1], ['text', 0]]) {
    const th = el('th', {class: (num ? 'num' : '') + (sortBy[name] ? ' sortable' : ''), text: name});
    if (sortBy[name]) th.addEventListener('click', () => {
      let key = sortBy[name];
      if (key === 'conf-desc' && state.sort === 'conf-desc') key = 'conf-asc';
      state.sort = key; controls.sort.value = key; reset();
    });
    head.append(th);
  }
  docBody = el('tbody');
  moreButton = el('button', {class: 'more hidden', onclick: () => { state.limit += 500; drawDocuments(); }});
  s.append(docCount, el('table', {class: 'docs'}, el('thead', null, head), docBody), moreButton);
  drawDocuments();
}

// Class templates. ------------------------------------------------------------
function featureList(title, feats, sign) {
  const box = el('div', null, el('div', {class: 'note', text: title}));
  const maxW = Math.max(1e-9, ...feats.map(f => Math.abs(f.weight)));
  for (const f of feats) {
    const name = f.names.length ? f.names[0] : `bucket ${f.id} (not seen in training)`;
    const seen = f.names.map((n, i) => f.counts ? `${n} (seen ${f.counts[i]}×)` : n);
    if (f.distinct > f.names.length) seen.push(`… and ${f.distinct - f.names.length} more n-grams`);
    const row = el('div', {class: 'feat', title: seen.join('\n')},
        el('span', {class: 'w', text: (f.weight > 0 ? '+' : '') + f.weight.toFixed(2)}));
    const bar = el('span', {class: 'bar'});
    bar.style.width = `${Math.round(4 + 36 * Math.abs(f.weight) / maxW)}px`;
    bar.style.backgroundColor = sign > 0 ? 'rgb(22, 140, 60)' : 'rgb(207, 34, 46)';
    const n = el('span', {class: 'n'}, name);
    if (f.names.length > 1) n.append(el('span', {class: 'alt', text: ' | ' + f.names.slice(1).join(' | ')}));
    row.append(bar, n);
    if (f.collision) row.append(el('span', {class: 'badge', text: f.distinct ?
        `collision: ${f.distinct} n-grams` : 'collision',
        title: 'several training n-grams share this hash bucket (most frequent first); its weight serves them all'}));
    box.append(row);
  }
  return box;
}
function templates() {
  const T = D.templates || [];
  const s = section('templates', 'Class templates',
      'Column c of W is class c\u2019s template. The features of largest and smallest weight per ' +
      'class; a hash bucket is named by the n-grams seen in it in training, most frequent first.');
  const grid = el('div', {class: 'templates'});
  for (const t of T)
    grid.append(el('div', {class: 'template'}, el('h3', {text: t.label}),
        el('div', {class: 'note', text: `bias ${fmt(t.bias, 3)}`}),
        el('div', {class: 'feats'}, featureList('pulls towards', t.positive, 1),
                                    featureList('pushes away', t.negative, -1))));
  s.append(grid);
}

// Calibration. ----------------------------------------------------------------
function calibration() {
  const cal = D.calibration;
  const s = section('calibration', 'Calibration',
      MULTI ? `Over every (document, label) pair: predicted probability against how often the ` +
              `label is present. Expected calibration error ${fmt(cal.ece)}.` :
              `Confidence of the top class against its accuracy, ${cal.count.length} bins. ` +
              `Expected calibration error (ECE) ${fmt(cal.ece)}.`);
  const charts = el('div', {class: 'charts'});
  charts.append(reliabilityChart(cal, 'reliability diagram'));
  const tc = D.threshold_curve;
  if (tc) charts.append(lineChart('F1 against the decision threshold', tc.thresholds,
      [{name: 'micro-F1', values: tc.micro_f1}, {name: 'macro-F1', values: tc.macro_f1}],
      {xLabel: 'threshold', yMin: 0, vline: (D.metrics || {}).threshold}));
  s.append(charts);
  if (MULTI) {
    const rows = (D.per_class || []).slice().sort((a, b) => b.f1 - a.f1);
    const box = el('div', null, el('div', {class: 'note', text: 'F1 per label at the threshold'}));
    for (const r of rows) {
      const bar = el('span', {class: 'bar'});
      bar.style.width = `${Math.round(200 * r.f1)}px`;
      bar.style.backgroundColor = '#0969da';
      box.append(el('div', {class: 'feat'}, el('span', {class: 'w', text: fmt(r.f1, 3)}), bar,
                    el('span', {class: 'n', text: r.label})));
    }
    s.append(box);
  }
}

// What-if (linjax explore). ---------------------------------------------------
function whatif() {
  const cfg = D.whatif;
  const s = section('whatif', 'What-if',
      'Type or edit a text: the model\u2019s prediction, probabilities and token contributions ' +
      'update as you type.');
  s.classList.remove('hidden');
  const input = el('textarea', {'data-testid': 'whatif-input', placeholder: 'type a text',
                                maxlength: cfg.max_chars, 'aria-label': 'text to classify'});
  const label = el('span', {'data-testid': 'whatif-label'});
  const status = el('span', {class: 'note'});
  const probs = el('div', {class: 'probs'});
  const caption = el('div', {class: 'explains'});
  const output = el('div', {class: 'output'});
  s.append(input, el('div', {class: 'prediction'}, 'prediction: ', label, ' ', status),
           probs, caption, output);
  let seq = 0, timer = null, against = null;
  async function ask(text, mine) {
    try {
      const r = await fetch(cfg.endpoint, {method: 'POST',
          headers: {'Content-Type': 'application/json'}, body: JSON.stringify({text, against})});
      const res = await r.json();
      if (mine !== seq) return;
      if (!r.ok) { status.textContent = res.error || `error ${r.status}`; return; }
      status.textContent = '';
      label.textContent = labelOf(res.pred);
      const order = res.proba.map((p, c) => c).sort((a, b) => res.proba[b] - res.proba[a]).slice(0, 10);
      // Scores of a margin loss (no probabilities): bars from the lowest shown.
      const lo = res.probabilities === false ? Math.min(...order.map(c => res.proba[c])) : 0;
      const hi = res.probabilities === false ? Math.max(...order.map(c => res.proba[c])) : 1;
      probs.replaceChildren();
      for (const c of order) {
        const bar = el('span', {class: 'bar'});
        bar.style.width = `${Math.round(4 + 236 * (res.proba[c] - lo) / ((hi - lo) || 1))}px`;
        bar.style.backgroundColor = hasLabel(res.pred, c) ? '#1a7f37' : '#8c959f';
        const name = el('a', {href: '#', text: L[c], title: MULTI ?
            'explain this label\u2019s score' : 'explain the prediction against this class'});
        name.addEventListener('click', (e) => {
          e.preventDefault();
          against = c;
          ask(input.value, ++seq);
        });
        probs.append(name, el('span', null, bar),
                     el('span', {class: 'note', text: fmt(res.proba[c], 3)}));
      }
      caption.textContent = explains(res.target, res.other);
      output.replaceChildren(highlighted(text, res.spans));
    } catch (err) {
      if (mine === seq) status.textContent = 'the server did not answer: ' + err;
    }
  }
  input.addEventListener('input', () => {
    clearTimeout(timer);
    const mine = ++seq;
    against = null;
    timer = setTimeout(() => ask(input.value, mine), 200);
  });
}

header();
const present = [];
if (D.whatif) { whatif(); present.push('whatif'); }
if (D.metrics) { summary(); present.push('summary'); }
if (D.per_class) { classes(); present.push('classes'); }
if (D.confusion) { confusion(); present.push('confusion'); }
if (D.docs) { documents(); present.push('documents'); }
if (D.templates) { templates(); present.push('templates'); }
if (D.calibration) { calibration(); present.push('calibration'); }
nav(present);
})();
"""
