// The token form, shown instead of any data while the server answers 401.

import {h, replace} from '../dom.js';
import * as api from '../api.js';

/** Renders the form into `root`; onSuccess() after the server accepted the token (204). */
export function renderLogin(root, {message, onSuccess}) {
  const input = h('input', {
    type: 'password', name: 'token', id: 'token', autocomplete: 'current-password', required: true,
    placeholder: 'token', spellcheck: 'false',
  });
  const status = h('div', {class: 'login-status', 'aria-live': 'polite'});
  const button = h('button', {type: 'submit', class: 'primary'}, 'Sign in');
  const form = h('form', {class: 'login-form', onsubmit: submit},
    h('label', {for: 'token'}, 'Token'),
    input,
    button);

  async function submit(e) {
    e.preventDefault();
    const token = input.value;
    if (!token) return;
    button.disabled = true;
    replace(status, h('span', {class: 'muted'}, 'Checking…'));
    try {
      await api.login(token);
      input.value = '';
      onSuccess();
    } catch (err) {
      replace(status, h('div', {class: 'error', role: 'alert'}, err.message || String(err)));
      input.select();
    } finally {
      button.disabled = false;
    }
  }

  replace(root, h('section', {class: 'login card'},
    h('h1', null, 'Sign in'),
    h('p', {class: 'muted'}, 'This gradlab server needs its token (the one given to gradlab serve --token).'),
    form,
    status));
  if (message && !/^(unauthenticated|missing|no token)/i.test(message)) {
    // The reason the server gave (e.g. a token that stopped being valid) is worth showing.
    replace(status, h('div', {class: 'notice'}, message));
  }
  input.focus();
}
