// `/sweeps`: sweeps, newest first, with their jobs' progress.

import {h, replace, link, badge} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../format.js';

const PAGE_SIZE = 50;
const stack = [];

/** "12/36 done · 2 running · 1 failed" and a bar, from StateCounts. */
export function countsView(c) {
  c = c || {};
  const total = ['queued', 'running', 'succeeded', 'failed', 'cancelled'].reduce((s, k) => s + (Number(c[k]) || 0), 0);
  const done = (Number(c.succeeded) || 0) + (Number(c.failed) || 0) + (Number(c.cancelled) || 0);
  const seg = (k) => (total && c[k] ? h('div', {class: `seg ${k}`, style: {width: `${(100 * c[k]) / total}%`}, title: `${c[k]} ${k}`}) : null);
  const extra = ['running', 'queued', 'failed', 'cancelled'].filter((k) => c[k]).map((k) => `${c[k]} ${k}`);
  return h('div', {class: 'counts'},
    h('div', {class: 'stack-bar'}, seg('succeeded'), seg('failed'), seg('cancelled'), seg('running'), seg('queued')),
    h('span', {class: 'counts-text'}, `${done}/${total} done${extra.length ? ` · ${extra.join(' · ')}` : ''}`));
}

export function axesText(spec) {
  return (spec && Array.isArray(spec.axes) ? spec.axes : [])
    .map((a) => `${a.field}: ${(a.values || []).join(', ')}`).join(' × ');
}

export function render(root, ctx) {
  document.title = 'gradlab: sweeps';
  const pageToken = ctx.query.get('page_token') || '';
  if (!pageToken) stack.length = 0;
  const tbody = h('tbody');
  const status = h('span', {class: 'muted'});
  let nextToken = '';
  let sweeps = [];
  const nextButton = h('button', {type: 'button', onclick: () => {
    if (!nextToken) return;
    stack.push(pageToken);
    ctx.navigate(`/sweeps${api.query({page_token: nextToken})}`);
  }}, 'Next →');
  const prevButton = h('button', {type: 'button', onclick: () => {
    ctx.navigate(`/sweeps${api.query({page_token: stack.pop() || ''})}`);
  }}, '← Previous');
  const firstButton = h('button', {type: 'button', onclick: () => {
    stack.length = 0;
    ctx.navigate('/sweeps');
  }}, 'First');

  replace(root,
    h('div', {class: 'page-head'}, h('h1', null, 'Sweeps'), status),
    h('div', {class: 'table-wrap'},
      h('table', {class: 'dense sweeps', id: 'sweeps-table'},
        h('thead', null, h('tr', null,
          h('th', {class: 'num'}, 'id'), h('th', null, 'name'), h('th', null, 'state'), h('th', null, 'progress'),
          h('th', null, 'axes'), h('th', null, 'created'), h('th', null, 'finished'))),
        tbody)),
    h('div', {class: 'pager'}, firstButton, prevButton, nextButton));

  async function load(quiet) {
    if (!quiet) status.textContent = 'loading…';
    try {
      const r = await api.listSweeps({page_size: PAGE_SIZE, page_token: pageToken}, {signal: ctx.signal});
      sweeps = r.sweeps;
      nextToken = r.next_page_token;
      if (!sweeps.length) {
        replace(tbody, h('tr', {class: 'empty'}, h('td', {colspan: 7}, 'No sweeps yet. Start one with gradlab sweep (see gradlab sweep --help).')));
      } else {
        replace(tbody, sweeps.map((s) => h('tr', {dataset: {sweepId: s.id, state: s.state}},
          h('td', {class: 'num'}, link(`/sweeps/${s.id}`, String(s.id))),
          h('td', null, link(`/sweeps/${s.id}`, (s.spec && s.spec.name) || h('span', {class: 'muted'}, '(unnamed)'))),
          h('td', null, badge(s.state)),
          h('td', {class: 'counts-cell'}, countsView(s.counts)),
          h('td', {class: 'axes'}, axesText(s.spec)),
          h('td', {class: 'time'}, fmt.time(s.created_ms)),
          h('td', {class: 'time'}, fmt.time(s.finished_ms)))));
      }
      status.textContent = `${sweeps.length} shown`;
      nextButton.disabled = !nextToken;
      prevButton.disabled = !pageToken;
      firstButton.disabled = !pageToken;
    } catch (e) {
      status.textContent = '';
      ctx.fail(e);
    }
  }

  const poll = setInterval(() => {
    if (!document.hidden && sweeps.some((s) => s.state === 'queued' || s.state === 'running')) void load(true);
  }, 3000);
  ctx.onCleanup(() => clearInterval(poll));
  void load(false);
}
