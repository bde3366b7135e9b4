// The job page's "Gradient histograms" card: one layer's log10|dL/dW| histograms over the recorded
// steps (GET /api/jobs/<id>/histograms, at most one step per pixel of the plot), for jobs submitted
// with --histogram-every N; the card stays hidden for the others (no request is made for a job
// whose spec says it records none). Not live: fetched when the job has steps, again when its live
// stream ends, when the zoomed step range changes and when another layer is picked. The layer is
// in the URL as ?hlayer= (default: the first layer, the one that vanishes first), the color scale
// as ?hscale=sqrt (default log).

import {h, replace} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../format.js';
import {Histmap} from '../charts/histmap.js';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export class HistogramPanel {
  /** ctx: the page's (query, setQuery, signal, fail); onSelect(fromStep, toStep): a dragged range. */
  constructor(ctx, {jobId, onSelect}) {
    this.ctx = ctx;
    this.jobId = jobId;
    this.job = null;
    this.range = null; // {from, to} while the page is zoomed
    const l = Number(ctx.query.get('hlayer'));
    this.layer = Number.isInteger(l) && l >= 0 ? l : 0;
    this.scale = ctx.query.get('hscale') === 'sqrt' ? 'sqrt' : 'log';
    this.nLayers = 0;
    this.seen = false; // some answer had histograms: the card is shown
    this.fetched = false;
    this.fetchedEnded = false; // the last fetch was of an ended job: nothing more to come
    this.seq = 0;
    this.abort = null;
    this.answer = null; // {steps, hists, from, to, layer} of the last answer

    this.layerSelect = h('select', {id: 'hist-layer', 'aria-label': 'histogram layer', onchange: () => this.setLayer(Number(this.layerSelect.value))});
    this.scaleSelect = h('select', {id: 'hist-scale', 'aria-label': 'histogram color scale', onchange: () => this.setScale(this.scaleSelect.value)},
      h('option', {value: 'log', selected: this.scale === 'log'}, 'log'),
      h('option', {value: 'sqrt', selected: this.scale === 'sqrt'}, 'square root'));
    this.info = h('span', {class: 'muted', id: 'hist-info'});
    this.message = h('div', {class: 'muted', id: 'hist-message', hidden: true});
    const mapBox = h('div', {class: 'heat-wrap'});
    this.el = h('div', {class: 'card', id: 'histograms', hidden: true},
      h('div', {class: 'toolbar'},
        h('h2', null, 'Gradient histograms'),
        h('label', null, 'layer ', this.layerSelect),
        h('label', null, 'color ', this.scaleSelect),
        h('span', {class: 'muted'}, 'log10 |dL/dW| per recorded step; color: share of the layer\'s weights in each bin'),
        h('span', {class: 'spacer'}),
        this.info),
      this.message,
      mapBox);
    this.map = new Histmap(mapBox, {onSelect, id: 'histmap'});
  }

  /** Does the job record histograms? true, false, or null when its spec does not say. */
  expected() {
    const every = this.job && this.job.spec ? this.job.spec.histogram_every : undefined;
    if (every === undefined || every === null) return null;
    return Number(every) > 0;
  }

  /** The job record, as first read, from the live stream, and (`final`) once the stream ended. */
  update(job, {final = false} = {}) {
    this.job = job;
    this.setLayers(fmt.depthOf(job.spec) === null ? 0 : fmt.depthOf(job.spec) + 1);
    // Nothing to read before the first step (a queued job, or one cancelled before it ran).
    if (this.expected() === false || !(job.steps_done > 0)) return;
    if (final ? !this.fetchedEnded : !this.fetched) void this.fetch();
  }

  /** The zoomed step range (null, null: the whole run). */
  setRange(from, to) {
    const r = from === null || from === undefined ? null : {from, to};
    const same = (a, b) => (a === null ? b === null : b !== null && a.from === b.from && a.to === b.to);
    if (same(r, this.range)) return;
    this.range = r;
    if (this.job && this.expected() !== false && this.job.steps_done > 0) void this.fetch();
  }

  setLayers(n) {
    if (n === this.nLayers || !(n > 0)) return;
    this.nLayers = n;
    if (this.layer >= n) this.layer = 0;
    replace(this.layerSelect, Array.from({length: n}, (_, l) => h('option', {value: l, selected: l === this.layer}, fmt.layerName(l, n))));
    this.layerSelect.value = String(this.layer);
  }

  setLayer(l) {
    if (!Number.isInteger(l) || l === this.layer) return;
    this.layer = l;
    this.ctx.setQuery({hlayer: l === 0 ? null : l});
    void this.fetch();
  }

  setScale(s) {
    this.scale = s === 'sqrt' ? 'sqrt' : 'log';
    this.ctx.setQuery({hscale: this.scale === 'log' ? null : this.scale});
    this.draw();
  }

  /** The x axis: the zoomed range, else the planned run (as the layers x steps heat map's). */
  domain(range) {
    if (range) return [range.from, range.to];
    const steps = Number(this.job && this.job.spec && this.job.spec.steps) || 1;
    return [0, Math.max(0, steps - 1)];
  }

  async fetch() {
    const seq = ++this.seq;
    if (this.abort) this.abort.abort();
    const ctl = new AbortController();
    this.abort = ctl;
    const onLeave = () => ctl.abort();
    this.ctx.signal.addEventListener('abort', onLeave, {once: true});
    this.fetched = true;
    this.fetchedEnded = TERMINAL.has(this.job.state);
    // Shown while loading when the spec says there are histograms (the plot needs its width);
    // when it does not say, only once an answer had some.
    if (this.expected() === true || this.seen) this.el.hidden = false;
    this.map.setState('loading');
    const maxSteps = this.map.plotWidth();
    const layer = this.layer;
    const range = this.range;
    this.map.el.dataset.maxSteps = String(maxSteps);
    try {
      const r = await api.histograms(this.jobId,
        {layers: [layer], from: range ? range.from : null, to: range ? range.to : null, max_steps: maxSteps},
        {signal: ctl.signal});
      if (seq !== this.seq) return;
      const lh = r.layers.find((x) => x.layer === layer);
      this.answer = {steps: r.steps, hists: lh ? lh.histograms : [], layer, range, log10Lo: r.log10_lo, perDecade: r.per_decade};
      if (r.steps.length) this.seen = true;
      this.el.hidden = !this.seen;
      this.map.setState('done');
      this.draw();
    } catch (e) {
      if (seq !== this.seq || (e && e.name === 'AbortError')) return;
      this.map.setState('error');
      if (e instanceof api.ApiError && e.status === 401) {
        this.ctx.fail(e);
        return;
      }
      this.el.hidden = false;
      this.message.hidden = false;
      replace(this.message, h('span', {class: 'error', role: 'alert'}, `histograms: ${e.message}`));
    } finally {
      this.ctx.signal.removeEventListener('abort', onLeave);
    }
  }

  draw() {
    const a = this.answer;
    if (!a || !this.job) return;
    const [lo, hi] = this.domain(a.range);
    const n = a.steps.length;
    const name = fmt.layerName(a.layer, this.nLayers || a.layer + 1);
    this.map.el.dataset.layer = String(a.layer);
    this.map.el.dataset.range = `${lo}-${hi}`;
    this.map.setData({
      steps: a.steps,
      hists: a.hists,
      lo,
      hi,
      log10Lo: a.log10Lo,
      perDecade: a.perDecade,
      scale: this.scale,
      every: Number(this.job.spec && this.job.spec.histogram_every) || 1,
      label: `share of ${name}'s weights per bin`,
    });
    const every = Number(this.job.spec && this.job.spec.histogram_every) || 0;
    const ended = TERMINAL.has(this.job.state);
    // Recorded in the range (every `every`-th step from 0, up to the last one trained).
    const first = every ? Math.ceil(lo / every) * every : 0;
    const lastTrained = Math.min(hi, (Number(this.job.steps_done) || 0) - 1);
    const recorded = every && lastTrained >= first ? Math.floor((lastTrained - first) / every) + 1 : n;
    const plural = (k, word) => `${fmt.int(k)} ${word}${k === 1 ? '' : 's'}`;
    replace(this.info,
      n ? (recorded > n ? `${fmt.int(n)} of ${plural(recorded, 'histogram')} (evenly spread)` : plural(n, 'histogram')) : '',
      n && every ? `, recorded every ${every === 1 ? 'step' : `${fmt.int(every)} steps`}` : '',
      n && !ended ? ` · as of step ${fmt.int(a.steps[n - 1])}, read again when the job ends` : '');
    if (n === 0) {
      this.message.hidden = false;
      replace(this.message, a.range ? `no histograms recorded in steps ${fmt.int(a.range.from)}–${fmt.int(a.range.to)}` : 'no histograms recorded yet');
    } else {
      this.message.hidden = true;
      replace(this.message);
    }
  }

  destroy() {
    this.seq++;
    if (this.abort) this.abort.abort();
    this.map.destroy();
  }
}
