// DOM building without HTML parsing: every string becomes a text node or an attribute value,
// never markup. Server text (job names, errors, labels) goes through here only, so a name like
// `<img src=x onerror=...>` is shown as those characters. Nothing in the app assigns innerHTML.

/** Properties set as DOM properties rather than attributes. */
const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'indeterminate', 'multiple']);

/**
 * h('a', {href: '/jobs/1', class: 'x', onclick: fn, dataset: {id: 1}}, 'text', child, [more])
 * Children: Nodes, strings/numbers (as text), arrays (flattened); null/undefined/false skipped.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) setProps(el, props);
  append(el, children);
  return el;
}

/** Sets attributes, properties (PROPS), dataset, style, text and on* listeners. */
export function setProps(el, props) {
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Removes every child of `el`. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replaces the children of `el` with `children`. */
export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

/** Plain text for an attribute-free context, e.g. document.title. */
export function text(s) {
  return s === null || s === undefined ? '' : String(s);
}

/** A link handled by the router (pushState) rather than a page load. */
export function link(href, ...children) {
  return h('a', {href, 'data-link': true}, ...children);
}

/** A badge for a job or sweep state, or a verdict: colored by CSS class. */
export function badge(value, kind = 'state') {
  const v = value === null || value === undefined || value === '' ? '—' : String(value);
  const cls = v.replace(/[^a-z_]/gi, '').toLowerCase();
  return h('span', {class: `badge ${kind} ${kind}-${cls}`, dataset: {[kind]: v}}, v);
}

/** A table from column headers and rows of cells (Nodes or text). */
export function table(headers, rows, props = {}) {
  return h('table', props,
    h('thead', null, h('tr', null, headers.map((c) => (c instanceof Node ? h('th', null, c) : h('th', null, c))))),
    h('tbody', null, rows));
}

/** A two-column key/value table. */
export function kvTable(pairs, props = {}) {
  return h('table', {class: 'kv', ...props},
    h('tbody', null, pairs.filter(Boolean).map(([k, v]) => h('tr', null, h('th', null, k), h('td', null, v)))));
}
