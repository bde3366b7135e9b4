// The job page's run management: the name in the page head with "Rename" (edited in place), the
// label chips (× removes one, "key=value" adds one), and "Delete" with an inline confirmation
// ("Cancel and delete" for a queued or running job). PATCH and DELETE /api/jobs/<id>; after a
// delete the app goes to the jobs list with a notice. Failures go to the error banner.
//
// The elements are made once and kept across the page's redraws (the live stream redraws the
// head at each change of state), so an edit in progress or an open question survives them.

import {h, replace} from '../dom.js';
import * as api from '../api.js';
import {showError, showNotice} from '../banner.js';
import {confirmAction} from '../confirm.js';

const ACTIVE = new Set(['queued', 'running']);

/** "key=value" as [key, value]; null without "=". */
export function parseLabel(text) {
  const i = text.indexOf('=');
  if (i < 0) return null;
  return [text.slice(0, i).trim(), text.slice(i + 1).trim()];
}

function jobTitle(job, id) {
  const name = job && job.spec ? job.spec.name : '';
  return name || `job ${job ? job.id : id}`;
}

export class JobActions {
  /**
   * ctx: the page's router context. jobId: the page's id. onUpdate(job): the server's record
   * after a rename or a label change (the page redraws with it).
   */
  constructor(ctx, {jobId, onUpdate}) {
    this.ctx = ctx;
    this.id = jobId;
    this.onUpdate = onUpdate;
    this.job = null;
    this.editing = false;
    this.busy = false;
    /** True from the delete request on: the page's live stream may fail meanwhile. */
    this.deleting = false;

    // The name, or its editor: the first thing in the page head.
    this.title = h('span', {class: 'job-title'});
    this.nameInput = h('input', {
      id: 'rename-input', name: 'name', 'aria-label': 'job name', autocomplete: 'off', size: 36, maxlength: 1024,
      onkeydown: (e) => {
        if (e.key === 'Escape') this.stopEdit();
      },
    });
    this.saveButton = h('button', {type: 'submit', class: 'primary', id: 'rename-save'}, 'Save');
    this.renameForm = h('form', {class: 'inline-form rename-form', id: 'rename-form', onsubmit: (e) => {
      e.preventDefault();
      void this.saveName();
    }},
    this.nameInput,
    this.saveButton,
    h('button', {type: 'button', id: 'rename-cancel', onclick: () => this.stopEdit()}, 'Cancel'));

    // Labels: a row under the head.
    this.chips = h('span', {class: 'label-chips'});
    this.labelInput = h('input', {
      id: 'label-input', name: 'label', placeholder: 'key=value', size: 18, autocomplete: 'off',
      'aria-label': 'new label, key=value',
    });
    this.labelButton = h('button', {type: 'submit', id: 'label-add'}, 'Add label');
    this.labels = h('div', {class: 'job-labels', id: 'job-labels'},
      h('span', {class: 'figure-label'}, 'labels'),
      this.chips,
      h('form', {class: 'inline-form', id: 'label-form', onsubmit: (e) => {
        e.preventDefault();
        void this.addLabel();
      }}, this.labelInput, this.labelButton));

    // Delete: the last thing in the page head.
    this.remove = confirmAction({
      id: 'delete',
      label: 'Delete',
      title: 'delete this job and everything it stored',
      ask: () => this.ask(),
      onError: (e) => {
        this.deleting = false;
        this.ctx.fail(e);
      },
    });
    // Nothing of it shows before the job is read (nor on a missing job's page).
    this.remove.el.hidden = true;
    this.labels.hidden = true;
    this.drawTitle();
  }

  /** The job as the page has it now. */
  update(job) {
    const wasActive = this.job && ACTIVE.has(this.job.state);
    this.job = job;
    if (!this.editing) this.drawTitle();
    this.drawChips();
    this.labels.hidden = false;
    this.remove.el.hidden = false;
    if (wasActive !== ACTIVE.has(job.state)) this.remove.refresh();
  }

  drawTitle() {
    if (!this.job) {
      replace(this.title);
      return;
    }
    replace(this.title,
      h('h1', null, jobTitle(this.job, this.id)),
      h('button', {type: 'button', class: 'small-button', id: 'rename', title: 'rename this job', onclick: () => this.startEdit()}, 'Rename'));
  }

  drawChips() {
    const labels = Object.entries((this.job && this.job.spec && this.job.spec.labels) || {});
    replace(this.chips, labels.length
      ? labels.map(([k, v]) => h('span', {class: 'label-chip', dataset: {key: k}, title: `${k}=${v}`},
        h('span', {class: 'label-text'}, `${k}=${v}`),
        h('button', {
          type: 'button', class: 'chip-remove', title: `remove label ${k}`, 'aria-label': `remove label ${k}`,
          disabled: this.busy, onclick: () => void this.removeLabel(k),
        }, '×')))
      : h('span', {class: 'muted'}, 'none'));
  }

  // -------------------------------------------------------------------------------------
  // Rename

  startEdit() {
    if (!this.job) return;
    this.editing = true;
    this.nameInput.value = (this.job.spec && this.job.spec.name) || '';
    replace(this.title, this.renameForm);
    this.nameInput.focus();
    this.nameInput.select();
  }

  stopEdit() {
    this.editing = false;
    this.drawTitle();
    const b = document.getElementById('rename');
    if (b) b.focus();
  }

  async saveName() {
    const name = this.nameInput.value.trim();
    if (name === ((this.job.spec && this.job.spec.name) || '')) {
      this.stopEdit();
      return;
    }
    // On failure the editor stays open with the text, to fix it.
    if (await this.apply({name})) this.stopEdit();
  }

  // -------------------------------------------------------------------------------------
  // Labels

  async addLabel() {
    const text = this.labelInput.value.trim();
    if (!text) return;
    const kv = parseLabel(text);
    if (!kv) {
      showError(`label "${text}": write it as key=value`);
      this.labelInput.focus();
      return;
    }
    if (await this.apply({set_labels: {[kv[0]]: kv[1]}})) {
      this.labelInput.value = '';
      this.labelInput.focus();
    }
  }

  async removeLabel(key) {
    await this.apply({remove_labels: [key]});
  }

  /** Sends an update; true once the page has the new record. */
  async apply(changes) {
    if (this.busy) return false;
    this.setBusy(true);
    try {
      const job = await api.updateJob(this.id, changes);
      this.setBusy(false);
      this.onUpdate(job);
      return true;
    } catch (e) {
      this.setBusy(false);
      this.ctx.fail(e);
      return false;
    }
  }

  setBusy(busy) {
    this.busy = busy;
    for (const el of [this.saveButton, this.labelButton, ...this.chips.querySelectorAll('button')]) el.disabled = busy;
  }

  // -------------------------------------------------------------------------------------
  // Delete

  ask() {
    const job = this.job;
    if (!job) return null;
    if (ACTIVE.has(job.state)) {
      return {
        text: `Job ${job.id} is ${job.state}. Cancel it, then delete it with everything it stored?`,
        choices: [{label: 'Cancel and delete', run: () => this.delete(true)}],
      };
    }
    return {
      text: `Delete job ${job.id} with its history? This cannot be undone.`,
      choices: [{label: 'Delete', run: () => this.delete(false)}],
    };
  }

  async delete(cancel) {
    this.deleting = true;
    await api.deleteJob(this.id, {cancel});
    const title = jobTitle(this.job, this.id);
    const named = title === `job ${this.id}` ? `job ${this.id}` : `job ${this.id} (${title})`;
    this.ctx.navigate('/');
    showNotice(`Deleted ${named}.`);
  }
}
