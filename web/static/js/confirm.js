// Actions that ask again in the page: the button is replaced by a question and its choices
// until one is clicked ("Keep" puts the button back). No window.confirm: that blocks the page,
// cannot say "cancel and delete", and is not part of the DOM the rest of the page lives in.

import {h, replace} from './dom.js';

/**
 * A button (class "danger", `id`) that asks before doing anything.
 *
 * options:
 *  - id: the button's id; the question is `${id}-confirm`, its first choice `${id}-yes` (unless
 *    the choice names its own id) and "Keep" `${id}-no`.
 *  - label, title: the button's text and tooltip.
 *  - ask(): called when the button is clicked (so the question fits the state then):
 *    {text, choices: [{label, run, id?}]}, or null to do nothing. `run` may be async; while it
 *    runs every button of the question is disabled.
 *  - onError(e): a choice's run failed (the question closes first).
 *
 * Returns {el, button, get open(), close(), refresh()}: `refresh()` asks again if the question
 * is open and idle (the state it depends on changed).
 */
export function confirmAction({id, label, title, ask, onError}) {
  const el = h('span', {class: 'confirm-action'});
  const button = h('button', {type: 'button', class: 'danger', id, title, onclick: () => show()}, label);
  let open = false;
  let busy = false;

  function close() {
    open = false;
    busy = false;
    replace(el, button);
  }

  function show({focus = true} = {}) {
    const q = ask();
    if (!q) return;
    open = true;
    const choices = q.choices.map((c, i) => h('button', {
      type: 'button',
      class: 'danger confirm-yes',
      id: c.id || (i === 0 ? `${id}-yes` : undefined),
      onclick: () => choose(c),
    }, c.label));
    const keep = h('button', {type: 'button', id: `${id}-no`, onclick: () => {
      close();
      button.focus();
    }}, 'Keep');
    replace(el, h('span', {class: 'confirm', id: `${id}-confirm`, role: 'group'},
      h('span', {class: 'confirm-text'}, q.text), choices, keep));
    if (focus) keep.focus();
  }

  async function choose(choice) {
    if (busy) return;
    busy = true;
    for (const b of el.querySelectorAll('button')) b.disabled = true;
    try {
      await choice.run();
    } catch (e) {
      close();
      if (onError) onError(e);
      return;
    }
    close();
  }

  close();
  return {
    el,
    button,
    get open() { return open; },
    close,
    refresh() {
      if (open && !busy) show({focus: false});
    },
  };
}
