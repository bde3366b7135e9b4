// What the canvas charts over steps share (the layers x steps heat map, the gradient histograms):
// viridis and the special colors, the plot margins (the same, so their step axes line up on the
// job page), a canvas sized for the device's pixel ratio, the step axis below the plot, the
// legend's color bar and swatches, the hover tip, and drag-to-select a step range.

import {h} from '../dom.js';

// viridis at 9 stops.
const VIRIDIS = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];
export const NONFINITE_COLOR = [255, 0, 110]; // NaN and inf: nothing in viridis is near it
export const NONPOSITIVE_COLOR = [150, 150, 150]; // <= 0 on a log scale
export const EMPTY_COLOR = [243, 244, 246]; // no data (yet), or nothing in a cell

/** Plot margins in CSS px: row labels left, the step axis below. */
export const MARGIN = {left: 64, right: 10, top: 4, bottom: 24};
export const FONT = 'system-ui, -apple-system, "Segoe UI", sans-serif';
export const LABEL_COLOR = '#374151';
export const AXIS_COLOR = '#9ca3af';

export function css([r, g, b]) {
  return `rgb(${r}, ${g}, ${b})`;
}

/** viridis at t in [0, 1] (clamped), as [r, g, b]. */
export function viridis(t) {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = VIRIDIS[i];
  const b = VIRIDIS[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** Sizes `canvas` to cssW x cssH CSS px at the device's pixel ratio; its 2d context, cleared and
 * scaled so that drawing is in CSS px. */
export function sizeCanvas(canvas, cssW, cssH) {
  const dpr = window.devicePixelRatio || 1;
  canvas.style.width = `${cssW}px`;
  canvas.style.height = `${cssH}px`;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, cssW, cssH);
  return g;
}

/** The step axis along y (CSS px): a line from x0 to x0 + width and ticks at round steps of
 * [lo, hi], a step s drawn at x0 + (s - lo) / span * width. */
export function drawStepAxis(g, {lo, hi, span, x0, width, y}) {
  g.strokeStyle = AXIS_COLOR;
  g.fillStyle = LABEL_COLOR;
  g.textAlign = 'center';
  g.textBaseline = 'top';
  g.font = `11px ${FONT}`;
  g.beginPath();
  g.moveTo(x0, y + 0.5);
  g.lineTo(x0 + width, y + 0.5);
  g.stroke();
  for (const t of ticks(lo, hi, Math.max(2, Math.floor(width / 90)))) {
    const x = x0 + ((t - lo) / span) * width;
    g.beginPath();
    g.moveTo(x + 0.5, y);
    g.lineTo(x + 0.5, y + 4);
    g.stroke();
    g.fillText(stepText(t), x, y + 6);
  }
}

/** About `n` round step values in [lo, hi]. */
export function ticks(lo, hi, n) {
  const span = Math.max(1, hi - lo);
  const raw = span / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) || 10 * p;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) out.push(t);
  if (out.length === 0 || out[0] !== lo) out.unshift(lo);
  if (out.length > 1 && out[1] - out[0] < step * 0.5) out.splice(1, 1);
  return out;
}

/** A step count as an axis label: 950, 12.5k, 1.2M. */
export function stepText(v) {
  if (v >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (v >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(v);
}

/** The legend's color bar: viridis from left (low) to right (high). */
export function legendBar(width = 240, height = 12) {
  const bar = h('canvas', {class: 'legend-bar', width, height});
  const g = bar.getContext('2d');
  for (let x = 0; x < width; x++) {
    g.fillStyle = css(viridis(x / (width - 1)));
    g.fillRect(x, 0, 1, height);
  }
  return bar;
}

/** A legend entry: a colored square and its label; `key` goes to data-legend. */
export function swatch(color, label, key) {
  return h('span', {class: 'legend-item', dataset: {legend: key}},
    h('span', {class: 'swatch', style: {background: css(color)}}), label);
}

/** Shows `tip` with `text` near the pointer at p (CSS px within a plot `width` wide). */
export function placeTip(tip, text, p, width) {
  tip.textContent = text;
  tip.hidden = false;
  const left = Math.min(p.x + 12, width - 220);
  Object.assign(tip.style, {left: `${left}px`, top: `${Math.max(0, p.y - 28)}px`});
}

/**
 * Drag-to-select on a canvas over a plot from x = MARGIN.left to MARGIN.left + plotWidth():
 * `selection` (an absolutely placed element) follows the drag; a drag wider than 3 px calls
 * onSelect(x0, x1) (CSS px within the canvas). onHover(p) gets every move, onLeave() the pointer
 * leaving. `enabled()` says whether there is anything to select.
 */
export function bindDragSelect(canvas, selection, {plotWidth, enabled, onSelect, onHover, onLeave}) {
  let start = null;
  const rel = (e) => {
    const r = canvas.getBoundingClientRect();
    return {x: e.clientX - r.left, y: e.clientY - r.top};
  };
  canvas.addEventListener('pointerdown', (e) => {
    if (!enabled() || e.button !== 0) return;
    const p = rel(e);
    if (p.x < MARGIN.left) return;
    start = p.x;
    canvas.setPointerCapture(e.pointerId);
    selection.hidden = false;
    Object.assign(selection.style, {left: `${p.x}px`, width: '0px'});
  });
  canvas.addEventListener('pointermove', (e) => {
    const p = rel(e);
    if (start !== null) {
      const x0 = Math.max(MARGIN.left, Math.min(start, p.x));
      const x1 = Math.min(MARGIN.left + plotWidth(), Math.max(start, p.x));
      Object.assign(selection.style, {left: `${x0}px`, width: `${x1 - x0}px`});
    }
    if (onHover) onHover(p);
  });
  canvas.addEventListener('pointerleave', () => { if (onLeave) onLeave(); });
  canvas.addEventListener('pointerup', (e) => {
    if (start === null) return;
    const p = rel(e);
    const x0 = Math.min(start, p.x);
    const x1 = Math.max(start, p.x);
    start = null;
    selection.hidden = true;
    if (x1 - x0 > 3 && onSelect) onSelect(x0, x1);
  });
}

/** Redraws `chart` (its `el` and `draw()`) when its element's width changes; the observer. */
export function redrawOnResize(chart) {
  let lastWidth = 0;
  const observer = new ResizeObserver(() => {
    const w = chart.el.clientWidth;
    if (w !== lastWidth) {
      lastWidth = w;
      chart.draw();
    }
  });
  observer.observe(chart.el);
  return observer;
}
