// The jobs list: jobs submitted through the CLI are listed, a job's state changes reach the
// open page without a reload, a script in a job's name stays text, an unknown job is named,
// and 2-8 selected jobs open the compare page.

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {serverAndBrowser, TEST_TIMEOUT} from './fixture.mjs';
import {sleep} from './server.mjs';
import {newPage, screenshot, pageErrors} from './browser.mjs';

let server;
let browser;
serverAndBrowser({}, (env) => ({server, browser} = env));

test('the jobs page lists jobs and follows a new job from queued/running to succeeded live', {timeout: TEST_TIMEOUT}, async () => {
  const done = await server.submit(['--name', 'listed-job', '--depth', '2', '--width', '8', '--steps', '50', '--label', 'suite=web']);
  await server.waitJob(done, (j) => j.state === 'succeeded', {what: 'succeeded'});

  const page = await newPage(browser);
  await page.goto(`${server.url}/`);
  const row = page.locator(`#jobs-table tr[data-job-id="${done}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), /listed-job/);
  assert.equal((await row.locator('td.state').textContent()).trim(), 'succeeded');
  assert.match(await row.textContent(), /50 \/ 50/);
  await page.evaluate(() => { window.__noReload = true; });

  // A job submitted while the page is open: a few seconds of training.
  const id = await server.submit(['--name', 'live-job', '--depth', '3', '--width', '128', '--batch', '64', '--steps', '3000']);
  const seen = [];
  const deadline = Date.now() + 90_000;
  let state = null;
  while (Date.now() < deadline) {
    state = await page.evaluate((jobId) => {
      const tr = document.querySelector(`#jobs-table tr[data-job-id="${jobId}"]`);
      return tr ? tr.dataset.state : null;
    }, id);
    if (state && seen[seen.length - 1] !== state) seen.push(state);
    if (state === 'succeeded' || state === 'failed') break;
    await sleep(50);
  }
  await screenshot(page, 'jobs-live');
  assert.equal(state, 'succeeded', `states seen on the page: ${seen.join(' -> ')}`);
  assert.ok(seen.includes('queued') || seen.includes('running'), `the row went through queued/running: ${seen.join(' -> ')}`);
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
  const text = await page.locator(`#jobs-table tr[data-job-id="${id}"]`).textContent();
  assert.match(text, /live-job/);
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('filters go into the URL and are applied by the server', {timeout: TEST_TIMEOUT}, async () => {
  const deep = await server.submit(['--name', 'filter-deep', '--depth', '6', '--width', '8', '--steps', '20', '--activation', 'ramp']);
  const shallow = await server.submit(['--name', 'filter-shallow', '--depth', '1', '--width', '8', '--steps', '20', '--activation', 'ramp']);
  await server.waitJob(deep, (j) => j.state === 'succeeded');
  await server.waitJob(shallow, (j) => j.state === 'succeeded');
  const page = await newPage(browser);
  await page.goto(`${server.url}/`);
  await page.locator(`#jobs-table tr[data-job-id="${shallow}"]`).waitFor();
  await page.fill('input[name=activation]', 'ramp');
  await page.fill('input[name=min_depth]', '4');
  await page.click('#filters button[type=submit]');
  await page.waitForURL(/min_depth=4/);
  assert.match(page.url(), /activation=ramp/);
  await page.locator(`#jobs-table tr[data-job-id="${deep}"]`).waitFor();
  assert.equal(await page.locator(`#jobs-table tr[data-job-id="${shallow}"]`).count(), 0);
  assert.equal(await page.locator('#jobs-table tbody tr').count(), 1);
  // The URL alone shows the same list.
  const again = await newPage(browser);
  await again.goto(page.url());
  await again.locator(`#jobs-table tr[data-job-id="${deep}"]`).waitFor();
  assert.equal(await again.locator('#jobs-table tbody tr').count(), 1);
  assert.equal(await again.inputValue('input[name=min_depth]'), '4');
  await page.context().close();
  await again.context().close();
});

test('a script in a job name is shown as text and never runs', {timeout: TEST_TIMEOUT}, async () => {
  const name = '<img src=x onerror=window.__xss=1>';
  const id = await server.submit(['--name', name, '--depth', '2', '--width', '8', '--steps', '30']);
  await server.waitJob(id, (j) => j.state === 'succeeded');
  const page = await newPage(browser);
  await page.goto(`${server.url}/`);
  const cell = page.locator(`#jobs-table tr[data-job-id="${id}"] td.name a`);
  await cell.waitFor();
  assert.equal((await cell.textContent()).trim(), name);
  assert.equal(await page.locator('#jobs-table img').count(), 0);
  await page.goto(`${server.url}/jobs/${id}`);
  await page.locator('.job-head h1').waitFor();
  assert.equal((await page.locator('.job-head h1').textContent()).trim(), name);
  await page.waitForFunction(() => window.__gradlabTimings && window.__gradlabTimings.firstDraw !== undefined);
  await sleep(300);
  assert.equal(await page.evaluate(() => typeof window.__xss), 'undefined');
  assert.equal(await page.locator('main img').count(), 0);
  await screenshot(page, 'xss-name');
  await page.context().close();
});

test('an unknown job shows "job N not found"', {timeout: TEST_TIMEOUT}, async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/jobs/999`);
  const err = page.locator('.error');
  await err.first().waitFor();
  assert.match(await err.first().textContent(), /job 999 not found/);
  assert.ok(await err.first().isVisible());
  await screenshot(page, 'job-not-found');
  await page.context().close();
});

test('selected jobs open the compare page with one chart per layer and a legend', {timeout: TEST_TIMEOUT}, async () => {
  const a = await server.submit(['--name', 'cmp-tanh', '--depth', '3', '--width', '8', '--steps', '200', '--activation', 'tanh']);
  const b = await server.submit(['--name', 'cmp-ramp', '--depth', '3', '--width', '8', '--steps', '200', '--activation', 'ramp']);
  await server.waitJob(a, (j) => j.state === 'succeeded');
  await server.waitJob(b, (j) => j.state === 'succeeded');
  const page = await newPage(browser);
  await page.goto(`${server.url}/`);
  await page.locator(`#jobs-table tr[data-job-id="${b}"]`).waitFor();
  assert.ok(await page.locator('#compare').isDisabled());
  await page.check(`#jobs-table tr[data-job-id="${a}"] input[type=checkbox]`);
  await page.check(`#jobs-table tr[data-job-id="${b}"] input[type=checkbox]`);
  await page.click('#compare');
  await page.waitForURL(new RegExp(`/compare\\?jobs=${a}(%2C|,)${b}$`));
  await page.locator('#compare-layers .small-chart').first().waitFor();
  // 3 hidden layers and the output layer.
  assert.equal(await page.locator('#compare-layers .small-chart').count(), 4);
  const legend = await page.locator('#compare-legend').textContent();
  assert.match(legend, new RegExp(`#${a} cmp-tanh`));
  assert.match(legend, new RegExp(`#${b} cmp-ramp`));
  assert.equal(await page.locator('#compare-loss canvas').count() > 0, true);
  await screenshot(page, 'compare');
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('pages follow next_page_token, with Previous and First', {timeout: TEST_TIMEOUT}, async () => {
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push(await server.submit(['--name', `page-${i}`, '--depth', '1', '--width', '4', '--steps', '5', '--label', 'suite=paging']));
  for (const id of ids) await server.waitJob(id, (j) => j.state === 'succeeded');
  const page = await newPage(browser);
  const rowIds = () => page.$$eval('#jobs-table tbody tr[data-job-id]', (trs) => trs.map((tr) => Number(tr.dataset.jobId)));
  await page.goto(`${server.url}/?label=suite%3Dpaging&page_size=2`);
  await page.locator('#jobs-table tbody tr[data-job-id]').first().waitFor();
  const first = await rowIds();
  assert.deepEqual(first, [ids[4], ids[3]], 'newest first, 2 per page');
  assert.ok(await page.locator('button', {hasText: 'Previous'}).isDisabled());
  await page.click('button:has-text("Next")');
  await page.waitForURL(/page_token=/);
  await page.waitForFunction((want) => document.querySelector('#jobs-table tbody tr[data-job-id]')?.dataset.jobId === String(want), ids[2]);
  assert.deepEqual(await rowIds(), [ids[2], ids[1]]);
  await page.click('button:has-text("Next")');
  await page.waitForFunction((want) => document.querySelector('#jobs-table tbody tr[data-job-id]')?.dataset.jobId === String(want), ids[0]);
  assert.deepEqual(await rowIds(), [ids[0]]);
  assert.ok(await page.locator('button', {hasText: 'Next'}).isDisabled(), 'the last page has no next token');
  await page.click('button:has-text("Previous")');
  await page.waitForFunction((want) => document.querySelector('#jobs-table tbody tr[data-job-id]')?.dataset.jobId === String(want), ids[2]);
  await page.click('button:has-text("First")');
  await page.waitForFunction((want) => document.querySelector('#jobs-table tbody tr[data-job-id]')?.dataset.jobId === String(want), ids[4]);
  assert.doesNotMatch(page.url(), /page_token/);
  assert.match(page.url(), /label=suite%3Dpaging/);
  await page.context().close();
});
