// A layers x steps heat map drawn on a canvas from an ImageData of one pixel column per step
// bucket and one row per layer (scaled up without smoothing). Colors: viridis, on a log scale
// for norms and ratios, linear for fractions; NaN/inf get their own color, and so do values a
// log scale cannot place (<= 0). A legend names all of them. Rows are labelled layer 1..D and
// "output"; the step axis runs below. Dragging across the map selects a step range. Colors,
// margins, axis, legend bar and dragging are shared with the other canvas charts (canvas.js).

import {h, replace} from '../dom.js';
import * as fmt from '../format.js';
import {EMPTY_COLOR, FONT, LABEL_COLOR, MARGIN, NONFINITE_COLOR, NONPOSITIVE_COLOR,
  bindDragSelect, css, drawStepAxis, legendBar, placeTip, sizeCanvas, swatch, viridis, redrawOnResize} from './canvas.js';

/**
 * new Heatmap(container, {onSelect(fromStep, toStep), rowHeight})
 * heatmap.setData({grid, lo, hi, width, buckets, log, label}): grid[layer][bucket] (NaN for
 * non-finite, undefined for no data); bucket k covers steps [lo + k*width, lo + (k+1)*width),
 * buckets = ceil((hi - lo + 1) / width).
 */
export class Heatmap {
  constructor(container, opts = {}) {
    this.opts = opts;
    this.canvas = h('canvas', {class: 'heatmap-canvas', id: 'heatmap-canvas'});
    this.selection = h('div', {class: 'heatmap-selection', hidden: true});
    this.tooltip = h('div', {class: 'heatmap-tip', hidden: true});
    this.legend = h('div', {class: 'heatmap-legend'});
    this.el = h('div', {class: 'heatmap', id: 'heatmap', dataset: {steps: 0, state: 'empty'}},
      h('div', {class: 'heatmap-plot'}, this.canvas, this.selection, this.tooltip),
      this.legend);
    container.append(this.el);
    this.data = null;
    this.off = document.createElement('canvas');
    this.bindPointer();
    this.resizer = redrawOnResize(this);
  }

  /** Width of the plotting area in CSS pixels: how many buckets fit. */
  plotWidth() {
    const w = this.el.clientWidth || 800;
    return Math.max(50, Math.floor(w - MARGIN.left - MARGIN.right));
  }

  setState(state) {
    this.el.dataset.state = state;
  }

  setData(data) {
    this.data = data;
    this.draw();
  }

  /** Steps to mark with a dashed vertical line ([{step}]; a fork's start). */
  setMarkers(markers) {
    const key = (markers || []).map((m) => m.step).join(',');
    if (key === this.el.dataset.markers) return;
    this.markers = markers || [];
    this.el.dataset.markers = key;
    if (this.data) this.draw();
  }

  /** Step range [lo, hi] of a bucket-aligned x position (CSS px within the canvas). */
  stepAt(px) {
    const d = this.data;
    if (!d) return null;
    const pw = this.plotWidth();
    const span = d.buckets * d.width;
    const s = d.lo + ((px - MARGIN.left) / pw) * span;
    return Math.round(Math.min(d.hi, Math.max(d.lo, s)));
  }

  draw() {
    const d = this.data;
    const cssW = this.el.clientWidth || 800;
    const nLayers = d ? d.grid.length : 0;
    const rowH = nLayers ? Math.max(6, Math.min(22, Math.floor(300 / nLayers))) : 20;
    const plotH = Math.max(rowH, nLayers * rowH);
    const cssH = plotH + MARGIN.top + MARGIN.bottom;
    const g = sizeCanvas(this.canvas, cssW, cssH);
    const pw = cssW - MARGIN.left - MARGIN.right;
    g.fillStyle = css(EMPTY_COLOR);
    g.fillRect(MARGIN.left, MARGIN.top, pw, plotH);
    if (!d || nLayers === 0) {
      this.el.dataset.steps = '0';
      this.el.dataset.nonfinite = '0';
      replace(this.legend);
      return;
    }
    const nb = d.buckets;
    const scale = this.scale(d);
    // One pixel per (bucket, layer), scaled up without smoothing.
    this.off.width = Math.max(1, nb);
    this.off.height = nLayers;
    const og = this.off.getContext('2d');
    const img = og.createImageData(Math.max(1, nb), nLayers);
    const px = img.data;
    let filled = 0;
    const seen = new Uint8Array(nb);
    let nonfinite = 0; // cells
    let nonpositive = false;
    for (let l = 0; l < nLayers; l++) {
      const row = d.grid[l];
      // A job recorded every n-th step has buckets with no point between its recorded ones:
      // each recorded value holds until the next, as it stands for the steps in between.
      let last = -1;
      for (let k = nb - 1; k >= 0 && last < 0; k--) if (row && row[k] !== undefined && row[k] !== null) last = k;
      let held = null;
      for (let k = 0; k < nb; k++) {
        const v = row ? row[k] : undefined;
        let col = held !== null && k < last ? held : EMPTY_COLOR;
        if (v !== undefined && v !== null) {
          if (!seen[k]) {
            seen[k] = 1;
            filled++;
          }
          if (!Number.isFinite(v)) {
            col = NONFINITE_COLOR;
            nonfinite += 1;
          } else if (d.log && v <= 0) {
            col = NONPOSITIVE_COLOR;
            nonpositive = true;
          } else {
            col = viridis(scale.t(v));
          }
          held = col;
        }
        const o = (l * nb + k) * 4;
        px[o] = col[0];
        px[o + 1] = col[1];
        px[o + 2] = col[2];
        px[o + 3] = 255;
      }
    }
    og.putImageData(img, 0, 0);
    g.imageSmoothingEnabled = false;
    // The buckets cover [lo, lo + nb*width): the last may reach past hi.
    g.drawImage(this.off, 0, 0, nb, nLayers, MARGIN.left, MARGIN.top, pw, plotH);
    // Row labels.
    g.fillStyle = LABEL_COLOR;
    g.font = `${Math.min(12, Math.max(9, rowH - 2))}px ${FONT}`;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    const every = Math.ceil(11 / rowH);
    for (let l = 0; l < nLayers; l++) {
      if (l !== nLayers - 1 && l % every !== 0) continue;
      g.fillText(fmt.layerName(l, nLayers), MARGIN.left - 6, MARGIN.top + l * rowH + rowH / 2);
    }
    drawStepAxis(g, {lo: d.lo, hi: d.hi, span: nb * d.width, x0: MARGIN.left, width: pw, y: MARGIN.top + plotH});
    for (const m of this.markers || []) {
      const x = MARGIN.left + ((m.step - d.lo) / (nb * d.width)) * pw;
      if (x < MARGIN.left || x > MARGIN.left + pw) continue;
      g.save();
      g.strokeStyle = '#fff';
      g.setLineDash([4, 3]);
      g.beginPath();
      g.moveTo(x, MARGIN.top);
      g.lineTo(x, MARGIN.top + plotH);
      g.stroke();
      g.restore();
    }
    this.el.dataset.steps = String(filled);
    this.el.dataset.nonfinite = String(nonfinite);
    this.el.dataset.buckets = String(nb);
    this.drawLegend(scale, d, nonfinite, nonpositive);
  }

  /** The color scale over the finite (positive, on a log scale) values of the grid. */
  scale(d) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const row of d.grid) {
      if (!row) continue;
      for (const v of row) {
        if (v === undefined || v === null || !Number.isFinite(v) || (d.log && v <= 0)) continue;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    if (d.fixed) [lo, hi] = d.fixed;
    if (!(lo <= hi)) {
      lo = d.log ? 1e-3 : 0;
      hi = d.log ? 1 : 1;
    }
    if (d.log) {
      const a = Math.log10(lo);
      let b = Math.log10(hi);
      if (b - a < 1e-9) b = a + 1;
      return {lo, hi, log: true, a, b, t: (v) => (Math.log10(v) - a) / (b - a)};
    }
    let b = hi;
    if (b - lo < 1e-12) b = lo + 1;
    return {lo, hi: b, log: false, t: (v) => (v - lo) / (b - lo)};
  }

  drawLegend(scale, d, nonfinite, nonpositive) {
    const bar = legendBar();
    replace(this.legend,
      h('span', {class: 'legend-title'}, d.label || ''),
      h('span', {class: 'legend-scale'},
        h('span', {class: 'legend-lo'}, fmt.num(scale.lo, 3)),
        bar,
        h('span', {class: 'legend-hi'}, fmt.num(scale.hi, 3)),
        h('span', {class: 'muted'}, scale.log ? ' (log scale)' : ' (linear)')),
      swatch(NONFINITE_COLOR, 'NaN / inf', 'nonfinite'),
      scale.log ? swatch(NONPOSITIVE_COLOR, '≤ 0', 'nonpositive') : null,
      swatch(EMPTY_COLOR, 'no data', 'empty'),
      nonfinite ? h('span', {class: 'legend-warn'}, 'non-finite values present') : null,
      nonpositive ? h('span', {class: 'muted'}, 'some values ≤ 0') : null);
  }

  bindPointer() {
    bindDragSelect(this.canvas, this.selection, {
      plotWidth: () => this.plotWidthCss(),
      enabled: () => Boolean(this.data),
      onHover: (p) => this.hover(p),
      onLeave: () => { this.tooltip.hidden = true; },
      onSelect: (x0, x1) => {
        if (!this.opts.onSelect) return;
        const a = this.stepAt(x0);
        const b = this.stepAt(x1);
        if (a !== null && b !== null && b > a) this.opts.onSelect(a, b);
      },
    });
  }

  plotWidthCss() {
    return (this.el.clientWidth || 800) - MARGIN.left - MARGIN.right;
  }

  hover(p) {
    const d = this.data;
    if (!d || p.x < MARGIN.left || p.x > MARGIN.left + this.plotWidthCss()) {
      this.tooltip.hidden = true;
      return;
    }
    const nLayers = d.grid.length;
    const rowH = nLayers ? Math.max(6, Math.min(22, Math.floor(300 / nLayers))) : 20;
    const l = Math.floor((p.y - MARGIN.top) / rowH);
    if (l < 0 || l >= nLayers) {
      this.tooltip.hidden = true;
      return;
    }
    const k = Math.floor(((p.x - MARGIN.left) / this.plotWidthCss()) * d.buckets);
    const v = d.grid[l] ? d.grid[l][k] : undefined;
    const a = d.lo + k * d.width;
    const b = Math.min(d.hi, a + d.width - 1);
    placeTip(this.tooltip, `${fmt.layerName(l, nLayers)} · steps ${a === b ? a : `${a}–${b}`} · ${v === undefined ? 'no data' : fmt.num(v)}`,
      p, this.el.clientWidth || 800);
  }

  destroy() {
    this.resizer.disconnect();
    this.el.remove();
  }
}
