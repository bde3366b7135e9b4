// `/`: the jobs table. Filters (the form's fields and a filter expression in the server's
// grammar, src/runner/filter.rs) and the sort (`sort`, `order`; set by the sortable column
// headers) live in the URL query and are applied by the server, whose 400 for a bad one is
// shown next to the filter box; pages follow next_page_token (a stack of earlier tokens gives
// "Previous"); GET /api/changes keeps the rows' states current without a reload. The checked
// jobs can be compared, or deleted (after an inline confirmation; one DELETE /api/jobs/<id>
// each, the outcome in the banner).

import {h, replace, link, badge} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../format.js';
import {setConn, showError, showNotice} from '../banner.js';
import {confirmAction} from '../confirm.js';
import {measure, timings} from '../timing.js';

export const STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
export const VERDICTS = ['healthy', 'vanishing', 'exploding', 'dead', 'not_learning', 'collapsing'];
export const ACTIVATIONS = ['logistic', 'tanh', 'atan', 'softsign', 'logsig', 'ramp', 'softplus', 'logmin',
  'semisigmoid', 'identity', 'leaky_relu', 'elu', 'selu', 'gelu', 'gelu_tanh', 'silu'];
const FILTER_KEYS = ['state', 'activation', 'min_depth', 'max_depth', 'name', 'label', 'verdict', 'sweep', 'filter'];
const DEFAULT_PAGE_SIZE = 50;
const MAX_COMPARE = 8;
const ACTIVE = new Set(['queued', 'running']);

// Tokens of the pages before the current one, per filter (kept while the app runs).
const tokenStacks = new Map();
// Jobs picked for comparison, across pages and filters: id -> name.
const selected = new Map();

/** The filter of a query string (URLSearchParams). */
export function filterOf(q) {
  return {
    state: q.getAll('state').flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean),
    activation: q.get('activation') || '',
    min_depth: q.get('min_depth') || '',
    max_depth: q.get('max_depth') || '',
    name: q.get('name') || '',
    label: q.get('label') || '',
    verdict: q.get('verdict') || '',
    sweep: q.get('sweep') || '',
    filter: q.get('filter') || '',
  };
}

function filterKey(f) {
  return JSON.stringify(FILTER_KEYS.map((k) => f[k]));
}

/** Whether a job (from the change stream) may belong to the filtered list; lenient where the
 *  server canonicalizes (activation aliases) or parses (the filter expression), since the
 *  server decides on the re-fetch. */
function mayMatch(job, f) {
  if (f.state.length && !f.state.includes(job.state)) return false;
  const depth = fmt.depthOf(job.spec);
  if (f.min_depth !== '' && depth !== null && depth < Number(f.min_depth)) return false;
  if (f.max_depth !== '' && depth !== null && depth > Number(f.max_depth)) return false;
  if (f.sweep !== '' && String(job.sweep_id ?? '') !== String(f.sweep)) return false;
  if (f.verdict && job.state !== 'succeeded' && job.state !== 'failed') return false;
  if (f.name && !String(job.spec?.name ?? '').toLowerCase().includes(f.name.toLowerCase())) return false;
  return true;
}

export function render(root, ctx) {
  const q = ctx.query;
  const filter = filterOf(q);
  const pageSize = Number(q.get('page_size')) || DEFAULT_PAGE_SIZE;
  const pageToken = q.get('page_token') || '';
  const order = q.get('order') || '';
  // The sort key ('' is creation order); largest first unless order=asc.
  const sort = q.get('sort') || '';
  const key = filterKey(filter) + pageSize + sort + order;
  // Only the server can tell whether a changed job still matches the expression, or where its
  // new result sorts it: a change to a listed job then re-fetches the page.
  const serverDecides = filter.filter !== '' || !['', 'created'].includes(sort);
  if (!tokenStacks.has(key)) tokenStacks.set(key, []);
  const stack = tokenStacks.get(key);
  document.title = 'gradlab: jobs';

  let rows = new Map(); // id -> job
  let nextToken = '';
  let loading = false;
  let refetchTimer = null;
  // The 400 the server answered this URL with (a filter that does not parse, an unknown sort
  // key): asking again cannot help until the URL changes.
  let badRequest = null;

  const tbody = h('tbody');
  const status = h('span', {class: 'muted', id: 'jobs-status'});
  const compareButton = h('button', {type: 'button', class: 'primary', id: 'compare', onclick: compare}, 'Compare');
  const selectionText = h('span', {class: 'muted'});
  const deleteSelected = confirmAction({
    id: 'delete-selected',
    label: 'Delete selected',
    title: 'delete the checked jobs and everything they stored',
    ask: askDelete,
    onError: (e) => ctx.fail(e),
  });
  const prevButton = h('button', {type: 'button', onclick: previous}, '← Previous');
  const firstButton = h('button', {type: 'button', onclick: first}, 'First');
  const nextButton = h('button', {type: 'button', onclick: next}, 'Next →');

  const problem = h('span', {class: 'field-error', id: 'filter-error', role: 'alert', hidden: true});
  // A new filter keeps the sort and starts again at page 1 (no page_token).
  const form = filterForm(filter, problem, (f) => ctx.navigate(`/${api.query(params(f))}`));

  const tableEl = h('table', {class: 'jobs dense', id: 'jobs-table'},
    h('thead', null, h('tr', null,
      h('th', {class: 'check'}, ''),
      h('th', {class: 'num'}, 'id'),
      h('th', null, 'name'),
      h('th', null, 'state'),
      h('th', null, 'activation'),
      sortable('depth', 'depth', 'num'),
      sortable('width', 'width', 'num'),
      h('th', null, 'init'),
      h('th', null, 'steps'),
      h('th', null, 'verdict'),
      sortable('test acc', 'test_accuracy', 'num'),
      sortable('created', 'created'),
      sortable('finished', 'finished'))),
    tbody);
  const columns = tableEl.tHead.rows[0].cells.length;

  replace(root,
    h('div', {class: 'page-head'},
      h('h1', null, 'Jobs'),
      status,
      h('span', {class: 'spacer'}),
      selectionText,
      compareButton,
      deleteSelected.el),
    form,
    h('div', {class: 'table-wrap'}, tableEl),
    h('div', {class: 'pager'}, firstButton, prevButton, nextButton,
      h('span', {class: 'muted'}, `${pageSize} per page`)));

  updateSelection();

  function params(extra = {}) {
    const p = {};
    for (const k of FILTER_KEYS) p[k] = filter[k];
    if (pageSize !== DEFAULT_PAGE_SIZE) p.page_size = pageSize;
    if (sort) p.sort = sort;
    if (order) p.order = order;
    return {...p, ...extra};
  }

  /** A column header linking to the list sorted by `by`, largest first; on the column sorted
   *  by, the link flips the direction. A new sort starts at page 1. */
  function sortable(label, by, cls = null) {
    const on = (sort || 'created') === by;
    const descending = order !== 'asc';
    const flip = on && descending ? 'asc' : '';
    const href = `/${api.query(params({sort: by === 'created' ? '' : by, order: flip}))}`;
    const dir = descending ? 'descending' : 'ascending';
    return h('th', {class: cls, dataset: {sort: by}, 'aria-sort': on ? dir : null, title: `sort by ${label}`},
      link(href, label, on ? (descending ? ' ↓' : ' ↑') : ''));
  }

  async function load({quiet = false} = {}) {
    if (loading) return;
    loading = true;
    if (!quiet) status.textContent = 'loading…';
    try {
      const r = await api.listJobs({...params(), page_size: pageSize, page_token: pageToken}, {signal: ctx.signal});
      rows = new Map(r.jobs.map((j) => [j.id, j]));
      nextToken = r.next_page_token;
      draw();
      // The first page drawn after the browser opened the URL: 'gradlab:jobs-first-draw'.
      if (timings().jobsFirstDraw === undefined) timings().jobsFirstDraw = measure('gradlab:jobs-first-draw', 0);
    } catch (e) {
      status.textContent = '';
      if (e instanceof api.ApiError && e.status === 400) showProblem(e);
      else ctx.fail(e);
    } finally {
      loading = false;
    }
  }

  /** A 400 is about this list's parameters: its message (naming the parameter, and for a
   *  filter the column) goes next to the filter box, and the table says why it is empty. */
  function showProblem(e) {
    badRequest = e;
    rows = new Map();
    nextToken = '';
    problem.textContent = e.message;
    problem.hidden = false;
    if (e.field === 'filter') form.elements.namedItem('filter').setAttribute('aria-invalid', 'true');
    draw();
  }

  function draw() {
    const list = [...rows.values()];
    if (list.length === 0) {
      const why = badRequest ? 'No jobs listed: the server refused this filter or sort (see above).'
        : pageToken ? 'No more jobs.' : 'No jobs match. Submit one with gradlab submit (see gradlab submit --help).';
      replace(tbody, h('tr', {class: 'empty'}, h('td', {colspan: columns}, why)));
    } else {
      replace(tbody, list.map(row));
    }
    status.textContent = badRequest ? '' : `${list.length} shown${pageToken ? ` (page ${stack.length + 1})` : ''}`;
    nextButton.disabled = !nextToken;
    prevButton.disabled = !pageToken;
    firstButton.disabled = !pageToken;
  }

  function row(job) {
    const spec = job.spec || {};
    const check = h('input', {
      type: 'checkbox', checked: selected.has(job.id), 'aria-label': `select job ${job.id}`,
      onchange: (e) => {
        if (e.target.checked) selected.set(job.id, spec.name || '');
        else selected.delete(job.id);
        updateSelection();
      },
    });
    const labels = Object.entries(spec.labels || {});
    const done = Number(job.steps_done) || 0;
    const total = Number(spec.steps) || 0;
    const share = total ? Math.min(1, done / total) : 0;
    const verdict = job.summary && job.summary.verdict ? job.summary.verdict.verdict : null;
    return h('tr', {dataset: {jobId: job.id, state: job.state}},
      h('td', {class: 'check'}, check),
      h('td', {class: 'num'}, link(`/jobs/${job.id}`, String(job.id))),
      h('td', {class: 'name'},
        link(`/jobs/${job.id}`, spec.name || h('span', {class: 'muted'}, '(unnamed)')),
        labels.length ? h('span', {class: 'labels'}, labels.slice(0, 4).map(([k, v]) => h('span', {class: 'label', title: `${k}=${v}`}, `${k}=${v}`))) : null),
      h('td', {class: 'state'}, badge(job.state)),
      h('td', null, fmt.specText(spec.activation)),
      h('td', {class: 'num'}, fmt.depthOf(spec) ?? '—'),
      h('td', {class: 'num'}, fmt.widthOf(spec) ?? '—'),
      h('td', null, fmt.specText(spec.init)),
      h('td', {class: 'progress-cell'},
        h('div', {class: `bar ${job.state}`, title: `${fmt.pct(share)}`}, h('div', {class: 'fill', style: {width: `${share * 100}%`}})),
        h('span', {class: 'steps'}, fmt.progress(done, total))),
      h('td', null, verdict ? badge(verdict, 'verdict') : h('span', {class: 'muted'}, '—')),
      h('td', {class: 'num test-acc'}, job.summary ? fmt.pct(job.summary.test_accuracy) : '—'),
      h('td', {class: 'time', title: fmt.time(job.created_ms, {alwaysDate: true})}, fmt.time(job.created_ms)),
      h('td', {class: 'time', title: fmt.time(job.finished_ms, {alwaysDate: true})}, fmt.time(job.finished_ms)));
  }

  function updateRow(job) {
    rows.set(job.id, job);
    const old = tbody.querySelector(`tr[data-job-id="${CSS.escape(String(job.id))}"]`);
    if (old) old.replaceWith(row(job));
  }

  function updateSelection() {
    const n = selected.size;
    deleteSelected.button.disabled = n === 0;
    deleteSelected.button.textContent = n ? `Delete selected (${n})` : 'Delete selected';
    if (n === 0) deleteSelected.close();
    else deleteSelected.refresh();
    compareButton.disabled = n < 2 || n > MAX_COMPARE;
    compareButton.textContent = n ? `Compare (${n})` : 'Compare';
    selectionText.textContent = n === 0 ? 'select 2–8 jobs to compare'
      : n > MAX_COMPARE ? `${n} selected: at most ${MAX_COMPARE}` : n === 1 ? '1 selected' : '';
  }

  function compare() {
    const ids = [...selected.keys()].sort((a, b) => a - b);
    if (ids.length < 2 || ids.length > MAX_COMPARE) return;
    ctx.navigate(`/compare?jobs=${ids.join(',')}`);
  }

  function askDelete() {
    const ids = [...selected.keys()].sort((a, b) => a - b);
    const n = ids.length;
    if (!n) return null;
    // Cancelling first is offered when a checked job is queued or running, or not on this page.
    const maybeActive = ids.filter((i) => !rows.has(i) || ACTIVE.has(rows.get(i).state));
    const shown = ids.slice(0, 6).map((i) => `#${i}`).join(', ') + (n > 6 ? ', …' : '');
    const choices = [{label: n === 1 ? 'Delete it' : `Delete ${n} jobs`, run: () => deleteJobs(ids, false)}];
    if (maybeActive.length) {
      choices.push({label: 'Cancel active ones and delete', id: 'delete-selected-cancel', run: () => deleteJobs(ids, true)});
    }
    return {
      text: `Delete ${n === 1 ? 'job' : `${n} jobs`} (${shown}) with everything ${n === 1 ? 'it' : 'they'} stored?`
        + (maybeActive.length ? ' Queued or running ones are kept unless cancelled.' : ''),
      choices,
    };
  }

  /** Deletes the jobs one by one; reports how many went and which did not (and why). */
  async function deleteJobs(ids, cancel) {
    const deleted = [];
    const failed = [];
    for (const id of ids) {
      try {
        await api.deleteJob(id, {cancel});
        deleted.push(id);
      } catch (e) {
        if (e instanceof api.ApiError && e.status === 401) throw e;
        if (e && e.name === 'AbortError') return;
        failed.push({id, e});
      }
    }
    for (const id of deleted) {
      selected.delete(id);
      rows.delete(id);
    }
    if (ctx.signal.aborted) return;
    draw();
    updateSelection();
    void load({quiet: true});
    const what = (n) => (n === 1 ? '1 job' : `${n} jobs`);
    if (!failed.length) {
      showNotice(`Deleted ${what(deleted.length)}: ${deleted.map((i) => `#${i}`).join(', ')}.`);
      return;
    }
    const why = failed.map(({id, e}) => {
      const m = /is (queued|running): cancel it first/.exec(e.message || '');
      if (e.status === 409 && m) return `job ${id} is ${m[1]}`;
      return String(e.message || e).includes(`job ${id}`) ? e.message : `job ${id}: ${e.message || e}`;
    });
    const active = failed.some(({e}) => e.status === 409);
    showError(`Deleted ${deleted.length} of ${what(ids.length)}. Not deleted: ${why.join('; ')}.`
      + (active ? ' Choose "Cancel active ones and delete" to delete queued or running jobs.' : ''));
  }

  function next() {
    if (!nextToken) return;
    stack.push(pageToken);
    ctx.navigate(`/${api.query(params({page_token: nextToken}))}`);
  }

  function previous() {
    const prev = stack.length ? stack.pop() : '';
    ctx.navigate(`/${api.query(params({page_token: prev}))}`);
  }

  function first() {
    stack.length = 0;
    ctx.navigate(`/${api.query(params())}`);
  }

  function scheduleRefetch(delay = 250) {
    if (refetchTimer || badRequest) return;
    refetchTimer = setTimeout(() => {
      refetchTimer = null;
      void load({quiet: true});
    }, delay);
  }

  // Live: state changes of any job.
  setConn('connecting');
  const changes = api.stream('/api/changes', {}, {
    events: {
      job: (raw) => {
        const job = api.decodeJob(raw);
        if (rows.has(job.id)) {
          updateRow(job);
          if (serverDecides) scheduleRefetch();
        } else if (!pageToken && mayMatch(job, filter)) scheduleRefetch();
      },
      // Each second, the running jobs whose progress moved (pushed by the server).
      progress: (moved) => {
        for (const {id, steps_done: done} of moved) {
          const job = rows.get(Number(id));
          if (job && job.steps_done !== done) updateRow({...job, steps_done: done});
        }
      },
      // A job deleted anywhere (another tab, the CLI, another server): the page fills up again.
      deleted: ({id}) => {
        if (!rows.has(Number(id))) return;
        rows.delete(Number(id));
        selected.delete(Number(id));
        draw();
        updateSelection();
        scheduleRefetch();
      },
      resync: () => scheduleRefetch(0),
    },
    onOpen: () => setConn('live'),
    onReconnect: () => scheduleRefetch(0),
    onError: (message, status) => {
      setConn('off', message);
      if (status !== 401) console.warn('changes stream:', message);
    },
  });
  ctx.onCleanup(() => {
    changes.close();
    setConn('');
  });

  ctx.onCleanup(() => {
    if (refetchTimer) clearTimeout(refetchTimer);
  });

  void load();
}

/** The filter bar, `problem` (the server's refusal) beside its filter box; onApply(filter)
 *  with the new filter's query parameters. */
function filterForm(filter, problem, onApply) {
  const stateBoxes = STATES.map((s) => h('label', {class: `chip state-${s}`},
    h('input', {type: 'checkbox', name: 'state', value: s, checked: filter.state.includes(s)}), s));
  const activation = h('input', {name: 'activation', list: 'activation-names', value: filter.activation, placeholder: 'any', size: 10});
  const minDepth = h('input', {name: 'min_depth', type: 'number', min: 1, value: filter.min_depth, placeholder: 'min', class: 'narrow'});
  const maxDepth = h('input', {name: 'max_depth', type: 'number', min: 1, value: filter.max_depth, placeholder: 'max', class: 'narrow'});
  const name = h('input', {name: 'name', value: filter.name, placeholder: 'contains', size: 12});
  const label = h('input', {name: 'label', value: filter.label, placeholder: 'key or key=value', size: 14});
  const verdict = h('select', {name: 'verdict'},
    h('option', {value: ''}, 'any'),
    VERDICTS.map((v) => h('option', {value: v, selected: filter.verdict === v}, v)));
  const sweep = h('input', {name: 'sweep', type: 'number', min: 1, value: filter.sweep, placeholder: 'id', class: 'narrow'});
  const expr = h('input', {
    name: 'filter', value: filter.filter, placeholder: 'test_accuracy >= 0.9 and depth >= 8',
    spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'filter-error',
    title: 'conditions joined by "and" on depth, width, steps, test_accuracy, test_loss, created, '
      + 'finished (> now-7d), state, activation, verdict, name (~ contains), label.KEY',
  });

  const collect = () => ({
    state: stateBoxes.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => i.value),
    activation: activation.value.trim(),
    min_depth: minDepth.value.trim(),
    max_depth: maxDepth.value.trim(),
    name: name.value.trim(),
    label: label.value.trim(),
    verdict: verdict.value,
    sweep: sweep.value.trim(),
    filter: expr.value.trim(),
  });
  const apply = (e) => {
    if (e) e.preventDefault();
    onApply(collect());
  };
  for (const l of stateBoxes) l.querySelector('input').addEventListener('change', () => apply());
  verdict.addEventListener('change', () => apply());

  const active = FILTER_KEYS.some((k) => (Array.isArray(filter[k]) ? filter[k].length : filter[k]));
  return h('form', {class: 'filters', onsubmit: apply, id: 'filters'},
    h('fieldset', {class: 'states'}, h('legend', null, 'state'), stateBoxes),
    h('label', null, 'activation ', activation),
    h('datalist', {id: 'activation-names'}, ACTIVATIONS.map((a) => h('option', {value: a}))),
    h('label', null, 'depth ', minDepth, '–', maxDepth),
    h('label', null, 'name ', name),
    h('label', null, 'label ', label),
    h('label', null, 'verdict ', verdict),
    h('label', null, 'sweep ', sweep),
    h('div', {class: 'expr'},
      h('label', null, 'filter ', expr),
      h('button', {type: 'submit'}, 'Apply'),
      active ? h('a', {href: '/', 'data-link': true, class: 'clear-filters'}, 'Clear') : null,
      problem));
}
