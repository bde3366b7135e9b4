// Line charts over steps, on uPlot (vendored, window.uPlot). A chart shows "tracks": a series
// of points (steps, values) and, for downsampled data, each bucket's min/max as a band around
// the line, so a spike inside a bucket is never hidden. Non-finite values are gaps (null, which
// uPlot leaves unjoined); steps that one track lacks and another has are `undefined`, which
// uPlot joins over.

/** Marks on the step axis (a fork's start). */
export const MARKER_COLOR = '#555';

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

function uPlotLib() {
  const u = window.uPlot;
  if (typeof u !== 'function') throw new Error('uPlot did not load (/static/vendor/uPlot.iife.min.js)');
  return u;
}

/** A CSS color with alpha, from '#rrggbb'. */
export function alpha(hex, a) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) return hex;
  return `rgba(${parseInt(m[1], 16)}, ${parseInt(m[2], 16)}, ${parseInt(m[3], 16)}, ${a})`;
}

/**
 * Aligns tracks ({steps, values, min?, max?}) on the sorted union of their steps.
 * Returns [x, ...columns] where each track gives values (and min, max when `bands[i]`).
 * `log`: non-positive values become gaps too.
 */
export function align(tracks, bands, log = false) {
  const n = tracks.reduce((s, t) => s + (t ? t.steps.length : 0), 0);
  let x;
  let index = null;
  const ref = tracks.find((t) => t);
  if (ref && tracks.every((t) => !t || t === ref || sameArray(t.steps, ref.steps))) {
    x = ref.steps.slice();
  } else {
    const all = new Float64Array(n);
    let k = 0;
    for (const t of tracks) if (t) for (const s of t.steps) all[k++] = s;
    all.sort();
    const uniq = [];
    for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[i - 1]) uniq.push(all[i]);
    x = uniq;
    index = new Map(uniq.map((s, i) => [s, i]));
  }
  const cols = [x];
  const clean = (v) => (Number.isFinite(v) && (!log || v > 0) ? v : null);
  tracks.forEach((t, ti) => {
    const parts = bands[ti] ? ['values', 'min', 'max'] : ['values'];
    for (const p of parts) {
      const out = new Array(x.length);
      if (t) {
        const src = t[p] || t.values;
        if (index) {
          for (let i = 0; i < t.steps.length; i++) out[index.get(t.steps[i])] = clean(src[i]);
        } else {
          for (let i = 0; i < src.length; i++) out[i] = clean(src[i]);
        }
      }
      cols.push(out);
    }
  });
  return cols;
}

function sameArray(a, b) {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function fmtTick(v) {
  if (v === null || v === undefined) return '';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(0);
  return String(Number(v.toPrecision(4)));
}

function fmtStep(v) {
  if (Math.abs(v) >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (Math.abs(v) >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Math.round(v));
}

/**
 * A chart of tracks over steps.
 * opts: {title, height, tracks: [{label, color, band, points, dash}], yRange: [lo, hi] | null,
 *        log: bool, legend: bool, sync: key, onSelect(fromStep, toStep)}
 */
export class LineChart {
  constructor(container, opts) {
    this.container = container;
    this.opts = opts;
    this.xRange = null;
    this.tracks = opts.tracks;
    this.bands = this.tracks.map((t) => Boolean(t.band));
    const uPlot = uPlotLib();
    const series = [{label: 'step', value: (u, v) => (v === null || v === undefined ? '—' : String(v))}];
    const bands = [];
    const hidden = [];
    this.tracks.forEach((t, i) => {
      const color = t.color || PALETTE[i % PALETTE.length];
      const main = series.length;
      series.push({
        label: t.label,
        stroke: color,
        width: t.width || 1.25,
        dash: t.dash,
        // Eval points always; the train curve's only where they are sparse (uPlot's default).
        points: t.points ? {show: true, size: 5, fill: color} : undefined,
        spanGaps: false,
        value: (u, v) => (v === null || v === undefined ? '—' : fmtTick(v)),
      });
      if (this.bands[i]) {
        const lo = series.length;
        series.push({label: `${t.label} min`, stroke: alpha(color, 0.35), width: 0.5, points: {show: false}, value: (u, v) => (v == null ? '—' : fmtTick(v))});
        series.push({label: `${t.label} max`, stroke: alpha(color, 0.35), width: 0.5, points: {show: false}, value: (u, v) => (v == null ? '—' : fmtTick(v))});
        bands.push({series: [lo + 1, lo], fill: alpha(color, 0.16)});
        hidden.push(lo, lo + 1);
      }
      void main;
    });
    this.hiddenLegend = hidden;
    const self = this;
    const uopts = {
      title: opts.title,
      width: Math.max(200, container.clientWidth || 600),
      height: opts.height || 220,
      series,
      bands,
      legend: {show: opts.legend !== false, live: true},
      scales: {
        x: {time: false, range: (u, min, max) => self.xRange || [min, max === min ? min + 1 : max]},
        y: opts.log ? {distr: 3} : (opts.yRange ? {range: () => opts.yRange} : {}),
      },
      axes: [
        {values: (u, splits) => splits.map(fmtStep), size: 36},
        {values: (u, splits) => splits.map(fmtTick), size: 56},
      ],
      cursor: {
        drag: {x: true, y: false, setScale: false},
        // Cursor positions are shared; selections (mousedown/up) are not, or every synced
        // chart would report the same drag.
        sync: opts.sync ? {key: opts.sync, filters: {pub: (type) => type !== 'mousedown' && type !== 'mouseup', sub: () => true}} : undefined,
      },
      hooks: {
        // Non-finite values are gaps in the lines: a mark at the top of the plot shows where.
        draw: [(u) => self.drawNonfinite(u), (u) => self.drawMarkers(u)],
        setSelect: [(u) => {
          const sel = u.select;
          if (sel.width > 3 && opts.onSelect) {
            const a = u.posToVal(sel.left, 'x');
            const b = u.posToVal(sel.left + sel.width, 'x');
            opts.onSelect(Math.max(0, Math.floor(Math.min(a, b))), Math.ceil(Math.max(a, b)));
          }
          u.setSelect({left: 0, top: 0, width: 0, height: 0}, false);
        }],
      },
    };
    this.u = new uPlot(uopts, align(this.tracks.map(() => null), this.bands), container);
    this.hideBandLegend();
    this.resizer = new ResizeObserver(() => this.fit());
    this.resizer.observe(container);
  }

  hideBandLegend() {
    const rows = this.u.root.querySelectorAll('.u-legend .u-series');
    for (const i of this.hiddenLegend) if (rows[i]) rows[i].style.display = 'none';
  }

  fit() {
    const w = Math.max(200, this.container.clientWidth);
    if (Math.abs(w - this.u.width) > 1) this.u.setSize({width: w, height: this.u.height});
  }

  /** Plot area width in CSS pixels. */
  plotWidth() {
    return Math.round(this.u.bbox.width / (window.devicePixelRatio || 1));
  }

  /** Steps to mark with a dashed vertical line and a label ([{step, label}]; a fork's start). */
  setMarkers(markers) {
    const key = (markers || []).map((m) => `${m.step}:${m.label}`).join(',');
    if (key === this.markerKey) return;
    this.markerKey = key;
    this.markers = markers || [];
    this.container.dataset.markers = this.markers.map((m) => m.step).join(',');
    this.u.redraw(false);
  }

  drawMarkers(u) {
    if (!this.markers || !this.markers.length) return;
    const ctx = u.ctx;
    const dpr = window.devicePixelRatio || 1;
    ctx.save();
    ctx.strokeStyle = MARKER_COLOR;
    ctx.fillStyle = MARKER_COLOR;
    ctx.lineWidth = dpr;
    ctx.setLineDash([4 * dpr, 3 * dpr]);
    ctx.font = `${11 * dpr}px system-ui, sans-serif`;
    ctx.textBaseline = 'top';
    for (const m of this.markers) {
      const x = u.valToPos(m.step, 'x', true);
      if (x < u.bbox.left - 1 || x > u.bbox.left + u.bbox.width + 1) continue;
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
      if (m.label) ctx.fillText(m.label, x + 3 * dpr, u.bbox.top + 2 * dpr);
    }
    ctx.restore();
  }

  drawNonfinite(u) {
    if (!this.nonfinite || !this.nonfinite.length) return;
    const ctx = u.ctx;
    const dpr = window.devicePixelRatio || 1;
    const top = u.bbox.top;
    ctx.save();
    ctx.fillStyle = 'rgb(255, 0, 110)';
    for (const step of this.nonfinite) {
      const x = u.valToPos(step, 'x', true);
      if (x < u.bbox.left - 1 || x > u.bbox.left + u.bbox.width + 1) continue;
      ctx.beginPath();
      ctx.moveTo(x - 4 * dpr, top);
      ctx.lineTo(x + 4 * dpr, top);
      ctx.lineTo(x, top + 7 * dpr);
      ctx.closePath();
      ctx.fill();
    }
    ctx.restore();
  }

  /** data: one {steps, values, min, max} (or null) per track; xRange: [lo, hi] or null. */
  setData(data, xRange) {
    this.xRange = xRange || null;
    // Steps where a track's value (or its bucket's extremes) is NaN or infinite.
    const bad = new Set();
    for (const t of data) {
      if (!t) continue;
      for (let i = 0; i < t.steps.length; i++) {
        const v = t.values[i];
        if ((typeof v === 'number' && !Number.isFinite(v))
          || (t.max && typeof t.max[i] === 'number' && !Number.isFinite(t.max[i]))) bad.add(t.steps[i]);
      }
      if (bad.size > 5000) break;
    }
    this.nonfinite = [...bad];
    this.container.dataset.nonfinite = String(bad.size);
    const cols = align(data, this.bands, Boolean(this.opts.log));
    this.u.setData(cols, true);
    // What is drawn, for tests and for a look in the inspector.
    this.container.dataset.points = String(cols[0].length);
    this.container.dataset.range = this.xRange ? `${this.xRange[0]}-${this.xRange[1]}` : '';
  }

  destroy() {
    this.resizer.disconnect();
    this.u.destroy();
  }
}
