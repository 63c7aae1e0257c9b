// PFN posterior explorer: the page of `pfn serve`. Plain JavaScript, no dependencies.
//
// The page keeps a list of context points, asks POST /api/predict for the PFN's predictive on a
// grid spanning the view (plus the GP overlay), and draws the answer on a canvas. Every number it
// draws also goes into the table #readout (and the canvas' data attributes), so tests and readers
// can check the plot against the API.
'use strict';

const GRID_POINTS = 200;
const HEATMAP_ROWS = 120;
// While a point is dragged the page asks for a coarser answer (cheaper for large networks) and
// asks for the full one when the point is dropped.
const PREVIEW_GRID_POINTS = 60;
const PREVIEW_HEATMAP_ROWS = 40;
const HIT_RADIUS = 9; // CSS pixels
const MARGIN = { left: 58, right: 18, top: 14, bottom: 42 };

const $ = (id) => document.getElementById(id);
const canvas = $('plot');
const ctx = canvas.getContext('2d');

const state = {
  models: [],
  model: null, // ModelInfo of the selected model
  points: [], // [{x, y}]
  view: { x0: -0.1, x1: 1.1, y0: -3, y1: 3 },
  result: null, // last PredictResponse drawn
  resultPoints: [], // the points that result was computed for
  heatImage: null, // offscreen canvas of the heat map
  seq: 0, // requests sent
  renderSeq: 0, // results drawn
  inflight: false,
  pending: false,
  drag: null, // {index, moved}
  hover: null, // {px, py}
  error: null,
};

// ---------- geometry ----------

function plotArea() {
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  return {
    left: MARGIN.left,
    top: MARGIN.top,
    width: Math.max(10, w - MARGIN.left - MARGIN.right),
    height: Math.max(10, h - MARGIN.top - MARGIN.bottom),
  };
}

function toPx(x, y) {
  const a = plotArea();
  const v = state.view;
  return [
    a.left + ((x - v.x0) / (v.x1 - v.x0)) * a.width,
    a.top + (1 - (y - v.y0) / (v.y1 - v.y0)) * a.height,
  ];
}

function toData(px, py) {
  const a = plotArea();
  const v = state.view;
  return [
    v.x0 + ((px - a.left) / a.width) * (v.x1 - v.x0),
    v.y0 + (1 - (py - a.top) / a.height) * (v.y1 - v.y0),
  ];
}

function insidePlot(px, py) {
  const a = plotArea();
  return px >= a.left && px <= a.left + a.width && py >= a.top && py <= a.top + a.height;
}

function resizeCanvas() {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.round(canvas.clientWidth * dpr);
  const h = Math.round(canvas.clientHeight * dpr);
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
}

// ---------- formatting ----------

function fmt(v, digits = 4) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(2);
  return Number(v.toPrecision(digits)).toString();
}

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---------- state <-> DOM ----------

function selectedLevels() {
  return Array.from(document.querySelectorAll('input.level'))
    .filter((c) => c.checked)
    .map((c) => Number(c.value))
    .sort((a, b) => a - b);
}

function trainedX() {
  const r = state.result && state.result.out_of_range;
  if (r && r.trained_x_range) return r.trained_x_range;
  return state.model ? state.model.trained_x_range : null;
}

function trainedY() {
  return state.model ? state.model.trained_y_range : null;
}

function pointIsOut(p) {
  const tx = trainedX();
  const ty = trainedY();
  return (tx && (p.x < tx[0] || p.x > tx[1])) || (ty && (p.y < ty[0] || p.y > ty[1]));
}

function syncViewInputs() {
  $('x0').value = fmt(state.view.x0, 6);
  $('x1').value = fmt(state.view.x1, 6);
  $('y0').value = fmt(state.view.y0, 6);
  $('y1').value = fmt(state.view.y1, 6);
}

function publishState() {
  canvas.dataset.points = JSON.stringify(state.points.map((p) => [p.x, p.y]));
  canvas.dataset.resultPoints = JSON.stringify(state.resultPoints.map((p) => [p.x, p.y]));
  canvas.dataset.renderSeq = String(state.renderSeq);
  canvas.dataset.model = state.model ? state.model.name : '';
  const a = plotArea();
  canvas.dataset.plotArea = JSON.stringify({
    left: a.left, top: a.top, width: a.width, height: a.height,
    x0: state.view.x0, x1: state.view.x1, y0: state.view.y0, y1: state.view.y1,
    cssWidth: canvas.clientWidth, cssHeight: canvas.clientHeight,
  });
}

function renderPointsTable() {
  const body = $('points').querySelector('tbody');
  body.replaceChildren();
  state.points.forEach((p, i) => {
    const tr = el('tr', { 'data-i': String(i) });
    if (pointIsOut(p)) tr.className = 'out';
    tr.append(el('td', {}, String(i + 1)));
    for (const key of ['x', 'y']) {
      const td = el('td');
      const input = el('input', { type: 'number', step: 'any', 'aria-label': `${key} of point ${i + 1}` });
      input.value = String(Number(p[key].toPrecision(6)));
      input.addEventListener('change', () => {
        const v = Number(input.value);
        if (Number.isFinite(v)) {
          state.points[i][key] = v;
          pointsChanged();
        }
      });
      td.append(input);
      tr.append(td);
    }
    const td = el('td');
    const del = el('button', { type: 'button', 'aria-label': `remove point ${i + 1}` }, 'remove');
    del.addEventListener('click', () => {
      state.points.splice(i, 1);
      pointsChanged();
    });
    td.append(del);
    tr.append(td);
    body.append(tr);
  });
  $('point-count').textContent = String(state.points.length);
}

function renderReadout(r) {
  const body = $('readout').querySelector('tbody');
  body.replaceChildren();
  if (!r) return;
  const frag = document.createDocumentFragment();
  for (let i = 0; i < r.x.length; i++) {
    const tr = el('tr', {
      'data-i': String(i),
      'data-x': String(r.x[i]),
      'data-mean': String(r.mean[i]),
      'data-median': String(r.median[i]),
      'data-std': String(r.std[i]),
    });
    if (r.gp) {
      tr.setAttribute('data-gp-mean', String(r.gp.mean[i]));
      tr.setAttribute('data-gp-std', String(r.gp.std[i]));
    }
    const kl = r.gp ? r.gp.comparison.kl[i] : null;
    tr.append(el('td', {}, String(i)));
    for (const v of [r.x[i], r.mean[i], r.median[i], r.std[i], r.gp ? r.gp.mean[i] : null, r.gp ? r.gp.std[i] : null, kl]) {
      tr.append(el('td', {}, fmt(v)));
    }
    frag.append(tr);
  }
  body.append(frag);
}

function renderWarnings() {
  const ul = $('warnings');
  ul.replaceChildren();
  if (state.error) ul.append(el('li', { class: 'error' }, state.error));
  if (state.result) for (const w of state.result.warnings) ul.append(el('li', {}, w));
}

function renderModelInfo() {
  const box = $('model-info');
  box.replaceChildren();
  const m = state.model;
  if (!m) return;
  const lines = [
    `prior ${m.prior}${m.prior_description ? ': ' + m.prior_description : ''}`,
    `up to ${m.max_context} context points · ${m.buckets} buckets${m.full_support ? ' (full support)' : ''}`,
    `trained x range ${m.trained_x_range ? '[' + m.trained_x_range.join(', ') + ']' : m.x_normalisation === 'context_min_max' ? 'not fixed (x is scaled with the context points)' : 'not fixed'}`,
    `training: ${m.training.in_all.steps} steps, ${m.training.in_all.datasets} datasets`
      + (m.training.in_all.runs > 1 ? ` in ${m.training.in_all.runs} runs` : '')
      + (m.training.in_all.complete ? '' : ` after ${m.training.in_all.unknown_start}`),
  ];
  if (m.feature_range && m.feature_range[1] > 1) {
    lines.push(`takes ${m.feature_range[0]} to ${m.feature_range[1]} input features; the demo uses 1`);
  }
  if (m.reference_gp) lines.push(`GP overlay: ${gpOverlayText(m.reference_gp)}`);
  for (const l of lines) box.append(el('div', {}, l));
  if (!m.supported) box.append(el('div', { class: 'bad' }, `cannot be plotted: ${m.unsupported_reason}`));
}

function gpOverlayText(kind) {
  if (kind === 'exact') return 'exact posterior';
  if (kind === 'type2_map') return 'type-II MAP (approximate)';
  if (kind === 'type2_ml') return 'GP (type-II ML) fitted to the context as the PFN scales it (approximate)';
  return kind;
}

function renderComparison() {
  const box = $('comparison');
  box.replaceChildren();
  const r = state.result;
  if (!r || !r.gp) return;
  const c = r.gp.comparison;
  box.append(el('h2', {}, r.gp.kind === 'exact' ? 'PFN vs exact GP' : `PFN vs ${r.gp.label}`));
  const t = el('table');
  const rows = [
    ['cmp-mean-kl', 'mean KL(GP‖PFN)', c.mean_kl],
    ['cmp-max-kl', 'max KL(GP‖PFN)', c.max_kl],
    ['cmp-cross-entropy', 'PFN expected NLL under GP', c.mean_cross_entropy],
    ['cmp-gp-entropy', 'GP entropy (best possible)', c.mean_gp_entropy],
  ];
  for (const [id, label, v] of rows) {
    const tr = el('tr');
    tr.append(el('td', {}, label), el('td', { class: 'num', id }, fmt(v)), el('td', {}, 'nats'));
    t.append(tr);
  }
  box.append(t);
  box.append(el('p', {}, r.gp.description));
  const d = el('details');
  d.append(el('summary', {}, 'definitions'), el('p', {}, c.definition));
  box.append(d);
  box.dataset.meanKl = String(c.mean_kl);
}

// ---------- drawing ----------

function heatColor(t) {
  // white -> light blue -> violet -> near black, on t in [0, 1]
  const stops = [
    [0.0, [255, 255, 255]],
    [0.25, [185, 198, 238]],
    [0.6, [74, 59, 156]],
    [1.0, [27, 12, 63]],
  ];
  for (let i = 1; i < stops.length; i++) {
    if (t <= stops[i][0]) {
      const [t0, c0] = stops[i - 1];
      const [t1, c1] = stops[i];
      const u = (t - t0) / (t1 - t0);
      return c0.map((c, k) => Math.round(c + u * (c1[k] - c)));
    }
  }
  return stops[stops.length - 1][1];
}

// Each column (query point) is scaled by its own maximum, so the shape of the predictive shows
// at every x even where a nearby context point makes the density spike.
function buildHeatImage(r) {
  const h = r.heatmap;
  if (!h || !h.max_density) return null;
  const nx = r.x.length;
  const ny = h.y.length;
  const colMax = new Array(nx).fill(0);
  for (let i = 0; i < ny; i++) for (let j = 0; j < nx; j++) colMax[j] = Math.max(colMax[j], h.density[i][j]);
  const off = document.createElement('canvas');
  off.width = nx;
  off.height = ny;
  const octx = off.getContext('2d');
  const img = octx.createImageData(nx, ny);
  for (let i = 0; i < ny; i++) {
    const row = h.density[i];
    const py = ny - 1 - i; // row 0 is the lowest y
    for (let j = 0; j < nx; j++) {
      const t = colMax[j] > 0 ? Math.sqrt(Math.min(1, row[j] / colMax[j])) : 0;
      const [cr, cg, cb] = heatColor(t);
      const o = 4 * (py * nx + j);
      img.data[o] = cr;
      img.data[o + 1] = cg;
      img.data[o + 2] = cb;
      img.data[o + 3] = 255;
    }
  }
  octx.putImageData(img, 0, 0);
  return off;
}

function pathThrough(xs, ys) {
  ctx.beginPath();
  for (let i = 0; i < xs.length; i++) {
    const [px, py] = toPx(xs[i], ys[i]);
    if (i === 0) ctx.moveTo(px, py);
    else ctx.lineTo(px, py);
  }
}

function niceTicks(lo, hi, target) {
  const span = hi - lo;
  const raw = span / target;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((s) => s * mag).find((s) => span / s <= target) || 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) ticks.push(Math.abs(v) < 1e-12 * step ? 0 : v);
  return ticks;
}

function draw() {
  resizeCanvas();
  const W = canvas.clientWidth;
  const H = canvas.clientHeight;
  const a = plotArea();
  const v = state.view;
  const r = state.result;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, W, H);

  ctx.save();
  ctx.beginPath();
  ctx.rect(a.left, a.top, a.width, a.height);
  ctx.clip();

  // Density heat map, stretched over the grid's x range and the heat map's y range.
  if (r && $('show-heatmap').checked && state.heatImage) {
    const h = r.heatmap;
    const [hx0, hy1] = toPx(r.x[0], h.y[h.y.length - 1]);
    const [hx1, hy0] = toPx(r.x[r.x.length - 1], h.y[0]);
    ctx.imageSmoothingEnabled = true;
    ctx.globalAlpha = 0.85;
    ctx.drawImage(state.heatImage, hx0, hy1, hx1 - hx0, hy0 - hy1);
    ctx.globalAlpha = 1;
  }

  // Hatch what lies outside the trained x range.
  const tx = trainedX();
  if (tx) {
    ctx.fillStyle = 'rgba(224, 123, 0, 0.10)';
    ctx.strokeStyle = 'rgba(224, 123, 0, 0.35)';
    const [lx] = toPx(tx[0], 0);
    const [rx] = toPx(tx[1], 0);
    for (const [s, e] of [[a.left, lx], [rx, a.left + a.width]]) {
      if (e > s) {
        ctx.fillRect(s, a.top, e - s, a.height);
        ctx.beginPath();
        for (let k = s - a.height; k < e; k += 10) {
          ctx.moveTo(Math.max(k, s), a.top + a.height - Math.max(0, s - k));
          ctx.lineTo(Math.min(k + a.height, e), a.top + Math.max(0, k + a.height - e));
        }
        ctx.lineWidth = 1;
        ctx.stroke();
      }
    }
  }

  // Grid lines.
  ctx.strokeStyle = 'rgba(0, 0, 0, 0.07)';
  ctx.lineWidth = 1;
  for (const t of niceTicks(v.x0, v.x1, 10)) {
    const [px] = toPx(t, 0);
    ctx.beginPath();
    ctx.moveTo(px, a.top);
    ctx.lineTo(px, a.top + a.height);
    ctx.stroke();
  }
  for (const t of niceTicks(v.y0, v.y1, 8)) {
    const [, py] = toPx(0, t);
    ctx.beginPath();
    ctx.moveTo(a.left, py);
    ctx.lineTo(a.left + a.width, py);
    ctx.stroke();
  }

  if (r) {
    // PFN central intervals, widest first.
    if ($('show-intervals').checked) {
      const bands = [...r.intervals].sort((p, q) => q.level - p.level);
      bands.forEach((b, k) => {
        ctx.beginPath();
        r.x.forEach((x, i) => {
          const [px, py] = toPx(x, b.upper[i]);
          if (i === 0) ctx.moveTo(px, py);
          else ctx.lineTo(px, py);
        });
        for (let i = r.x.length - 1; i >= 0; i--) {
          const [px, py] = toPx(r.x[i], b.lower[i]);
          ctx.lineTo(px, py);
        }
        ctx.closePath();
        ctx.fillStyle = `rgba(31, 95, 191, ${0.12 + 0.08 * k})`;
        ctx.fill();
        ctx.strokeStyle = 'rgba(31, 95, 191, 0.55)';
        ctx.lineWidth = 0.8;
        ctx.stroke();
      });
    }
    // GP overlay, dashed.
    if (r.gp && $('show-gp').checked) {
      ctx.strokeStyle = 'rgba(26, 138, 58, 0.75)';
      ctx.setLineDash([5, 4]);
      ctx.lineWidth = 1.2;
      for (const b of r.gp.intervals) {
        pathThrough(r.x, b.lower);
        ctx.stroke();
        pathThrough(r.x, b.upper);
        ctx.stroke();
      }
      ctx.strokeStyle = '#1a8a3a';
      ctx.setLineDash([9, 5]);
      ctx.lineWidth = 2.2;
      pathThrough(r.x, r.gp.mean);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    // PFN mean.
    ctx.strokeStyle = '#1f5fbf';
    ctx.lineWidth = 2.4;
    pathThrough(r.x, r.mean);
    ctx.stroke();
  }

  // Context points.
  state.points.forEach((p, i) => {
    const [px, py] = toPx(p.x, p.y);
    const out = pointIsOut(p);
    ctx.beginPath();
    ctx.arc(px, py, 5.5, 0, 2 * Math.PI);
    ctx.fillStyle = out ? '#e07b00' : '#111';
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = '#fff';
    ctx.stroke();
    if (out) {
      ctx.beginPath();
      ctx.arc(px, py, 9, 0, 2 * Math.PI);
      ctx.strokeStyle = '#e07b00';
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
    if (state.drag && state.drag.index === i) {
      ctx.beginPath();
      ctx.arc(px, py, 11, 0, 2 * Math.PI);
      ctx.strokeStyle = 'rgba(0,0,0,0.4)';
      ctx.stroke();
    }
  });

  // Hover crosshair.
  if (state.hover && !state.drag && insidePlot(state.hover.px, state.hover.py)) {
    ctx.strokeStyle = 'rgba(0,0,0,0.35)';
    ctx.lineWidth = 1;
    ctx.setLineDash([2, 3]);
    ctx.beginPath();
    ctx.moveTo(state.hover.px, a.top);
    ctx.lineTo(state.hover.px, a.top + a.height);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  ctx.restore();

  // Frame, ticks and labels.
  ctx.strokeStyle = '#8a93a3';
  ctx.lineWidth = 1;
  ctx.strokeRect(a.left, a.top, a.width, a.height);
  ctx.fillStyle = '#3a4252';
  ctx.font = '12px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const t of niceTicks(v.x0, v.x1, 10)) {
    const [px] = toPx(t, 0);
    ctx.fillText(fmt(t), px, a.top + a.height + 5);
  }
  ctx.fillText('x', a.left + a.width / 2, a.top + a.height + 23);
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const t of niceTicks(v.y0, v.y1, 8)) {
    const [, py] = toPx(0, t);
    ctx.fillText(fmt(t), a.left - 6, py);
  }
  ctx.save();
  ctx.translate(14, a.top + a.height / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = 'center';
  ctx.fillText('y', 0, 0);
  ctx.restore();
  if (!state.points.length) {
    ctx.fillStyle = 'rgba(40, 48, 64, 0.55)';
    ctx.textAlign = 'center';
    ctx.font = '14px system-ui, sans-serif';
    ctx.fillText('click to add context points', a.left + a.width / 2, a.top + 22);
  }
  publishState();
  updateTooltip();
}

function nearestGridIndex(x) {
  const r = state.result;
  if (!r || !r.x.length) return -1;
  let best = 0;
  for (let i = 1; i < r.x.length; i++) if (Math.abs(r.x[i] - x) < Math.abs(r.x[best] - x)) best = i;
  return best;
}

function updateTooltip() {
  const tip = $('tooltip');
  const r = state.result;
  if (!state.hover || state.drag || !r || !insidePlot(state.hover.px, state.hover.py)) {
    tip.hidden = true;
    return;
  }
  const [x] = toData(state.hover.px, state.hover.py);
  const j = nearestGridIndex(x);
  if (j < 0) {
    tip.hidden = true;
    return;
  }
  tip.replaceChildren();
  const line = (html) => {
    const d = el('div');
    d.append(...html);
    tip.append(d);
  };
  const b = (cls, text) => el('b', { class: cls }, text);
  line([document.createTextNode(`x = ${fmt(r.x[j])}`)]);
  line([b('pfn', 'PFN '), document.createTextNode(`mean ${fmt(r.mean[j])}, median ${fmt(r.median[j])}, std ${fmt(r.std[j])}`)]);
  for (const band of r.intervals) {
    line([document.createTextNode(`${fmt(100 * band.level, 3)} %: [${fmt(band.lower[j])}, ${fmt(band.upper[j])}]`)]);
  }
  if (r.gp) {
    line([b('gp', 'GP '), document.createTextNode(`mean ${fmt(r.gp.mean[j])}, std ${fmt(r.gp.std[j])}`)]);
    line([document.createTextNode(`KL(GP‖PFN) ${fmt(r.gp.comparison.kl[j])} nats`)]);
  }
  if (r.out_of_range.query_x.includes(j)) {
    const minMax = state.model && state.model.x_normalisation === 'context_min_max';
    line([document.createTextNode(minMax ? "outside the context points' x range (extrapolation)" : 'outside the trained range')]);
  }
  tip.hidden = false;
  const a = plotArea();
  const left = state.hover.px + 14 + tip.offsetWidth > a.left + a.width ? state.hover.px - 14 - tip.offsetWidth : state.hover.px + 14;
  tip.style.left = `${left}px`;
  tip.style.top = `${Math.max(a.top, state.hover.py - tip.offsetHeight - 10)}px`;
}

// ---------- talking to the server ----------

function setStatus(text, s) {
  const p = $('status');
  p.textContent = text;
  p.dataset.state = s;
}

function requestBody() {
  const preview = state.drag !== null;
  const rows = preview ? PREVIEW_HEATMAP_ROWS : HEATMAP_ROWS;
  return {
    model: state.model.name,
    x: state.points.map((p) => p.x),
    y: state.points.map((p) => p.y),
    grid: { min: state.view.x0, max: state.view.x1, n: preview ? PREVIEW_GRID_POINTS : GRID_POINTS },
    levels: selectedLevels(),
    heatmap: { y_min: state.view.y0, y_max: state.view.y1, n: $('show-heatmap').checked ? rows : 0 },
    gp: $('show-gp').checked,
  };
}

async function refresh() {
  if (!state.model) return;
  if (state.model.needs_context && state.points.length === 0 && !state.inflight) {
    // The model scales x and y with the context points: nothing to show until there is one.
    state.pending = false;
    state.result = null;
    state.heatImage = null;
    state.resultPoints = [];
    state.error = null;
    renderReadout(null);
    renderWarnings();
    renderComparison();
    draw();
    setStatus('click to add a point: this model scales its inputs with the context points, so it needs at least one', 'empty');
    return;
  }
  if (state.inflight) {
    state.pending = true;
    return;
  }
  state.inflight = true;
  state.pending = false;
  const snapshot = state.points.map((p) => ({ x: p.x, y: p.y }));
  const body = requestBody();
  const seq = ++state.seq;
  setStatus('computing…', 'loading');
  try {
    const res = await fetch('/api/predict', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const data = await res.json();
    if (!res.ok) {
      state.error = data.error ? data.error.message : `HTTP ${res.status}`;
      state.result = null;
      state.heatImage = null;
      state.resultPoints = snapshot;
      renderReadout(null);
      setStatus(`error (HTTP ${res.status})`, state.pending ? 'loading' : 'error');
    } else {
      state.error = null;
      state.result = data;
      state.resultPoints = snapshot;
      state.heatImage = buildHeatImage(data);
      renderReadout(data);
      setStatus(`${data.n_context} points · ${fmt(data.elapsed_ms, 3)} ms on the server`, state.pending ? 'loading' : 'ready');
    }
    state.renderSeq = seq;
  } catch (e) {
    state.error = `request failed: ${e}`;
    setStatus(state.error, 'error');
  }
  state.inflight = false;
  renderWarnings();
  renderComparison();
  renderPointsTable();
  draw();
  if (state.pending) refresh();
}

function pointsChanged() {
  renderPointsTable();
  draw();
  refresh();
}

function selectModel(name) {
  const m = state.models.find((q) => q.name === name);
  if (!m) return;
  state.model = m;
  state.view = { x0: m.default_view.x[0], x1: m.default_view.x[1], y0: m.default_view.y[0], y1: m.default_view.y[1] };
  state.result = null;
  state.heatImage = null;
  syncViewInputs();
  renderModelInfo();
  $('legend-gp').textContent = `${m.reference_gp_label || 'GP'} mean and intervals (dashed)`;
  draw();
  if (m.supported) refresh();
  else {
    state.error = `model ${m.name} cannot be plotted: ${m.unsupported_reason}`;
    renderWarnings();
    setStatus('unsupported model', 'error');
  }
}

async function loadModels() {
  try {
    const res = await fetch('/api/models');
    const data = await res.json();
    state.models = data.models;
    const sel = $('model');
    sel.replaceChildren();
    for (const m of data.models) {
      const o = el('option', { value: m.name }, m.supported ? `${m.name} (${m.prior})` : `${m.name} (unsupported)`);
      if (!m.supported) o.disabled = true;
      sel.append(o);
    }
    const first = data.models.find((m) => m.supported) || data.models[0];
    if (first) {
      sel.value = first.name;
      selectModel(first.name);
    } else setStatus('no models', 'error');
  } catch (e) {
    setStatus(`cannot load the models: ${e}`, 'error');
  }
}

// ---------- interaction ----------

function eventPos(e) {
  const rect = canvas.getBoundingClientRect();
  return [e.clientX - rect.left, e.clientY - rect.top];
}

function hitPoint(px, py) {
  let best = -1;
  let bestD = HIT_RADIUS;
  state.points.forEach((p, i) => {
    const [qx, qy] = toPx(p.x, p.y);
    const d = Math.hypot(qx - px, qy - py);
    if (d <= bestD) {
      best = i;
      bestD = d;
    }
  });
  return best;
}

canvas.addEventListener('pointerdown', (e) => {
  if (e.button !== 0) return;
  const [px, py] = eventPos(e);
  if (!insidePlot(px, py)) return;
  e.preventDefault();
  let i = hitPoint(px, py);
  if (i < 0) {
    if (state.model && state.points.length >= state.model.max_context) {
      state.error = `model ${state.model.name} takes at most ${state.model.max_context} context points; remove one first`;
      renderWarnings();
      return;
    }
    const [x, y] = toData(px, py);
    state.points.push({ x, y });
    i = state.points.length - 1;
    pointsChanged();
  }
  state.drag = { index: i, moved: false };
  canvas.classList.add('dragging');
  canvas.setPointerCapture(e.pointerId);
});

canvas.addEventListener('pointermove', (e) => {
  const [px, py] = eventPos(e);
  state.hover = { px, py };
  if (state.drag) {
    const a = plotArea();
    const cx = Math.min(Math.max(px, a.left), a.left + a.width);
    const cy = Math.min(Math.max(py, a.top), a.top + a.height);
    const [x, y] = toData(cx, cy);
    state.points[state.drag.index] = { x, y };
    state.drag.moved = true;
    renderPointsTable();
    draw();
    refresh();
  } else {
    canvas.classList.toggle('over-point', hitPoint(px, py) >= 0);
    draw();
  }
});

function endDrag(e) {
  if (!state.drag) return;
  const moved = state.drag.moved;
  state.drag = null;
  canvas.classList.remove('dragging');
  if (e && canvas.hasPointerCapture(e.pointerId)) canvas.releasePointerCapture(e.pointerId);
  draw();
  if (moved) refresh();
}

canvas.addEventListener('pointerup', endDrag);
canvas.addEventListener('pointercancel', endDrag);
canvas.addEventListener('pointerleave', () => {
  state.hover = null;
  draw();
});

canvas.addEventListener('contextmenu', (e) => {
  e.preventDefault();
  const [px, py] = eventPos(e);
  const i = hitPoint(px, py);
  if (i >= 0) {
    state.points.splice(i, 1);
    pointsChanged();
  }
});

canvas.addEventListener('keydown', (e) => {
  if ((e.key === 'Delete' || e.key === 'Backspace') && state.points.length) {
    state.points.pop();
    pointsChanged();
  }
});

$('model').addEventListener('change', (e) => selectModel(e.target.value));
for (const id of ['show-heatmap', 'show-gp']) $(id).addEventListener('change', refresh);
$('show-intervals').addEventListener('change', draw);
for (const c of document.querySelectorAll('input.level')) c.addEventListener('change', refresh);

function viewFromInputs() {
  const v = { x0: Number($('x0').value), x1: Number($('x1').value), y0: Number($('y0').value), y1: Number($('y1').value) };
  if ([v.x0, v.x1, v.y0, v.y1].every(Number.isFinite) && v.x0 < v.x1 && v.y0 < v.y1) {
    state.view = v;
    state.error = null;
    draw();
    refresh();
  } else {
    state.error = 'the view needs finite numbers with from < to';
    renderWarnings();
  }
}
for (const id of ['x0', 'x1', 'y0', 'y1']) $(id).addEventListener('change', viewFromInputs);
$('reset-view').addEventListener('click', () => state.model && selectModel(state.model.name));
$('clear').addEventListener('click', () => {
  state.points = [];
  pointsChanged();
});
$('example').addEventListener('click', () => {
  // The paper's Hugging Face demo starts with these two points.
  state.points = [{ x: 0.25, y: 0.1 }, { x: 0.75, y: 0.4 }];
  pointsChanged();
});
$('add-point').addEventListener('submit', (e) => {
  e.preventDefault();
  const x = Number($('new-x').value);
  const y = Number($('new-y').value);
  if (Number.isFinite(x) && Number.isFinite(y)) {
    state.points.push({ x, y });
    pointsChanged();
  }
});
window.addEventListener('resize', draw);

draw();
loadModels();
