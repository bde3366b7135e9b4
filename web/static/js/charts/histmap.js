// One layer's gradient histograms over time as a heat map on a canvas: x the recorded steps (a
// histogram stands for the steps up to the next recorded one), y the log10|dL/dW| bins (largest
// magnitudes on top, labelled in powers of ten), color the share of the layer's weights in the
// bin (viridis on a log or square-root scale; an empty bin is left pale). The weights outside the
// bins get rows of their own: NaN/inf and >= 10^hi above the map, < 10^lo and exact zeros below
// it. Hovering shows a cell in a tip and the step's outside-the-grid counts in a line under the
// map (the last step's when not hovering). Dragging across the map selects a step range. Colors,
// margins, the step axis and dragging are the layers x steps heat map's (canvas.js).

import {h, replace} from '../dom.js';
import * as fmt from '../format.js';
import {AXIS_COLOR, EMPTY_COLOR, FONT, LABEL_COLOR, MARGIN, NONFINITE_COLOR,
  bindDragSelect, css, drawStepAxis, legendBar, placeTip, sizeCanvas, swatch, viridis, redrawOnResize} from './canvas.js';

const BIN_H = 4; // CSS px per bin row
const EXTRA_H = 9; // CSS px per row of the counts outside the bins
const GAP = 5; // between the map and those rows
const NO_DATA_COLOR = [255, 255, 255]; // steps without a histogram

/** The rows outside the bins, top to bottom around the map. */
const ABOVE = ['nonfinite', 'overflow'];
const BELOW = ['underflow', 'zeros'];
const KIND_NAMES = {nonfinite: 'NaN / inf', overflow: 'overflow', underflow: 'underflow', zeros: 'zeros'};

const SUP = {'-': '⁻', 0: '⁰', 1: '¹', 2: '²', 3: '³', 4: '⁴', 5: '⁵', 6: '⁶', 7: '⁷', 8: '⁸', 9: '⁹'};

/** "10⁻¹²" for 10^e (an integer e). */
export function pow10Text(e) {
  return `10${String(e).split('').map((c) => SUP[c] ?? c).join('')}`;
}

/** A histogram's weights: its bins and everything outside them. */
export function total(hist) {
  let n = hist.zeros + hist.underflow + hist.overflow + hist.nonfinite;
  for (const c of hist.counts) n += c;
  return n;
}

/**
 * new Histmap(container, {onSelect(fromStep, toStep), id})
 * histmap.setData({steps, hists, lo, hi, log10Lo, perDecade, scale, label, every}): hists[i] =
 * {counts, zeros, underflow, overflow, nonfinite} at steps[i] (ascending); the x axis covers steps
 * lo..hi; scale 'log' or 'sqrt'; `every`: the steps one histogram stands for when there is only
 * one (else the spacing of the steps).
 */
export class Histmap {
  constructor(container, opts = {}) {
    this.opts = opts;
    const id = opts.id || 'histmap';
    this.canvas = h('canvas', {class: 'histmap-canvas', id: `${id}-canvas`});
    this.selection = h('div', {class: 'histmap-selection', hidden: true});
    this.tooltip = h('div', {class: 'histmap-tip', hidden: true});
    this.cursor = h('div', {class: 'histmap-cursor', hidden: true}); // the hovered step's column
    this.readout = h('div', {class: 'histmap-readout', id: `${id}-readout`});
    this.legend = h('div', {class: 'histmap-legend'});
    this.el = h('div', {class: 'histmap', id, dataset: {steps: 0, state: 'empty'}},
      h('div', {class: 'histmap-plot'}, this.canvas, this.cursor, this.selection, this.tooltip),
      this.readout,
      this.legend);
    container.append(this.el);
    this.data = null;
    this.cols = null; // per step: [x0, x1) in plot px
    this.off = document.createElement('canvas');
    bindDragSelect(this.canvas, this.selection, {
      plotWidth: () => this.plotWidthCss(),
      enabled: () => Boolean(this.data && this.data.steps.length),
      onHover: (p) => this.hover(p),
      onLeave: () => this.unhover(),
      onSelect: (x0, x1) => {
        if (!this.opts.onSelect) return;
        const a = this.stepAt(x0);
        const b = this.stepAt(x1);
        if (a !== null && b !== null && b > a) this.opts.onSelect(a, b);
      },
    });
    this.resizer = redrawOnResize(this);
  }

  /** Width of the plotting area in CSS pixels: how many steps can be told apart. */
  plotWidth() {
    return Math.max(50, Math.floor(this.plotWidthCss()));
  }

  plotWidthCss() {
    return (this.el.clientWidth || 800) - MARGIN.left - MARGIN.right;
  }

  setState(state) {
    this.el.dataset.state = state;
  }

  setData(data) {
    this.data = data;
    this.draw();
  }

  /** The rows' places (CSS px from the top): each outside row and the map. */
  layout(nBins) {
    const rows = {};
    let y = MARGIN.top;
    for (const k of ABOVE) {
      rows[k] = y;
      y += EXTRA_H + 2;
    }
    y += GAP - 2;
    const mapTop = y;
    y += nBins * BIN_H + GAP;
    for (const k of BELOW) {
      rows[k] = y;
      y += EXTRA_H + 2;
    }
    return {rows, mapTop, mapH: nBins * BIN_H, bottom: y - 2};
  }

  /** The step (rounded, within lo..hi) at x (CSS px within the canvas). */
  stepAt(px) {
    const d = this.data;
    if (!d) return null;
    const s = d.lo + ((px - MARGIN.left) / this.plotWidthCss()) * (d.hi + 1 - d.lo);
    return Math.round(Math.min(d.hi, Math.max(d.lo, s)));
  }

  /** Index of the histogram drawn at plot x (CSS px from the plot's left), or -1. */
  columnAt(x) {
    if (!this.cols) return -1;
    const px = Math.floor(x);
    for (let i = 0; i < this.cols.length; i++) {
      const [a, b] = this.cols[i];
      if (px >= a && px < b) return i;
    }
    return -1;
  }

  /** Share of the weights of each cell and the color scale over them. */
  scale(d) {
    let hi = 0;
    let lo = Infinity;
    for (const hist of d.hists) {
      const n = total(hist);
      if (!n) continue;
      for (const c of [...hist.counts, hist.zeros, hist.underflow, hist.overflow]) {
        if (!c) continue;
        const f = c / n;
        if (f > hi) hi = f;
        if (f < lo) lo = f;
      }
    }
    if (!(hi > 0)) {
      hi = 1;
      lo = 1e-3;
    }
    if (d.scale === 'sqrt') {
      return {kind: 'sqrt', lo: 0, hi, t: (f) => Math.sqrt(f / hi)};
    }
    const a = Math.log10(lo);
    let b = Math.log10(hi);
    if (b - a < 1e-9) b = a + 1;
    return {kind: 'log', lo, hi, t: (f) => (Math.log10(f) - a) / (b - a)};
  }

  draw() {
    const d = this.data;
    const cssW = this.el.clientWidth || 800;
    const nBins = d && d.hists.length ? d.hists[0].counts.length : 64;
    const lay = this.layout(nBins);
    const cssH = lay.bottom + MARGIN.bottom;
    const g = sizeCanvas(this.canvas, cssW, cssH);
    const pw = Math.max(1, Math.floor(cssW - MARGIN.left - MARGIN.right));
    const perDecade = d ? d.perDecade : 4;
    const log10Lo = d ? d.log10Lo : -12;
    const log10Hi = log10Lo + nBins / perDecade;
    // Background: no data.
    g.fillStyle = css(NO_DATA_COLOR);
    g.strokeStyle = '#e5e7eb';
    for (const [y, hgt] of [[lay.mapTop, lay.mapH], ...[...ABOVE, ...BELOW].map((k) => [lay.rows[k], EXTRA_H])]) {
      g.fillRect(MARGIN.left, y, pw, hgt);
      g.strokeRect(MARGIN.left + 0.5, y + 0.5, pw - 1, hgt - 1);
    }
    const n = d ? d.steps.length : 0;
    this.cols = [];
    let withNonfinite = 0;
    let scale = null;
    if (n) {
      scale = this.scale(d);
      // Each histogram from its step to the next one's (the last one for the steps' spacing).
      const span = d.hi + 1 - d.lo;
      const gap = n > 1 ? (d.steps[n - 1] - d.steps[0]) / (n - 1) : Math.max(1, d.every || 1);
      const xOf = (s) => ((s - d.lo) / span) * pw;
      for (let i = 0; i < n; i++) {
        const end = i + 1 < n ? d.steps[i + 1] : Math.min(d.hi + 1, d.steps[i] + gap);
        let x0 = Math.max(0, Math.round(xOf(d.steps[i])));
        let x1 = Math.min(pw, Math.round(xOf(end)));
        if (x1 <= x0) x1 = x0 + 1; // every histogram gets a pixel column at least
        if (x0 >= pw) x0 = pw - 1;
        this.cols.push([x0, Math.min(pw, x1)]);
      }
      // One pixel per plot column and per row (nonfinite, overflow, bins from the top, underflow,
      // zeros), scaled to the rows' heights without smoothing.
      const R = nBins + 4;
      this.off.width = pw;
      this.off.height = R;
      const og = this.off.getContext('2d');
      const img = og.createImageData(pw, R);
      const px = img.data;
      const put = (x, row, col) => {
        const o = (row * pw + x) * 4;
        px[o] = col[0];
        px[o + 1] = col[1];
        px[o + 2] = col[2];
        px[o + 3] = 255;
      };
      for (let x = 0; x < pw; x++) for (let r = 0; r < R; r++) put(x, r, NO_DATA_COLOR);
      const color = (c, tot) => (c > 0 && tot > 0 ? viridis(scale.t(c / tot)) : EMPTY_COLOR);
      for (let i = 0; i < n; i++) {
        const hist = d.hists[i];
        const tot = total(hist);
        if (hist.nonfinite > 0) withNonfinite++;
        const column = [
          hist.nonfinite > 0 ? NONFINITE_COLOR : EMPTY_COLOR,
          color(hist.overflow, tot),
        ];
        for (let b = nBins - 1; b >= 0; b--) column.push(color(hist.counts[b] || 0, tot));
        column.push(color(hist.underflow, tot), color(hist.zeros, tot));
        const [x0, x1] = this.cols[i];
        for (let x = x0; x < x1; x++) for (let r = 0; r < R; r++) put(x, r, column[r]);
      }
      og.putImageData(img, 0, 0);
      g.imageSmoothingEnabled = false;
      const band = (row, rows, y, hgt) => g.drawImage(this.off, 0, row, pw, rows, MARGIN.left, y, pw, hgt);
      band(0, 1, lay.rows.nonfinite, EXTRA_H);
      band(1, 1, lay.rows.overflow, EXTRA_H);
      band(2, nBins, lay.mapTop, lay.mapH);
      band(nBins + 2, 1, lay.rows.underflow, EXTRA_H);
      band(nBins + 3, 1, lay.rows.zeros, EXTRA_H);
    }
    // The y axis: powers of ten at decade edges (the ends left to the outside rows' labels).
    g.fillStyle = LABEL_COLOR;
    g.strokeStyle = AXIS_COLOR;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    g.font = `10px ${FONT}`;
    const decadeH = perDecade * BIN_H;
    const labelEvery = decadeH >= 20 ? 1 : 2;
    for (let e = Math.ceil(log10Lo); e <= log10Hi; e++) {
      const y = lay.mapTop + (log10Hi - e) * decadeH;
      g.beginPath();
      g.moveTo(MARGIN.left - 4, Math.round(y) + 0.5);
      g.lineTo(MARGIN.left, Math.round(y) + 0.5);
      g.stroke();
      if (e > log10Lo && e < log10Hi && (e - log10Lo) % labelEvery === 0) g.fillText(pow10Text(e), MARGIN.left - 6, y);
    }
    g.font = `9px ${FONT}`;
    const sideLabel = {
      nonfinite: 'NaN/inf',
      overflow: `≥ ${pow10Text(log10Hi)}`,
      underflow: `< ${pow10Text(log10Lo)}`,
      zeros: '0',
    };
    for (const k of [...ABOVE, ...BELOW]) g.fillText(sideLabel[k], MARGIN.left - 6, lay.rows[k] + EXTRA_H / 2 + 0.5);
    if (d) drawStepAxis(g, {lo: d.lo, hi: d.hi, span: d.hi + 1 - d.lo, x0: MARGIN.left, width: pw, y: lay.bottom});
    this.lay = lay;
    this.nBins = nBins;
    this.el.dataset.steps = String(n);
    this.el.dataset.nonfinite = String(withNonfinite);
    this.el.dataset.scale = d ? d.scale : '';
    this.drawLegend(scale, d, withNonfinite);
    this.unhover();
  }

  drawLegend(scale, d, withNonfinite) {
    if (!scale) {
      replace(this.legend);
      return;
    }
    const share = (f) => (f === 0 ? '0' : fmt.pct(f, f < 0.01 ? 2 : 1));
    replace(this.legend,
      h('span', {class: 'legend-title'}, d.label || 'share of the layer\'s weights'),
      h('span', {class: 'legend-scale'},
        h('span', {class: 'legend-lo'}, share(scale.lo)),
        legendBar(),
        h('span', {class: 'legend-hi'}, share(scale.hi)),
        h('span', {class: 'muted'}, scale.kind === 'log' ? ' (log scale)' : ' (square-root scale)')),
      swatch(EMPTY_COLOR, 'none in the bin', 'empty'),
      swatch(NONFINITE_COLOR, 'NaN / inf', 'nonfinite'),
      swatch(NO_DATA_COLOR, 'no histogram', 'nodata'),
      withNonfinite ? h('span', {class: 'legend-warn'}, `NaN / inf gradients at ${fmt.int(withNonfinite)} step${withNonfinite === 1 ? '' : 's'}`) : null);
  }

  /** The counts outside the bins at histogram i (the last one when i is null). */
  showReadout(i) {
    const d = this.data;
    if (!d || !d.steps.length) {
      replace(this.readout);
      return;
    }
    const k = i === null || i < 0 ? d.steps.length - 1 : i;
    const hist = d.hists[k];
    const tot = total(hist);
    const part = (kind) => {
      const c = hist[kind];
      return h('span', {class: `readout-item${kind === 'nonfinite' && c > 0 ? ' legend-warn' : ''}`, dataset: {kind, count: c}},
        `${KIND_NAMES[kind]} ${fmt.int(c)}${c > 0 && tot > 0 ? ` (${fmt.pct(c / tot, c / tot < 0.01 ? 2 : 1)})` : ''}`);
    };
    this.readout.dataset.step = String(d.steps[k]);
    replace(this.readout,
      h('span', {class: 'strong'}, `step ${fmt.int(d.steps[k])}`),
      h('span', {class: 'muted'}, `${fmt.int(tot)} weights`),
      h('span', null, `${fmt.int(tot - hist.zeros - hist.underflow - hist.overflow - hist.nonfinite)} in ${pow10Text(d.log10Lo)}…${pow10Text(d.log10Lo + hist.counts.length / d.perDecade)}`),
      ['zeros', 'underflow', 'overflow', 'nonfinite'].map(part),
      i === null ? h('span', {class: 'muted'}, '(last step shown; hover for others)') : null);
  }

  hover(p) {
    const d = this.data;
    const lay = this.lay;
    const x = p.x - MARGIN.left;
    const i = d && d.steps.length && lay && x >= 0 && x < this.plotWidthCss() ? this.columnAt(x) : -1;
    if (i < 0) {
      this.unhover();
      return;
    }
    this.showReadout(i);
    const [x0, x1] = this.cols[i];
    this.cursor.hidden = false;
    Object.assign(this.cursor.style, {left: `${MARGIN.left + x0 - 1}px`, width: `${x1 - x0 + 2}px`, height: `${lay.bottom - MARGIN.top}px`});
    const hist = d.hists[i];
    const tot = total(hist);
    let what = null;
    let c = 0;
    if (p.y >= lay.mapTop && p.y < lay.mapTop + lay.mapH) {
      const b = this.nBins - 1 - Math.floor((p.y - lay.mapTop) / BIN_H);
      const lo = d.log10Lo + b / d.perDecade;
      const hi = d.log10Lo + (b + 1) / d.perDecade;
      what = `|g| in [${fmt.num(10 ** lo, 3)}, ${fmt.num(10 ** hi, 3)})`;
      c = hist.counts[b] || 0;
    } else {
      for (const k of [...ABOVE, ...BELOW]) {
        if (p.y >= lay.rows[k] && p.y < lay.rows[k] + EXTRA_H) {
          what = KIND_NAMES[k];
          c = hist[k];
        }
      }
    }
    if (what === null) {
      this.tooltip.hidden = true;
      return;
    }
    placeTip(this.tooltip, `step ${fmt.int(d.steps[i])} · ${what} · ${fmt.int(c)} of ${fmt.int(tot)} (${fmt.pct(tot ? c / tot : 0, 2)})`,
      p, this.el.clientWidth || 800);
  }

  unhover() {
    this.tooltip.hidden = true;
    this.cursor.hidden = true;
    this.showReadout(null);
  }

  destroy() {
    this.resizer.disconnect();
    this.el.remove();
  }
}
