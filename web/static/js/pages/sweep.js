// `/sweeps/<id>`: a sweep's progress (live) and its report: per group of the cell axes other
// than activation and depth (e.g. each init), an activation x depth grid of mean test accuracy
// (each cell links to its jobs), the trainable depth per activation, the claims checked
// against them, and the rules the figures follow. The report is the server's JSON of
// runner::sweep::SweepReport. "Delete sweep" (after an inline confirmation; "Cancel and delete"
// while jobs are queued or running) deletes it with all its jobs and goes to /sweeps.

import {h, replace, link, badge} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../format.js';
import {showError, showNotice, setConn} from '../banner.js';
import {confirmAction} from '../confirm.js';
import {countsView, axesText} from './sweeps.js';

/** A claim's verdict as the server decided it (ClaimCheck.verdict): supported, contradicted
 * (not_supported), or not measured, shown in words; an older server sends only `supported`. */
export function claimVerdict(c) {
  const words = {supported: 'supported', not_supported: 'contradicted', not_measured: 'not measured'};
  if (c.verdict && words[c.verdict]) return words[c.verdict];
  return c.supported ? 'supported' : 'contradicted';
}

/** A sweep's state from its jobs' counts, as the server derives it (SweepRecord::state). */
export function sweepState(c) {
  const n = (k) => Number(c && c[k]) || 0;
  const done = n('succeeded') + n('failed') + n('cancelled');
  if (n('queued') + n('running') > 0) return n('running') === 0 && done === 0 ? 'queued' : 'running';
  if (n('cancelled') > 0) return 'cancelled';
  if (n('failed') > 0) return 'failed';
  return 'succeeded';
}

/** Background for a test accuracy in [0, 1]: red through yellow to green. */
function accColor(a) {
  const t = Math.max(0, Math.min(1, a));
  return `hsl(${Math.round(t * 120)}, 62%, ${Math.round(82 - 10 * t)}%)`;
}

function valuesOf(cell) {
  const v = {};
  for (const x of cell.values || []) v[x.field] = x.value;
  return v;
}

function groupText(values) {
  return values.map((x) => `${x.field}=${x.value}`).join(' ');
}

export function render(root, ctx) {
  const id = ctx.params.id;
  const margin = ctx.query.get('margin') || '';
  document.title = `gradlab: sweep ${id}`;
  let sweep = null;
  let report = null;
  let stream = null;
  let reportTimer = null;
  let reportLoading = false;
  let drawnActive = null;

  let deleting = false;
  const remove = confirmAction({
    id: 'delete-sweep',
    label: 'Delete sweep',
    title: 'delete this sweep and all its jobs with everything they stored',
    ask: askDelete,
    onError: (e) => {
      deleting = false;
      ctx.fail(e);
    },
  });
  remove.el.hidden = true;
  // The head: what drawProgress draws, then Delete (kept across redraws: a question may be open).
  const headInfo = h('span', {class: 'contents'}, h('h1', null, `Sweep ${id}`));
  const head = h('div', {class: 'page-head'}, headInfo, remove.el);
  const progress = h('div', {class: 'card', id: 'sweep-progress'});
  const reportBox = h('div', {id: 'sweep-report'}, h('p', {class: 'muted'}, 'loading the report…'));
  const marginInput = h('input', {type: 'number', step: '0.01', min: '0', max: '1', value: margin, placeholder: '0.05', class: 'narrow', name: 'margin'});
  const marginForm = h('form', {class: 'inline-form', onsubmit: (e) => {
    e.preventDefault();
    ctx.setQuery({margin: marginInput.value.trim() || null});
    void loadReport(marginInput.value.trim());
  }}, h('label', null, 'margin ', marginInput), h('button', {type: 'submit'}, 'Apply'));

  replace(root, head, progress, reportBox);

  function isActive(s) {
    const c = (s && s.counts) || {};
    return Number(c.queued || 0) + Number(c.running || 0) > 0;
  }

  function askDelete() {
    const s = sweep;
    if (!s) return null;
    const c = s.counts || {};
    const total = ['queued', 'running', 'succeeded', 'failed', 'cancelled'].reduce((n, k) => n + (Number(c[k]) || 0), 0);
    const jobs = total === 1 ? '1 job' : `${total} jobs`;
    if (isActive(s)) {
      const open = Number(c.queued || 0) + Number(c.running || 0);
      return {
        text: `Sweep ${s.id} is ${s.state}: cancel its ${open} unfinished ${open === 1 ? 'job' : 'jobs'}, then delete it with its ${jobs}?`,
        choices: [{label: 'Cancel and delete', run: () => deleteSweep(true)}],
      };
    }
    return {
      text: `Delete sweep ${s.id} and its ${jobs} with everything they stored? This cannot be undone.`,
      choices: [{label: 'Delete sweep', run: () => deleteSweep(false)}],
    };
  }

  async function deleteSweep(cancel) {
    deleting = true;
    const r = await api.deleteSweep(id, {cancel});
    const n = Number(r && r.jobs_deleted) || 0;
    ctx.navigate('/sweeps');
    showNotice(`Deleted sweep ${id} and its ${n === 1 ? '1 job' : `${n} jobs`}.`);
  }

  function drawProgress() {
    const s = sweep;
    const wasActive = remove.el.hidden ? null : drawnActive;
    drawnActive = isActive(s);
    remove.el.hidden = false;
    if (wasActive !== null && wasActive !== drawnActive) remove.refresh();
    replace(headInfo,
      h('h1', null, (s.spec && s.spec.name) || `sweep ${s.id}`),
      h('span', {class: 'muted'}, `#${s.id}`),
      badge(s.state),
      h('span', {class: 'spacer'}),
      link(`/${api.query({sweep: s.id})}`, 'all jobs of this sweep →'));
    const c = s.counts || {};
    replace(progress,
      h('div', {class: 'toolbar'}, h('h2', null, 'Progress'), h('span', {class: 'muted'}, axesText(s.spec))),
      countsView(c),
      h('div', {class: 'count-chips', id: 'sweep-counts'},
        ['queued', 'running', 'succeeded', 'failed', 'cancelled'].map((k) =>
          h('span', {class: `chip state-${k}`, dataset: {count: k}}, `${k} `, h('strong', null, String(c[k] || 0))))),
      h('div', {class: 'muted small'},
        `created ${fmt.time(s.created_ms, {alwaysDate: true})}`,
        s.finished_ms ? ` · finished ${fmt.time(s.finished_ms, {alwaysDate: true})}` : '',
        s.cancelled_ms ? ` · cancelled ${fmt.time(s.cancelled_ms, {alwaysDate: true})}` : ''));
  }

  function drawReport() {
    const r = report;
    if (!r) return;
    const axes = r.cell_axes || [];
    const others = axes.filter((a) => a !== 'activation' && a !== 'depth');
    const baseActivation = sweep && sweep.spec && sweep.spec.base ? fmt.specText(sweep.spec.base.activation) : '';
    const baseDepth = sweep && sweep.spec && sweep.spec.base ? fmt.depthOf(sweep.spec.base) : null;
    // Groups by the other axes, in the report's (cross-product) order.
    const groups = new Map();
    for (const cell of r.cells || []) {
      const v = valuesOf(cell);
      const gvals = others.map((f) => ({field: f, value: v[f]}));
      const key = groupText(gvals);
      if (!groups.has(key)) groups.set(key, {values: gvals, cells: []});
      groups.get(key).cells.push(cell);
    }
    // Which (group, activation, depth) are within the margin of trainable depth.
    const within = new Set();
    for (const t of r.trainable || []) {
      const g = groupText((t.group || []).filter((x) => x.field !== 'activation'));
      for (const p of t.points || []) if (p.within_margin) within.add(`${g}|${t.activation}|${p.depth}`);
    }

    const grids = [...groups.entries()].map(([key, g]) => {
      const acts = [];
      const depths = [];
      const at = new Map();
      for (const cell of g.cells) {
        const v = valuesOf(cell);
        const a = v.activation ?? baseActivation;
        const d = v.depth ?? (baseDepth === null ? '' : String(baseDepth));
        if (!acts.includes(a)) acts.push(a);
        if (!depths.includes(d)) depths.push(d);
        at.set(`${a}|${d}`, cell);
      }
      depths.sort((x, y) => Number(x) - Number(y));
      const cellView = (a, d) => {
        const cell = at.get(`${a}|${d}`);
        if (!cell) return h('td', {class: 'acc empty'}, '');
        const acc = cell.test_accuracy;
        const params = {sweep: id, activation: a, min_depth: d, max_depth: d};
        if (g.values.length === 1) params.label = `sweep.${g.values[0].field}=${g.values[0].value}`;
        const verdicts = Object.entries(cell.verdicts || {}).map(([k, n]) => `${k} ${n}`).join(', ');
        const title = [
          `${a}, depth ${d}${key ? `, ${key}` : ''}`,
          acc ? `test accuracy ${fmt.num(acc.mean)} ± ${fmt.num(acc.std)} (n=${acc.n})` : 'no finished job',
          `${cell.jobs_finished}/${cell.jobs_total} finished`,
          cell.best_lr ? `best lr ${cell.best_lr}` : '',
          verdicts ? `verdicts: ${verdicts}` : '',
          cell.chi1_mean !== null && cell.chi1_mean !== undefined ? `chi1 ${fmt.num(cell.chi1_mean)}` : '',
        ].filter(Boolean).join('\n');
        const isWithin = within.has(`${key}|${a}|${d}`);
        return h('td', {
          class: `acc${acc ? '' : ' pending'}${isWithin ? ' within' : ''}`,
          style: acc && Number.isFinite(acc.mean) ? {background: accColor(acc.mean)} : undefined,
          title,
          dataset: {activation: a, depth: d},
        }, link(`/${api.query(params)}`,
          acc && acc.mean !== null ? fmt.num(acc.mean, 3) : `${cell.jobs_finished}/${cell.jobs_total}`));
      };
      return h('div', {class: 'grid-block'},
        h('h3', null, key ? key : 'test accuracy'),
        h('table', {class: 'acc-grid', dataset: {group: key}},
          h('thead', null, h('tr', null, h('th', {class: 'corner'}, 'activation \\ depth'), depths.map((d) => h('th', {class: 'num'}, d)))),
          h('tbody', null, acts.map((a) => h('tr', null, h('th', null, a), depths.map((d) => cellView(a, d)))))));
    });

    const trainable = (r.trainable || []).map((t) => h('tr', null,
      h('td', null, t.activation),
      h('td', null, groupText((t.group || []).filter((x) => x.field !== 'activation')) || 'all'),
      h('td', {class: 'num'}, t.reference_accuracy === null || t.reference_accuracy === undefined ? '—' : fmt.num(t.reference_accuracy, 3)),
      h('td', {class: 'num strong'}, t.trainable_depth === null || t.trainable_depth === undefined ? 'none' : String(t.trainable_depth)),
      h('td', {class: 'num'}, String(t.deepest_swept)),
      h('td', null, (t.recovered_at || []).length ? t.recovered_at.join(', ') : '—'),
      h('td', {class: 'points'}, (t.points || []).map((p) => h('span', {class: `pt${p.within_margin ? ' ok' : ''}`, title: `depth ${p.depth}: ${p.mean_test_accuracy === null ? 'no result' : fmt.num(p.mean_test_accuracy)}`},
        `${p.depth}:${p.mean_test_accuracy === null || p.mean_test_accuracy === undefined ? '—' : fmt.num(p.mean_test_accuracy, 2)}`)))));

    const claims = (r.claims || []).map((c) => {
      const verdict = claimVerdict(c);
      return h('tr', {dataset: {activation: c.activation, verdict}},
        h('td', null, c.activation),
        h('td', null, fmt.claimed(c.claimed)),
        h('td', null, (c.measured || []).map((m) => h('div', null,
          `${groupText(m.group || []) || 'all'}: trainable to ${m.trainable_depth === null || m.trainable_depth === undefined ? 'none' : m.trainable_depth} of ${m.deepest_swept} `,
          m.supported === null || m.supported === undefined ? h('span', {class: 'muted'}, '(not measured)') : m.supported ? '(supports)' : '(contradicts)'))),
        h('td', null, badge(verdict, 'claim')),
        h('td', {class: 'note'}, c.note || ''));
    });

    replace(reportBox,
      h('div', {class: 'card'},
        h('div', {class: 'toolbar'},
          h('h2', null, 'Report'),
          h('span', {class: 'muted'},
            `${r.jobs_finished}/${r.jobs_total} jobs finished`,
            r.jobs_unmatched ? ` · ${r.jobs_unmatched} unmatched` : '',
            ` · margin ${r.margin}`,
            ` · ${r.steps === null || r.steps === undefined ? 'steps vary (an axis)' : `${fmt.int(r.steps)} steps per job`}`,
            r.lr_is_axis ? ' · figures of each cell\'s best lr' : ''),
          h('span', {class: 'spacer'}),
          marginForm),
        h('p', {class: 'muted small'}, 'Mean final test accuracy per cell; outlined cells are within the margin of the best shallow depth (trainable). Click a cell for its jobs.'),
        grids.length ? h('div', {class: 'grids'}, grids) : h('p', {class: 'muted'}, 'no cells')),
      trainable.length ? h('div', {class: 'card'},
        h('h2', null, 'Trainable depth'),
        h('table', {class: 'dense', id: 'trainable-table'},
          h('thead', null, h('tr', null, ['activation', 'group', 'reference acc', 'trainable depth', 'deepest swept', 'recovered at', 'mean test accuracy by depth'].map((x) => h('th', null, x)))),
          h('tbody', null, trainable))) : null,
      h('div', {class: 'card'},
        h('h2', null, 'Claims'),
        claims.length
          ? h('table', {class: 'dense claims', id: 'claims-table'},
            h('thead', null, h('tr', null, ['activation', 'claimed depth', 'measured', 'verdict', 'note'].map((x) => h('th', null, x)))),
            h('tbody', null, claims))
          : h('p', {class: 'muted'}, 'No claim concerns this sweep\'s activations and depths.')),
      h('div', {class: 'card'},
        h('h2', null, 'Rules'),
        h('ul', {class: 'rules', id: 'rules'}, (r.rules || []).map((x) => h('li', null, x)))));
  }

  async function loadReport(m = margin) {
    if (reportLoading) return;
    reportLoading = true;
    try {
      const r = await api.sweepReport(id, {margin: m}, {signal: ctx.signal});
      sweep = r.sweep;
      report = r.report;
      drawProgress();
      drawReport();
    } catch (e) {
      if (e instanceof api.ApiError && e.status !== 401 && !sweep) {
        replace(reportBox, h('div', {class: 'error', role: 'alert'}, e.message));
        return;
      }
      ctx.fail(e);
    } finally {
      reportLoading = false;
    }
  }

  function scheduleReport() {
    if (reportTimer) return;
    reportTimer = setTimeout(() => {
      reportTimer = null;
      void loadReport(marginInput.value.trim());
    }, 1500);
  }

  function openLive() {
    setConn('connecting');
    stream = api.stream(`/api/sweeps/${encodeURIComponent(id)}/live`, {}, {
      events: {
        sweep: (s) => {
          sweep = s;
          drawProgress();
        },
        job: (ev) => {
          if (!sweep) return;
          if (ev.counts) sweep = {...sweep, counts: ev.counts, state: sweepState(ev.counts)};
          drawProgress();
          const st = ev.job && ev.job.state;
          if (st === 'succeeded' || st === 'failed' || st === 'cancelled') scheduleReport();
        },
      },
      onOpen: () => setConn('live'),
      onEnd: async () => {
        setConn('');
        try {
          sweep = await api.getSweep(id, {signal: ctx.signal});
          drawProgress();
        } catch (e) {
          ctx.fail(e);
        }
        void loadReport(marginInput.value.trim());
      },
      onError: (message, status) => {
        if (ctx.signal.aborted || deleting) return;
        setConn('off', message);
        if (status !== 401) showError(`live updates: ${message}`);
      },
    });
  }

  ctx.onCleanup(() => {
    if (stream) stream.close();
    if (reportTimer) clearTimeout(reportTimer);
    setConn('');
  });

  (async () => {
    await loadReport();
    if (!sweep) return;
    if (sweep.state === 'queued' || sweep.state === 'running') openLive();
  })();
}
