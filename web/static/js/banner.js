// The error banner under the top bar: one message at a time, as text.

import {h, clear} from './dom.js';

function root() {
  return document.getElementById('banner');
}

/** Shows `message` (an Error, ApiError or string) in a visible element of class "error". */
export function showError(message) {
  const el = root();
  if (!el) return;
  const text = message instanceof Error ? message.message : String(message);
  clear(el);
  el.append(h('div', {class: 'error', role: 'alert'},
    h('span', {class: 'error-text'}, text),
    h('button', {type: 'button', class: 'close', title: 'dismiss', 'aria-label': 'dismiss', onclick: clearBanner}, '×')));
}

/** A passing notice (not an error). */
export function showNotice(message) {
  const el = root();
  if (!el) return;
  clear(el);
  el.append(h('div', {class: 'notice'}, String(message)));
}

export function clearBanner() {
  const el = root();
  if (el) clear(el);
}

/** The live-updates indicator in the top bar: 'live', 'connecting', 'off' or '' (hidden). */
export function setConn(state, title = '') {
  const el = document.getElementById('conn');
  if (!el) return;
  el.dataset.conn = state;
  el.textContent = state === 'live' ? '● live' : state === 'connecting' ? '○ connecting' : state === 'off' ? '○ offline' : '';
  el.title = title || (state === 'live' ? 'receiving live updates' : '');
}
