// Client-side routing on location.pathname with history.pushState, so that every view has a
// URL to share. Each page module exports render(root, ctx) and may return a cleanup function;
// ctx.onCleanup registers more (EventSources, timers, listeners). Leaving a page runs them.

import {clear} from './dom.js';
import {clearBanner, showError} from './banner.js';
import {ApiError} from './api.js';

let routes = [];
let current = null; // {cleanups: [], controller}
let root = null;
let firstRender = true;
let hooks = {onUnauthorized: null, onRender: null};

/** routes: [{pattern: RegExp, keys: ['id'], page: {render}}] */
export function configure(routeTable, appRoot, options = {}) {
  routes = routeTable;
  root = appRoot;
  hooks = {...hooks, ...options};
}

export function start() {
  window.addEventListener('popstate', () => render());
  document.addEventListener('click', onClick);
  render();
}

function onClick(e) {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target instanceof Element ? e.target.closest('a[href]') : null;
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/static/')) return;
  if (!match(url.pathname)) return;
  e.preventDefault();
  navigate(url.pathname + url.search + url.hash);
}

function match(pathname) {
  for (const r of routes) {
    const m = r.pattern.exec(pathname);
    if (m) {
      const params = {};
      (r.keys || []).forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1]); });
      return {route: r, params};
    }
  }
  return null;
}

/** Goes to `url` (path + query) and renders it. */
export function navigate(url, {replace = false} = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  performance.mark('gradlab:route-start');
  render();
}

/** Changes the query of the current URL without rendering again (view state: metric, zoom). */
export function setQuery(params, {replace = true} = {}) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(params)) {
    q.delete(k);
    if (v === null || v === undefined || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, String(x)));
    else q.set(k, String(v));
  }
  const s = q.toString();
  const url = location.pathname + (s ? `?${s}` : '') + location.hash;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
}

/** Ends the current page (its streams and timers). */
export function leave() {
  if (!current) return;
  current.controller.abort();
  for (const fn of current.cleanups.splice(0).reverse()) {
    try {
      fn();
    } catch (e) {
      console.error(e);
    }
  }
  current = null;
}

/** Renders the page of the current location. */
export function render() {
  leave();
  clearBanner();
  clear(root);
  const found = match(location.pathname);
  const controller = new AbortController();
  const cleanups = [];
  current = {cleanups, controller};
  const routeStart = firstRender ? 0 : lastMark('gradlab:route-start');
  firstRender = false;
  const ctx = {
    params: found ? found.params : {},
    query: new URLSearchParams(location.search),
    signal: controller.signal,
    routeStart,
    navigate,
    setQuery,
    onCleanup: (fn) => cleanups.push(fn),
    fail: (err) => fail(err, controller.signal),
  };
  if (hooks.onRender) hooks.onRender(location.pathname);
  if (!found) {
    showError(`no page at ${location.pathname}`);
    return;
  }
  try {
    const ret = found.route.page.render(root, ctx);
    if (ret && typeof ret.then === 'function') {
      ret.then((cleanup) => { if (typeof cleanup === 'function') cleanups.push(cleanup); }, ctx.fail);
    } else if (typeof ret === 'function') {
      cleanups.push(ret);
    }
  } catch (e) {
    ctx.fail(e);
  }
}

function lastMark(name) {
  const marks = performance.getEntriesByName(name, 'mark');
  return marks.length ? marks[marks.length - 1].startTime : 0;
}

/** A page's failure: 401 shows the token form, anything else the banner. */
function fail(err, signal) {
  if (signal && signal.aborted) return;
  if (err && err.name === 'AbortError') return;
  if (err instanceof ApiError && err.status === 401) {
    if (hooks.onUnauthorized) hooks.onUnauthorized(err.message);
    return;
  }
  console.error(err);
  showError(err);
}
