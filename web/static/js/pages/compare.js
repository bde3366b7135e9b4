// `/compare?jobs=1,2,3`: 2-8 jobs side by side. Their loss curves overlaid, then one small
// chart per layer (hidden layers 1..D, then each job's output layer) of a chosen layer metric,
// one color per job, with a legend naming each job.

import {h, replace, link, badge} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../format.js';
import {LineChart, PALETTE} from '../charts/lines.js';
import {HEAT_METRICS} from './job.js';

const LINEAR = new Set(['saturated', 'dead', 'act_mean', 'nonfinite']);
const MIN_JOBS = 2;
const MAX_JOBS = 8;

export function render(root, ctx) {
  const raw = (ctx.query.get('jobs') || '').split(',').map((s) => s.trim()).filter(Boolean);
  const ids = [...new Set(raw)];
  const metric = HEAT_METRICS.includes(ctx.query.get('metric')) ? ctx.query.get('metric') : 'grad_norm';
  document.title = `gradlab: compare ${ids.join(', ')}`;
  const charts = [];
  ctx.onCleanup(() => charts.forEach((c) => c.destroy()));

  const picker = h('select', {id: 'compare-metric', onchange: () => ctx.navigate(`/compare${api.query({jobs: ids.join(','), metric: picker.value === 'grad_norm' ? '' : picker.value})}`, {replace: true})},
    HEAT_METRICS.map((m) => h('option', {value: m, selected: m === metric}, m)));
  const legend = h('div', {class: 'legend-jobs', id: 'compare-legend'});
  const lossEl = h('div', {class: 'chart', id: 'compare-loss'});
  const grid = h('div', {class: 'small-multiples', id: 'compare-layers'});
  const status = h('span', {class: 'muted'});

  replace(root,
    h('div', {class: 'page-head'}, h('h1', null, 'Compare jobs'), status, h('span', {class: 'spacer'}), h('label', null, 'layer metric ', picker)),
    h('div', {class: 'card'}, legend),
    h('div', {class: 'card'}, h('h2', null, 'Loss'), lossEl),
    h('div', {class: 'card'}, h('h2', null, `${metric} per layer`), grid));

  if (ids.length < MIN_JOBS || ids.length > MAX_JOBS || ids.some((x) => !/^\d+$/.test(x))) {
    replace(legend, h('div', {class: 'error', role: 'alert'},
      `compare needs ${MIN_JOBS}-${MAX_JOBS} job ids, as /compare?jobs=1,2,3 (got ${JSON.stringify(ctx.query.get('jobs') || '')})`));
    return;
  }

  (async () => {
    status.textContent = 'loading…';
    const maxPoints = Math.max(200, Math.min(2000, Math.floor(lossEl.clientWidth || 1000)));
    let results;
    try {
      results = await Promise.all(ids.map(async (id) => {
        const job = await api.getJob(id, {signal: ctx.signal});
        const hist = await api.history(id, {metrics: ['loss', metric], max_points: maxPoints}, {signal: ctx.signal});
        return {id, job, hist};
      }));
    } catch (e) {
      status.textContent = '';
      if (e instanceof api.ApiError && e.status !== 401) {
        replace(legend, h('div', {class: 'error', role: 'alert'}, e.message));
        return;
      }
      ctx.fail(e);
      return;
    }
    status.textContent = `${results.length} jobs`;
    const colors = results.map((_, i) => PALETTE[i % PALETTE.length]);
    const names = results.map((r) => `#${r.job.id} ${(r.job.spec && r.job.spec.name) || ''}`.trim());

    replace(legend, results.map((r, i) => h('span', {class: 'legend-job', dataset: {jobId: r.job.id}},
      h('span', {class: 'swatch', style: {background: colors[i]}}),
      link(`/jobs/${r.job.id}`, names[i]),
      ' ', badge(r.job.state),
      h('span', {class: 'muted'}, ` ${fmt.specText(r.job.spec && r.job.spec.activation)}, depth ${fmt.depthOf(r.job.spec)}, width ${fmt.widthOf(r.job.spec)}, ${fmt.specText(r.job.spec && r.job.spec.init)}`))));

    const find = (r, layer, m) => r.hist.series.find((s) => s.layer === layer && s.metric === m) || null;

    const loss = new LineChart(lossEl, {
      title: 'train loss', height: 240, sync: 'compare', legend: true,
      tracks: results.map((r, i) => ({label: names[i], color: colors[i], band: true})),
    });
    charts.push(loss);
    // One step axis for every chart: the longest run's.
    let xMax = 0;
    for (const r of results) {
      xMax = Math.max(xMax, (Number(r.job.spec && r.job.spec.steps) || 1) - 1);
      for (const s of r.hist.series) if (s.steps.length) xMax = Math.max(xMax, s.steps[s.steps.length - 1]);
    }
    const xRange = [0, Math.max(1, xMax)];
    loss.setData(results.map((r) => find(r, null, 'loss')), xRange);

    const depths = results.map((r) => fmt.depthOf(r.job.spec) ?? Math.max(0, ...r.hist.series.filter((s) => s.layer !== null).map((s) => s.layer)));
    const maxDepth = Math.max(...depths);
    const panels = [];
    for (let l = 0; l < maxDepth; l++) panels.push({title: `layer ${l + 1}`, layerOf: (ri) => (l < depths[ri] ? l : null)});
    panels.push({title: 'output', layerOf: (ri) => depths[ri]});
    const log = !LINEAR.has(metric);
    replace(grid);
    for (const p of panels) {
      const el = h('div', {class: 'small-chart', dataset: {panel: p.title}});
      grid.append(el);
      const c = new LineChart(el, {
        title: p.title, height: 150, sync: 'compare', legend: false, log,
        tracks: results.map((r, i) => ({label: names[i], color: colors[i]})),
      });
      charts.push(c);
      c.setData(results.map((r, ri) => {
        const layer = p.layerOf(ri);
        return layer === null ? null : find(r, layer, metric);
      }), xRange);
    }
  })();
}
