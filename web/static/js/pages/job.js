// `/jobs/<id>`: one job. Header, summary, loss and accuracy curves (train, with each bucket's
// min/max band, and the held-out evals), the layers x steps heat map of a chosen metric, the
// per-layer table beside the mean-field prediction, and the spec. Live from
// GET /api/jobs/<id>/live; a step range dragged on a chart or the heat map is fetched from
// /history at the chart's resolution ("Reset zoom" goes back to the live view).
//
// Timings (performance.measure, and window.__gradlabTimings): 'gradlab:first-draw' from the
// navigation (or in-app route change) to the first heat map and curves drawn with data,
// 'gradlab:full-draw' to the drawing after the stream's `end` (a finished job: everything),
// 'gradlab:zoom' from a selection to its redraw.
//
// Jobs that record gradient histograms also get their card (job_histograms.js): it follows the
// zoomed range and is read again when the live stream ends. Rename, labels and Delete are
// job_actions.js's: its elements sit in the head and under it, kept across redraws.

import {h, replace, link, badge, kvTable} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../format.js';
import {showError, setConn} from '../banner.js';
import {LineChart} from '../charts/lines.js';
import {Heatmap} from '../charts/heatmap.js';
import {HistogramPanel} from './job_histograms.js';
import {JobActions} from './job_actions.js';
import {SeriesSet, bucketWidth, bucketCount, heatGrid} from '../series.js';
import {measure, timings} from '../timing.js';

export const HEAT_METRICS = ['grad_norm', 'err_norm', 'weight_norm', 'update_ratio', 'saturated', 'dead', 'act_std',
  'bias_grad_norm', 'grad_mean_abs', 'grad_max_abs', 'act_mean', 'nonfinite'];
export const TABLE_METRICS = ['grad_norm', 'err_norm', 'weight_norm', 'update_ratio', 'saturated', 'dead', 'act_std'];
/** Metrics drawn on a linear color scale; the others (norms, ratios) on a log scale. */
const LINEAR = new Set(['saturated', 'dead', 'act_mean', 'nonfinite']);
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);


export function render(root, ctx) {
  const id = ctx.params.id;
  const q = ctx.query;
  const view = {
    metric: HEAT_METRICS.includes(q.get('metric')) ? q.get('metric') : 'grad_norm',
    agg: q.get('agg') === 'last' ? 'last' : 'max',
    zoom: null, // {from, to, set, evals, downsampled, loading}
  };
  const fromQ = q.get('from');
  const toQ = q.get('to');
  if (fromQ !== null && toQ !== null && Number(toQ) > Number(fromQ)) view.zoom = {from: Number(fromQ), to: Number(toQ), set: null, evals: [], loading: true};

  let job = null;
  let live = new SeriesSet();
  let liveEvals = [];
  let liveWidth = 1; // bucket width of the live stream
  let liveMaxPoints = 0;
  let ended = false;
  let stream = null;
  let frame = 0;
  let firstDrawn = false;
  let initGrad = null; // grad_norm per layer at step 0 (for the measured init ratio)
  let initFetch = false;
  let zoomSeq = 0;
  timings().firstDraw = undefined;

  document.title = `gradlab: job ${id}`;
  const actions = new JobActions(ctx, {jobId: id, onUpdate: (updated) => {
    // The stored record; the live stream may have counted more steps already.
    if (job && updated.state === job.state) updated.steps_done = Math.max(Number(updated.steps_done) || 0, Number(job.steps_done) || 0);
    job = updated;
    document.title = `gradlab: ${job.spec && job.spec.name ? job.spec.name : `job ${job.id}`}`;
    drawHead();
  }});
  // The head: the name (actions.title), what drawHead draws, then Delete.
  const headInfo = h('span', {class: 'contents'});
  const head = h('div', {class: 'page-head job-head'}, actions.title, headInfo, actions.remove.el);
  const errorBox = h('div');
  const summaryBox = h('div', {class: 'card summary-card'});
  const lossEl = h('div', {class: 'chart', id: 'loss-chart'});
  const accEl = h('div', {class: 'chart', id: 'accuracy-chart'});
  const heatEl = h('div', {class: 'heat-wrap'});
  const zoomInfo = h('span', {class: 'zoom-info muted', id: 'zoom-info'});
  const resetZoom = h('button', {type: 'button', id: 'reset-zoom', hidden: true, onclick: () => unzoom()}, 'Reset zoom');
  const metricSelect = h('select', {id: 'heat-metric', 'aria-label': 'heat map metric', onchange: () => setMetric(metricSelect.value)},
    HEAT_METRICS.map((m) => h('option', {value: m, selected: m === view.metric}, m)));
  const aggMax = h('input', {type: 'radio', name: 'agg', value: 'max', checked: view.agg === 'max'});
  const aggLast = h('input', {type: 'radio', name: 'agg', value: 'last', checked: view.agg === 'last'});
  for (const r of [aggMax, aggLast]) {
    r.addEventListener('change', () => {
      view.agg = r.value;
      ctx.setQuery({agg: view.agg === 'max' ? null : view.agg});
      scheduleDraw();
    });
  }
  const layerBox = h('div', {class: 'card'});
  const specBox = h('div', {class: 'card'});
  const mfBox = h('div', {class: 'card'});
  const hists = new HistogramPanel(ctx, {jobId: id, onSelect: (a, b) => zoom(a, b)});

  replace(root,
    head,
    actions.labels,
    errorBox,
    summaryBox,
    h('div', {class: 'card charts'},
      h('div', {class: 'toolbar'},
        h('h2', null, 'Training'),
        h('span', {class: 'muted'}, 'drag across a chart or the heat map to zoom into steps'),
        h('span', {class: 'spacer'}),
        zoomInfo,
        resetZoom),
      h('div', {class: 'chart-row'}, lossEl, accEl)),
    h('div', {class: 'card'},
      h('div', {class: 'toolbar'},
        h('h2', null, 'Layers × steps'),
        h('label', null, 'metric ', metricSelect),
        h('span', {class: 'radio-group', title: 'what each step bucket shows'},
          h('label', null, aggMax, ' bucket max'),
          h('label', null, aggLast, ' last value'))),
      heatEl),
    hists.el,
    layerBox,
    h('div', {class: 'grid-2'}, specBox, mfBox));

  const onSelect = (a, b) => zoom(a, b);
  let lossChart;
  let accChart;
  let heat;
  try {
    lossChart = new LineChart(lossEl, {
      title: 'loss', height: 200, sync: `job-${id}`, onSelect,
      tracks: [
        {label: 'train loss', color: '#1f77b4', band: true},
        {label: 'test loss', color: '#d62728', points: true, dash: [4, 3]},
      ],
    });
    accChart = new LineChart(accEl, {
      title: 'accuracy', height: 200, sync: `job-${id}`, onSelect, yRange: [0, 1],
      tracks: [
        {label: 'train accuracy', color: '#2ca02c', band: true},
        {label: 'test accuracy', color: '#ff7f0e', points: true, dash: [4, 3]},
      ],
    });
  } catch (e) {
    showError(e);
  }
  heat = new Heatmap(heatEl, {onSelect});
  heat.setState('loading');
  ctx.onCleanup(() => {
    if (stream) stream.close();
    if (frame) cancelAnimationFrame(frame);
    if (lossChart) lossChart.destroy();
    if (accChart) accChart.destroy();
    heat.destroy();
    hists.destroy();
    setConn('');
  });

  // ---------------------------------------------------------------------------------------
  // Header, summary, spec

  function nLayers() {
    const d = fmt.depthOf(job && job.spec);
    if (d !== null && d !== undefined) return d + 1;
    const ls = live.layers(view.metric);
    return ls.length ? ls[ls.length - 1] + 1 : 0;
  }

  function liveRange() {
    const steps = Number(job && job.spec && job.spec.steps) || 1;
    return [0, Math.max(0, steps - 1)];
  }

  function drawHead() {
    const spec = job.spec || {};
    const verdict = job.summary && job.summary.verdict ? job.summary.verdict.verdict : null;
    const cancellable = job.state === 'queued' || job.state === 'running';
    actions.update(job);
    replace(headInfo,
      h('span', {class: 'muted job-id'}, `#${job.id}`),
      badge(job.state),
      verdict ? badge(verdict, 'verdict') : null,
      job.sweep_id !== null && job.sweep_id !== undefined ? link(`/sweeps/${job.sweep_id}`, `sweep ${job.sweep_id}`) : null,
      h('span', {class: 'steps muted', id: 'steps-done'}, `${fmt.progress(job.steps_done, spec.steps)} steps`),
      h('span', {class: 'spacer'}),
      cancellable ? h('button', {type: 'button', class: 'danger', id: 'cancel', onclick: cancel}, 'Cancel job') : null);
    if (job.state === 'failed' || job.error) {
      replace(errorBox, h('div', {class: 'error job-error', role: 'alert'}, h('strong', null, 'Error: '), job.error || 'the job failed'));
    } else {
      replace(errorBox);
    }
    drawSummary();
    drawSpec();
    drawMeanField();
    markFork();
  }

  /** A fork's start, on the charts: its history before that step is its parent's. */
  function markFork() {
    const f = job.fork_of;
    const markers = f ? [{step: f.step, label: `fork of job ${f.parent}`}] : [];
    for (const chart of [lossChart, accChart, heat]) if (chart) chart.setMarkers(markers);
  }

  function drawSummary() {
    const s = job.summary;
    const spec = job.spec || {};
    const dur = job.started_ms && (job.finished_ms || Date.now()) - job.started_ms;
    const items = [
      ['state', badge(job.state)],
      ['steps', fmt.progress(job.steps_done, spec.steps)],
      ['created', fmt.time(job.created_ms)],
      ['ran for', job.started_ms ? fmt.duration(dur) : '—'],
    ];
    if (s) {
      items.push(
        ['train loss', fmt.num(s.train_loss)],
        ['train accuracy', fmt.pct(s.train_accuracy)],
        ['test loss', fmt.num(s.test_loss)],
        ['test accuracy', fmt.pct(s.test_accuracy)],
      );
    }
    const v = s && s.verdict;
    replace(summaryBox,
      h('div', {class: 'figures'}, items.map(([k, x]) => h('div', {class: 'figure'}, h('div', {class: 'figure-label'}, k), h('div', {class: 'figure-value'}, x)))),
      v ? h('div', {class: 'verdict-line', id: 'verdict'},
        h('span', {class: 'figure-label'}, 'verdict '), badge(v.verdict, 'verdict'), ' ',
        h('span', {class: 'reason'}, v.reason || ''),
        h('span', {class: 'muted'},
          v.ratio_at_init !== null && v.ratio_at_init !== undefined ? ` · first/last ratio at init ${fmt.num(v.ratio_at_init)}` : '',
          v.ratio_at_end !== null && v.ratio_at_end !== undefined ? `, at end ${fmt.num(v.ratio_at_end)}` : '',
          v.nonfinite_seen ? ' · non-finite values seen' : '',
          s.stopped_early ? ' · stopped early at a non-finite value' : ''))
        : h('div', {class: 'verdict-line muted'}, TERMINAL.has(job.state) ? 'no summary' : 'the verdict comes when the job ends'));
  }

  function drawSpec() {
    const spec = job.spec || {};
    const labels = Object.entries(spec.labels || {});
    replace(specBox,
      h('h2', null, 'Spec'),
      kvTable([
        ['name', spec.name || '—'],
        ['activation', fmt.specText(spec.activation)],
        ['output activation', fmt.specText(spec.output_activation)],
        ['hidden', Array.isArray(spec.hidden) ? `${spec.hidden.length} × ${fmt.widthOf(spec)}` : '—'],
        ['init', fmt.specText(spec.init)],
        ['loss', fmt.specText(spec.loss)],
        ['optimizer', fmt.specText(spec.optimizer)],
        ['lr', fmt.num(spec.lr)],
        ['schedule', fmt.specText(spec.schedule)],
        ['weight decay', fmt.num(spec.weight_decay)],
        ['clip norm', spec.clip_norm === null || spec.clip_norm === undefined ? 'none' : fmt.num(spec.clip_norm)],
        ['batch', spec.batch],
        ['steps', fmt.int(spec.steps)],
        ['eval every', spec.eval_every],
        ['record every', spec.record_every],
        ['dataset', spec.dataset],
        ['test fraction', spec.test_fraction],
        ['standardize', String(spec.standardize)],
        ['seed', spec.seed],
        ['stop on non-finite', String(spec.stop_on_nonfinite)],
        spec.thresholds ? ['thresholds', Object.entries(spec.thresholds).map(([k, x]) => `${k}=${x}`).join(', ')] : null,
        ['labels', labels.length ? labels.map(([k, x]) => `${k}=${x}`).join(', ') : '—'],
        job.fork_of ? ['forked from', h('a', {href: `/jobs/${job.fork_of.parent}`, id: 'fork-parent'},
          `job ${job.fork_of.parent} at step ${fmt.int(job.fork_of.step)}`)] : null,
        ['checkpoints', fmt.checkpointPolicy(spec)],
        ['owner', job.owner || '—'],
        ['attempt', job.resumed_from === null || job.resumed_from === undefined
          ? String(job.attempt) : `${job.attempt}, resumed from step ${fmt.int(job.resumed_from)}`],
        ['stored checkpoints', checkpointsCell()],
        ['started', fmt.time(job.started_ms, {alwaysDate: true})],
        ['finished', fmt.time(job.finished_ms, {alwaysDate: true})],
      ], {id: 'spec-table'}));
  }

  /** The stored checkpoints, and the newest one's weights to download. */
  function checkpointsCell() {
    const list = job.checkpoints || [];
    if (!list.length) return '—';
    const newest = list[list.length - 1];
    const link = (format) => h('a', {
      href: `/api/jobs/${encodeURIComponent(id)}/weights?format=${format}&step=${newest.step}`,
      download: '', class: 'weights-link', 'data-format': format,
    }, format);
    return h('span', null,
      list.map((c) => `step ${fmt.int(c.step)} (${fmt.bytes(c.bytes)})`).join(', '),
      ' — weights at step ', fmt.int(newest.step), ': ', link('safetensors'), ' · ', link('npz'));
  }

  function drawMeanField() {
    const mf = job.summary && job.summary.mean_field;
    if (!mf) {
      replace(mfBox, h('h2', null, 'Mean-field prediction'),
        h('p', {class: 'muted'}, job.summary ? 'no mean-field prediction for this network' : 'given with the summary, when the job ends'));
      return;
    }
    replace(mfBox, h('h2', null, 'Mean-field prediction'),
      kvTable([
        ['regime', h('strong', {id: 'mf-regime'}, mf.regime)],
        ['χ₁ (chi1)', fmt.num(mf.chi1)],
        ['depth scale', fmt.num(mf.depth_scale)],
        ['fixed point', mf.fixed_point],
        ['q*', fmt.num(mf.q_star)],
        ['σ_w, σ_b', `${fmt.num(mf.sigma_w)}, ${fmt.num(mf.sigma_b)}`],
        ['first/last ratio', fmt.num(mf.first_last_ratio)],
      ]));
  }

  async function cancel() {
    try {
      job = await api.cancelJob(id);
      drawHead();
    } catch (e) {
      ctx.fail(e);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Per-layer table

  function drawLayers() {
    const L = nLayers();
    if (!L) {
      replace(layerBox, h('h2', null, 'Layers'), h('p', {class: 'muted'}, 'no steps recorded yet'));
      return;
    }
    const mf = job.summary && job.summary.mean_field;
    const depth = L - 1;
    const lastHidden = depth - 1;
    const nowLast = lastHidden >= 0 ? live.last(lastHidden, 'grad_norm') : undefined;
    const initLast = initGrad && lastHidden >= 0 ? initGrad[lastHidden] : undefined;
    const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
    const rows = [];
    for (let l = 0; l < L; l++) {
      const hidden = l < depth;
      const pred = mf && Array.isArray(mf.layer_ratios) && hidden ? mf.layer_ratios[l] : undefined;
      const atInit = hidden && initGrad ? ratio(initGrad[l], initLast) : undefined;
      const now = hidden ? ratio(live.last(l, 'grad_norm'), nowLast) : undefined;
      const off = pred !== undefined && atInit !== undefined && pred > 0 && atInit > 0 ? Math.abs(Math.log10(atInit / pred)) : undefined;
      rows.push(h('tr', {dataset: {layer: l}},
        h('th', null, fmt.layerName(l, L)),
        TABLE_METRICS.map((m) => {
          const v = live.last(l, m);
          return h('td', {class: `num${v !== undefined && !Number.isFinite(v) ? ' nonfinite' : ''}`}, v === undefined ? '—' : fmt.num(v));
        }),
        h('td', {class: 'num sep'}, atInit === undefined ? '—' : fmt.num(atInit, 3)),
        h('td', {class: `num${off !== undefined && off > 1 ? ' off' : ''}`, title: off !== undefined ? `|log10(measured/predicted)| = ${off.toFixed(2)}` : ''},
          pred === undefined ? '—' : fmt.num(pred, 3)),
        h('td', {class: 'num'}, now === undefined ? '—' : fmt.num(now, 3))));
    }
    const at = live.lastStep();
    replace(layerBox,
      h('div', {class: 'toolbar'},
        h('h2', null, 'Layers'),
        h('span', {class: 'muted'}, at >= 0 ? `last recorded values (step ${fmt.int(at)}); grad-norm ratios are to the last hidden layer's` : ''),
        mf ? h('span', {class: 'mf-inline'}, `mean field: ${mf.regime}, χ₁ = ${fmt.num(mf.chi1)}, depth scale ${fmt.num(mf.depth_scale)}`) : null),
      h('div', {class: 'table-wrap'},
        h('table', {class: 'dense layers', id: 'layer-table'},
          h('thead', null,
            h('tr', null,
              h('th', {rowspan: 2}, 'layer'),
              h('th', {colspan: TABLE_METRICS.length}, 'last value'),
              h('th', {colspan: 3, class: 'sep'}, 'grad_norm / last hidden layer\'s')),
            h('tr', null,
              TABLE_METRICS.map((m) => h('th', {class: 'num'}, m)),
              h('th', {class: 'num sep'}, 'measured at init'),
              h('th', {class: 'num'}, 'predicted (mean field)'),
              h('th', {class: 'num'}, 'measured now'))),
          h('tbody', null, rows))));
  }

  async function fetchInit() {
    if (initFetch || !job || !(job.steps_done > 0)) return;
    initFetch = true;
    try {
      const r = await api.history(id, {metrics: ['grad_norm'], from: 0, to: 0}, {signal: ctx.signal});
      const g = [];
      for (const s of r.series) if (s.layer !== null && s.values.length) g[s.layer] = s.values[0];
      initGrad = g;
      scheduleDraw();
    } catch (e) {
      if (e.name !== 'AbortError') console.warn('step-0 gradients:', e.message);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Drawing

  function scheduleDraw() {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      drawNow();
    });
  }

  function evalTrack(evals, field, lo, hi) {
    const e = evals.filter((x) => x.step >= lo && x.step <= hi);
    return {steps: e.map((x) => x.step), values: e.map((x) => x[field])};
  }

  function drawNow() {
    if (!job) return;
    const z = view.zoom && view.zoom.set ? view.zoom : null;
    const set = z ? z.set : live;
    let lo;
    let hi;
    let width;
    if (z) {
      lo = z.from;
      hi = z.to;
      width = bucketWidth(lo, hi, z.maxPoints);
    } else {
      [lo, hi] = liveRange();
      width = liveWidth;
    }
    const buckets = bucketCount(lo, hi, width);
    const L = nLayers();
    heat.setData({
      grid: heatGrid(set, view.metric, L, lo, width, buckets, view.agg),
      lo, hi, width, buckets,
      log: !LINEAR.has(view.metric),
      label: `${view.metric} (${view.agg === 'max' ? 'bucket max' : 'last value'})`,
    });
    const evals = z ? z.evals : liveEvals;
    const evalHi = evals.length ? Math.max(hi, ...evals.filter((x) => x.step >= lo).map((x) => x.step)) : hi;
    const chartHi = z ? hi : evalHi;
    if (lossChart) lossChart.setData([set.view(null, 'loss'), evalTrack(evals, 'test_loss', lo, chartHi)], [lo, chartHi]);
    if (accChart) accChart.setData([set.view(null, 'accuracy'), evalTrack(evals, 'test_accuracy', lo, chartHi)], [lo, chartHi]);
    heat.setState(z ? 'zoomed' : ended ? 'done' : 'live');
    heat.el.dataset.metric = view.metric;
    zoomInfo.textContent = z
      ? `steps ${fmt.int(lo)}–${fmt.int(hi)}${width > 1 ? ` (${fmt.int(width)} steps per point)` : ' (every recorded step)'}`
      : (width > 1 ? `all ${fmt.int(hi + 1)} steps, ${fmt.int(width)} per point` : '');
    resetZoom.hidden = !view.zoom;
    drawLayers();
    if (!initGrad && live.lastStep() >= 0) void fetchInit();
    const hasCurves = (set.view(null, 'loss') || {steps: []}).steps.length > 0;
    if (!firstDrawn && Number(heat.el.dataset.steps) > 0 && hasCurves) {
      firstDrawn = true;
      const ms = measure('gradlab:first-draw', ctx.routeStart);
      timings().firstDraw = ms;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Live stream

  function openLive() {
    if (stream) stream.close();
    live = new SeriesSet();
    liveEvals = [];
    ended = false;
    const [lo, hi] = liveRange();
    liveMaxPoints = heat.plotWidth();
    liveWidth = bucketWidth(lo, hi, liveMaxPoints);
    const metrics = [...new Set(['loss', 'accuracy', view.metric, ...TABLE_METRICS])];
    setConn('connecting');
    const opened = performance.now();
    stream = api.stream(`/api/jobs/${encodeURIComponent(id)}/live`, {metrics: metrics.join(','), max_points: liveMaxPoints}, {
      events: {
        job: (raw) => {
          const prev = job && job.state;
          const next = api.decodeJob(raw);
          // Stream events carry the record alone; the stored checkpoints come with GET.
          if (!next.checkpoints && job) next.checkpoints = job.checkpoints;
          job = next;
          drawHead();
          hists.update(job);
          if (prev !== job.state) scheduleDraw();
        },
        points: (p) => {
          for (const s of p.series || []) live.append(api.decodeSeries(s));
          for (const s of p.partial || []) live.setPartial(api.decodeSeries(s));
          updateSteps();
          scheduleDraw();
        },
        evals: (list) => {
          liveEvals = liveEvals.concat(api.decodeEvals(list));
          scheduleDraw();
        },
      },
      onOpen: () => setConn('live'),
      onReconnect: () => {
        // The server replays the stream from its start.
        live = new SeriesSet();
        liveEvals = [];
      },
      onEnd: () => {
        ended = true;
        setConn('');
        if (frame) {
          cancelAnimationFrame(frame);
          frame = 0;
        }
        drawNow();
        timings().fullDraw = measure('gradlab:full-draw', ctx.routeStart);
        timings().streamMs = performance.now() - opened;
        // The record as stored at the end (summary, verdict, mean field).
        api.getJob(id, {signal: ctx.signal}).then((j) => {
          job = j;
          drawHead();
          drawLayers();
          hists.update(job, {final: true});
        }, () => {});
      },
      onError: (message, status) => {
        // Gone because it is being deleted from here: the delete's outcome is what to show.
        if (ctx.signal.aborted || actions.deleting) return;
        setConn('off', message);
        if (status !== 401) showError(`live updates: ${message}`);
      },
    });
  }

  function updateSteps() {
    const el = document.getElementById('steps-done');
    const s = live.lastStep();
    if (el && job && s + 1 > (job.steps_done || 0)) {
      job.steps_done = s + 1;
      el.textContent = `${fmt.progress(job.steps_done, job.spec && job.spec.steps)} steps`;
      drawSummary();
    }
  }

  function setMetric(m) {
    if (m === view.metric) return;
    view.metric = m;
    ctx.setQuery({metric: m === 'grad_norm' ? null : m});
    heat.setState('loading');
    openLive();
    if (view.zoom) void zoom(view.zoom.from, view.zoom.to, {record: false});
  }

  // ---------------------------------------------------------------------------------------
  // Zoom

  async function zoom(from, to, {record = true} = {}) {
    if (!job) return;
    const [lo, hi] = liveRange();
    from = Math.max(lo, Math.floor(from));
    to = Math.min(Math.max(hi, liveEvalMax()), Math.ceil(to));
    if (!(to > from)) return;
    if (view.zoom && view.zoom.from === from && view.zoom.to === to && (view.zoom.loading || view.zoom.set) && record) return;
    const seq = ++zoomSeq;
    const t0 = performance.now();
    performance.mark('gradlab:zoom-start');
    const maxPoints = heat.plotWidth();
    view.zoom = {from, to, set: view.zoom && view.zoom.set, evals: view.zoom ? view.zoom.evals : [], maxPoints, loading: true};
    ctx.setQuery({from, to});
    hists.setRange(from, to);
    zoomInfo.textContent = `loading steps ${fmt.int(from)}–${fmt.int(to)}…`;
    resetZoom.hidden = false;
    try {
      // A range with fewer steps than pixels is asked for at full resolution.
      const full = to - from + 1 <= maxPoints;
      const r = await api.history(id, {metrics: ['loss', 'accuracy', view.metric], from, to, max_points: full ? null : maxPoints}, {signal: ctx.signal});
      if (seq !== zoomSeq || !view.zoom) return;
      view.zoom = {from, to, maxPoints, set: SeriesSet.fromHistory(r), evals: r.evals, downsampled: r.downsampled, loading: false};
      if (frame) {
        cancelAnimationFrame(frame);
        frame = 0;
      }
      drawNow();
      if (record) {
        const ms = measure('gradlab:zoom', t0);
        timings().zoom = ms;
        timings().zoomCount = (timings().zoomCount || 0) + 1;
      }
      heat.el.dataset.zoom = `${from}-${to}`;
    } catch (e) {
      if (seq === zoomSeq) ctx.fail(e);
    }
  }

  function liveEvalMax() {
    return liveEvals.length ? liveEvals[liveEvals.length - 1].step : 0;
  }

  function unzoom() {
    zoomSeq++;
    view.zoom = null;
    ctx.setQuery({from: null, to: null});
    hists.setRange(null, null);
    delete heat.el.dataset.zoom;
    drawNow();
  }

  // ---------------------------------------------------------------------------------------
  // Start: the record (a clean 404/401 answer), then the stream.

  (async () => {
    try {
      job = await api.getJob(id, {signal: ctx.signal});
    } catch (e) {
      heat.setState('error');
      if (e instanceof api.ApiError && e.status !== 401) {
        // Nothing to chart: the page is the message ("job 999 not found").
        replace(head, h('h1', null, `Job ${id}`));
        replace(errorBox, h('div', {class: 'error', role: 'alert'}, e.message));
        replace(root, head, errorBox, h('p', null, link('/', '← all jobs')));
        document.title = `gradlab: ${e.message}`;
        return;
      }
      ctx.fail(e);
      return;
    }
    document.title = `gradlab: ${job.spec && job.spec.name ? job.spec.name : `job ${job.id}`}`;
    drawHead();
    drawLayers();
    openLive();
    if (view.zoom) {
      const z = view.zoom;
      view.zoom = null;
      void zoom(z.from, z.to, {record: false});
    }
    hists.update(job);
  })();
}
