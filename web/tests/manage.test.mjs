// Run management in the dashboard: renaming a job in place, adding and removing labels,
// deleting a job from its page (a running one with "Cancel and delete"), deleting the checked
// jobs of the list, and deleting a sweep. Every confirmation is inline (no dialogs: a dialog
// would be logged by newPage and dismissed). A script in a name set by renaming stays text.

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {serverAndBrowser, TEST_TIMEOUT} from './fixture.mjs';
import {sleep} from './server.mjs';
import {newPage, screenshot, pageErrors} from './browser.mjs';

let server;
let browser;
serverAndBrowser({}, (env) => ({server, browser} = env));

const SMALL = ['--depth', '2', '--width', '8', '--steps', '30'];
/** Runs until cancelled, for the tests' purposes (the server's --max-steps). */
const LONG = ['--depth', '2', '--width', '8', '--steps', '1000000'];

async function finished(name, extra = []) {
  const id = await server.submit(['--name', name, ...SMALL, ...extra]);
  await server.waitJob(id, (j) => j.state === 'succeeded', {what: 'succeeded'});
  return id;
}

async function running(name, extra = []) {
  const id = await server.submit(['--name', name, ...LONG, ...extra]);
  await server.waitJob(id, (j) => j.state === 'running' && j.steps_done > 0, {what: 'running'});
  return id;
}

/** Opens /jobs/<id> and waits for its head. */
async function jobPage(id) {
  const page = await newPage(browser);
  await page.goto(`${server.url}/jobs/${id}`);
  await page.locator('.job-head h1').waitFor();
  await page.locator('#rename').waitFor();
  return page;
}

const headName = async (page) => (await page.locator('.job-head h1').textContent()).trim();

test('a job renamed on its page shows the new name in the head, the spec and the jobs list', {timeout: TEST_TIMEOUT}, async () => {
  const id = await finished('old-name');
  const page = await jobPage(id);
  assert.equal(await headName(page), 'old-name');

  // Cancel leaves the name as it was.
  await page.click('#rename');
  await page.fill('#rename-input', 'never-saved');
  await page.click('#rename-cancel');
  assert.equal(await headName(page), 'old-name');

  await page.click('#rename');
  assert.equal(await page.inputValue('#rename-input'), 'old-name', 'the editor starts from the name');
  await page.fill('#rename-input', '  new name for the job  ');
  await screenshot(page, 'job-rename-editing');
  await page.press('#rename-input', 'Enter');
  await page.waitForFunction(() => document.querySelector('.job-head h1')?.textContent === 'new name for the job');
  assert.equal(await page.locator('#rename-input').count(), 0, 'the editor closed');
  assert.match(await page.locator('#spec-table').textContent(), /new name for the job/);
  assert.equal(await page.title(), 'gradlab: new name for the job');
  const stored = await server.api(`/api/jobs/${id}`);
  assert.equal(stored.body.spec.name, 'new name for the job', 'trimmed and stored');
  await screenshot(page, 'job-renamed');

  // The list has it, also through its name filter.
  await page.click('a[data-nav=jobs]');
  const cell = page.locator(`#jobs-table tr[data-job-id="${id}"] td.name a`);
  await cell.waitFor();
  assert.equal((await cell.textContent()).trim(), 'new name for the job');
  await page.goto(`${server.url}/?name=old-name`);
  await page.locator('#jobs-table tbody tr').first().waitFor();
  assert.equal(await page.locator(`#jobs-table tr[data-job-id="${id}"]`).count(), 0);
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('labels are added as key=value and removed with their ×; bad keys show the server\'s error', {timeout: TEST_TIMEOUT}, async () => {
  const id = await finished('labelled', ['--label', 'keep=yes']);
  const page = await jobPage(id);
  const chips = () => page.$$eval('#job-labels .label-chip', (els) => els.map((e) => e.dataset.key));
  assert.deepEqual(await chips(), ['keep']);

  await page.fill('#label-input', 'team=vision');
  await page.click('#label-add');
  await page.locator('#job-labels .label-chip[data-key="team"]').waitFor();
  assert.equal((await page.locator('#job-labels .label-chip[data-key="team"] .label-text').textContent()), 'team=vision');
  assert.equal(await page.inputValue('#label-input'), '', 'the input is emptied');
  assert.match(await page.locator('#spec-table').textContent(), /team=vision/);
  assert.deepEqual((await server.api(`/api/jobs/${id}`)).body.spec.labels, {keep: 'yes', team: 'vision'});
  // A new value for a key replaces the old one; Enter submits.
  await page.fill('#label-input', 'team=audio');
  await page.press('#label-input', 'Enter');
  await page.waitForFunction(() => document.querySelector('#job-labels .label-chip[data-key="team"] .label-text')?.textContent === 'team=audio');
  await screenshot(page, 'job-labels');

  // The list's label filter finds it.
  const list = await newPage(browser);
  await list.goto(`${server.url}/?label=team%3Daudio`);
  await list.locator(`#jobs-table tr[data-job-id="${id}"]`).waitFor();
  assert.equal(await list.locator('#jobs-table tbody tr').count(), 1);
  await list.context().close();

  // Removing one.
  await page.click('#job-labels .label-chip[data-key="keep"] .chip-remove');
  await page.waitForFunction(() => !document.querySelector('#job-labels .label-chip[data-key="keep"]'));
  assert.deepEqual(await chips(), ['team']);
  assert.deepEqual((await server.api(`/api/jobs/${id}`)).body.spec.labels, {team: 'audio'});

  // A key with a space: the server's 400, in the error banner; the input keeps the text.
  await page.fill('#label-input', 'bad key=1');
  await page.click('#label-add');
  const err = page.locator('#banner .error');
  await err.waitFor();
  assert.match(await err.textContent(), /label key "bad key"/);
  assert.equal(await page.inputValue('#label-input'), 'bad key=1');
  // Without "=": said before asking the server.
  await page.fill('#label-input', 'novalue');
  await page.click('#label-add');
  await page.waitForFunction(() => /key=value/.test(document.querySelector('#banner .error')?.textContent || ''));
  await screenshot(page, 'job-label-error');
  assert.deepEqual((await server.api(`/api/jobs/${id}`)).body.spec.labels, {team: 'audio'}, 'nothing changed');
  assert.deepEqual(await chips(), ['team']);
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('a finished job deleted from its page is gone from the list and its page', {timeout: TEST_TIMEOUT}, async () => {
  const kept = await finished('kept-job', ['--label', 'suite=delete-one']);
  const id = await finished('doomed-job', ['--label', 'suite=delete-one']);
  const page = await jobPage(id);
  await page.waitForFunction(() => document.getElementById('heatmap')?.dataset.state === 'done');

  // "Keep" closes the question and deletes nothing.
  await page.click('#delete');
  await page.locator('#delete-confirm').waitFor();
  await page.click('#delete-no');
  assert.equal(await page.locator('#delete-confirm').count(), 0);
  assert.equal((await server.api(`/api/jobs/${id}`)).status, 200);

  await page.click('#delete');
  const confirm = page.locator('#delete-confirm');
  await confirm.waitFor();
  assert.match(await confirm.textContent(), new RegExp(`Delete job ${id} with its history`));
  assert.equal((await page.locator('#delete-yes').textContent()).trim(), 'Delete');
  await screenshot(page, 'job-delete-confirm');
  await page.click('#delete-yes');
  await page.waitForURL(`${server.url}/`);
  const notice = page.locator('#banner .notice');
  await notice.waitFor();
  assert.equal((await notice.textContent()).trim(), `Deleted job ${id} (doomed-job).`);
  await page.locator(`#jobs-table tr[data-job-id="${kept}"]`).waitFor();
  assert.equal(await page.locator(`#jobs-table tr[data-job-id="${id}"]`).count(), 0);
  await screenshot(page, 'job-deleted-notice');
  assert.equal((await server.api(`/api/jobs/${id}`)).status, 404);
  assert.equal(await page.locator('#banner .error').count(), 0);

  await page.goto(`${server.url}/jobs/${id}`);
  const err = page.locator('.error');
  await err.first().waitFor();
  assert.match(await err.first().textContent(), new RegExp(`job ${id} not found`));
  assert.equal(await page.locator('#delete').count(), 0, 'nothing to delete on a missing job\'s page');
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('a running job\'s page offers "Cancel and delete", which cancels it and deletes it', {timeout: TEST_TIMEOUT}, async () => {
  const id = await running('running-doomed');
  const page = await jobPage(id);
  await page.waitForFunction(() => Number(document.getElementById('heatmap')?.dataset.steps) > 0);
  assert.equal(await page.locator('.job-head .badge.state').textContent(), 'running');
  await page.click('#delete');
  const confirm = page.locator('#delete-confirm');
  await confirm.waitFor();
  assert.match(await confirm.textContent(), new RegExp(`Job ${id} is running`));
  assert.equal((await page.locator('#delete-yes').textContent()).trim(), 'Cancel and delete');
  await screenshot(page, 'job-delete-running-confirm');
  // Without cancel the server refuses (409); the page never asks for that.
  const refused = await server.api(`/api/jobs/${id}`, {method: 'DELETE'});
  assert.equal(refused.status, 409);
  assert.match(refused.body.error, /cancel it first/);

  await page.click('#delete-yes');
  await page.waitForURL(`${server.url}/`);
  await page.locator('#banner .notice').waitFor();
  assert.match(await page.locator('#banner .notice').textContent(), new RegExp(`Deleted job ${id} \\(running-doomed\\)`));
  assert.equal((await server.api(`/api/jobs/${id}`)).status, 404);
  await sleep(500); // a late failure of the job page's live stream would show now
  assert.equal(await page.locator('#banner .error').count(), 0, 'no "live updates" error from the closed stream');
  assert.equal(await page.locator(`#jobs-table tr[data-job-id="${id}"]`).count(), 0);
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('the jobs list deletes the checked jobs and says which it could not', {timeout: TEST_TIMEOUT}, async () => {
  const done = [];
  for (let i = 0; i < 3; i++) done.push(await finished(`bulk-${i}`, ['--label', 'suite=bulk']));
  const busy = await running('bulk-running', ['--label', 'suite=bulk']);
  const other = await finished('bulk-unchecked', ['--label', 'suite=bulk']);
  const page = await newPage(browser);
  await page.goto(`${server.url}/?label=suite%3Dbulk`);
  await page.locator(`#jobs-table tr[data-job-id="${other}"]`).waitFor();
  assert.ok(await page.locator('#delete-selected').isDisabled(), 'nothing checked: nothing to delete');
  for (const id of [...done, busy]) await page.check(`#jobs-table tr[data-job-id="${id}"] input[type=checkbox]`);
  assert.equal((await page.locator('#delete-selected').textContent()).trim(), 'Delete selected (4)');

  await page.click('#delete-selected');
  const confirm = page.locator('#delete-selected-confirm');
  await confirm.waitFor();
  assert.match(await confirm.textContent(), /Delete 4 jobs/);
  assert.equal(await page.locator('#delete-selected-cancel').count(), 1, 'a running job is checked: cancelling is offered');
  await screenshot(page, 'jobs-delete-selected-confirm');
  // Without cancelling: the finished ones go, the running one stays (and stays checked).
  await page.click('#delete-selected-yes');
  const err = page.locator('#banner .error');
  await err.waitFor();
  assert.match(await err.textContent(), new RegExp(`Deleted 3 of 4 jobs\\. Not deleted: job ${busy} is running`));
  await page.waitForFunction((ids) => ids.every((i) => !document.querySelector(`#jobs-table tr[data-job-id="${i}"]`)), done);
  assert.equal(await page.locator(`#jobs-table tr[data-job-id="${busy}"]`).count(), 1);
  assert.equal(await page.locator(`#jobs-table tr[data-job-id="${other}"]`).count(), 1, 'an unchecked job stays');
  assert.ok(await page.locator(`#jobs-table tr[data-job-id="${busy}"] input[type=checkbox]`).isChecked());
  assert.equal((await page.locator('#delete-selected').textContent()).trim(), 'Delete selected (1)');
  await screenshot(page, 'jobs-delete-selected-partial');
  for (const id of done) assert.equal((await server.api(`/api/jobs/${id}`)).status, 404);

  // Then with cancelling.
  await page.click('#delete-selected');
  await page.click('#delete-selected-cancel');
  await page.waitForFunction(() => /Deleted 1 job/.test(document.querySelector('#banner .notice')?.textContent || ''));
  await page.waitForFunction((i) => !document.querySelector(`#jobs-table tr[data-job-id="${i}"]`), busy);
  assert.equal((await server.api(`/api/jobs/${busy}`)).status, 404);
  assert.ok(await page.locator('#delete-selected').isDisabled());
  assert.equal(await page.locator('#jobs-table tbody tr[data-job-id]').count(), 1);
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('a sweep is deleted with its jobs from its page, a running one by cancelling it first', {timeout: TEST_TIMEOUT}, async () => {
  // Finished: "Delete sweep".
  const small = await server.sweep(['--name', 'small-sweep', '--axis', 'depth=1,2', ...['--width', '8', '--steps', '30']]);
  const s = await server.waitSweep(small, (x) => x.state === 'succeeded');
  assert.equal(s.counts.succeeded, 2);
  const jobsOf = async (sweepId) => (await server.api(`/api/jobs?sweep=${sweepId}`)).body.jobs.map((j) => j.id);
  const smallJobs = await jobsOf(small);
  const page = await newPage(browser);
  await page.goto(`${server.url}/sweeps/${small}`);
  await page.locator('#delete-sweep').waitFor();
  await page.click('#delete-sweep');
  await page.locator('#delete-sweep-confirm').waitFor();
  assert.match(await page.locator('#delete-sweep-confirm').textContent(), new RegExp(`Delete sweep ${small} and its 2 jobs`));
  assert.equal((await page.locator('#delete-sweep-yes').textContent()).trim(), 'Delete sweep');
  await page.click('#delete-sweep-yes');
  await page.waitForURL(`${server.url}/sweeps`);
  await page.locator('#banner .notice').waitFor();
  assert.equal((await page.locator('#banner .notice').textContent()).trim(), `Deleted sweep ${small} and its 2 jobs.`);
  assert.equal((await server.api(`/api/sweeps/${small}`)).status, 404);
  for (const id of smallJobs) assert.equal((await server.api(`/api/jobs/${id}`)).status, 404);

  // Running: "Cancel and delete".
  const big = await server.sweep(['--name', 'running-sweep', '--axis', 'seed=1,2,3', ...LONG]);
  await server.waitSweep(big, (x) => x.counts.running > 0);
  const bigJobs = await jobsOf(big);
  assert.equal(bigJobs.length, 3);
  await page.goto(`${server.url}/sweeps/${big}`);
  await page.locator('#delete-sweep').waitFor();
  await page.click('#delete-sweep');
  const confirm = page.locator('#delete-sweep-confirm');
  await confirm.waitFor();
  assert.match(await confirm.textContent(), new RegExp(`Sweep ${big} is (running|queued): cancel its 3 unfinished jobs`));
  assert.equal((await page.locator('#delete-sweep-yes').textContent()).trim(), 'Cancel and delete');
  await screenshot(page, 'sweep-delete-running-confirm');
  await page.click('#delete-sweep-yes');
  await page.waitForURL(`${server.url}/sweeps`);
  await page.locator('#banner .notice').waitFor();
  assert.equal((await page.locator('#banner .notice').textContent()).trim(), `Deleted sweep ${big} and its 3 jobs.`);
  assert.equal((await server.api(`/api/sweeps/${big}`)).status, 404);
  for (const id of bigJobs) assert.equal((await server.api(`/api/jobs/${id}`)).status, 404);
  await sleep(500);
  assert.equal(await page.locator('#banner .error').count(), 0);
  assert.equal(await page.locator(`a[href="/sweeps/${big}"]`).count(), 0, 'gone from the sweeps list');
  await screenshot(page, 'sweep-deleted');
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('a script in a name or label set from the page stays text', {timeout: TEST_TIMEOUT}, async () => {
  const xss = '<img src=x onerror=window.__xss=1>';
  const id = await finished('harmless');
  const page = await jobPage(id);
  await page.click('#rename');
  await page.fill('#rename-input', xss);
  await page.click('#rename-save');
  await page.waitForFunction((n) => document.querySelector('.job-head h1')?.textContent === n, xss);
  await page.fill('#label-input', `note=${xss}`);
  await page.click('#label-add');
  await page.locator('#job-labels .label-chip[data-key="note"]').waitFor();
  assert.equal(await page.locator('#job-labels .label-chip[data-key="note"] .label-text').textContent(), `note=${xss}`);
  assert.equal(await page.title(), `gradlab: ${xss}`);
  // The delete question and the notice carry the name as text too.
  await page.click('#delete');
  await page.click('#delete-no');
  await page.goto(`${server.url}/`);
  const cell = page.locator(`#jobs-table tr[data-job-id="${id}"] td.name a`);
  await cell.waitFor();
  assert.equal((await cell.textContent()).trim(), xss);
  await page.goto(`${server.url}/jobs/${id}`);
  await page.locator('#rename').waitFor();
  await page.click('#delete');
  await page.click('#delete-yes');
  await page.locator('#banner .notice').waitFor();
  assert.equal((await page.locator('#banner .notice').textContent()).trim(), `Deleted job ${id} (${xss}).`);
  await sleep(300);
  assert.equal(await page.evaluate(() => typeof window.__xss), 'undefined');
  assert.equal(await page.locator('img').count(), 0);
  await screenshot(page, 'rename-xss');
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});
