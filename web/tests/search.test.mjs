// The jobs list's filter expression and sort: the text typed in the filter box and the sorted
// column go into the URL and to GET /api/jobs, and the rows shown are those the test expects
// from the API's own job JSON; a filter the server cannot parse is named beside the box.

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {serverAndBrowser, TEST_TIMEOUT} from './fixture.mjs';
import {sleep} from './server.mjs';
import {newPage, screenshot, pageErrors} from './browser.mjs';

let server;
let browser;
// The finished jobs as GET /api/jobs/<id> answers them, oldest first.
let jobs = [];
serverAndBrowser({}, async (env) => {
  ({server, browser} = env);
  const lrs = [0.001, 0.3, 0.05, 0.2, 0.01, 0.1];
  const ids = [];
  for (const [i, lr] of lrs.entries()) {
    ids.push(await server.submit(['--name', `search-${i}`, '--depth', String(1 + (i % 3)), '--width', '8',
      '--lr', String(lr), '--batch', '16', '--steps', '40', '--eval-every', '20', '--seed', String(i),
      '--label', 'suite=search', '--label', `team=${i % 4 === 0 ? 'vision' : 'speech'}`]));
  }
  // Not in the suite: every filter below leaves it out.
  ids.push(await server.submit(['--name', 'other', '--depth', '1', '--width', '8', '--steps', '20']));
  for (const id of ids) jobs.push(await server.waitJob(id, (j) => j.state === 'succeeded', {what: 'succeeded'}));
});

const accuracy = (j) => j.summary.test_accuracy;
const depth = (j) => j.spec.hidden.length;

/** The server's order by test accuracy: ties by id, in the same direction. */
function byAccuracy(list, descending) {
  const sorted = [...list].sort((a, b) => accuracy(a) - accuracy(b) || a.id - b.id).map((j) => j.id);
  return descending ? sorted.reverse() : sorted;
}

const rowIds = (page) => page.$$eval('#jobs-table tbody tr[data-job-id]', (trs) => trs.map((tr) => Number(tr.dataset.jobId)));

/** Waits until the table shows exactly `want` (ids, in order); fails showing what it shows. */
async function expectRows(page, want, what, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  let got = [];
  while (Date.now() < deadline) {
    got = await rowIds(page);
    if (JSON.stringify(got) === JSON.stringify(want)) return;
    await sleep(50);
  }
  assert.deepEqual(got, want, what);
}

test('a filter expression typed in the box filters the list; the test acc header sorts it both ways', {timeout: TEST_TIMEOUT}, async () => {
  const text = 'label.suite = search and depth <= 2 and label.team != vision';
  const want = jobs.filter((j) => j.spec.labels.suite === 'search' && depth(j) <= 2 && j.spec.labels.team !== 'vision');
  assert.ok(want.length >= 2 && want.length < jobs.length - 1, `the filter keeps some jobs, not all: ${want.length}`);

  const page = await newPage(browser);
  await page.goto(`${server.url}/`);
  await expectRows(page, jobs.map((j) => j.id).reverse(), 'every job, newest first');
  await page.fill('input[name=filter]', text);
  await page.press('input[name=filter]', 'Enter');
  await page.waitForURL(/filter=/);
  assert.equal(new URL(page.url()).searchParams.get('filter'), text);
  await expectRows(page, want.map((j) => j.id).reverse(), 'the filtered jobs, newest first');

  await page.click('#jobs-table th[data-sort=test_accuracy] a');
  await page.waitForURL(/sort=test_accuracy/);
  await expectRows(page, byAccuracy(want, true), 'best test accuracy first');
  assert.equal(await page.getAttribute('#jobs-table th[data-sort=test_accuracy]', 'aria-sort'), 'descending');
  assert.equal(new URL(page.url()).searchParams.get('filter'), text, 'the sort keeps the filter');
  await screenshot(page, 'jobs-filter-sort');

  await page.click('#jobs-table th[data-sort=test_accuracy] a');
  await page.waitForURL(/order=asc/);
  await expectRows(page, byAccuracy(want, false), 'a second click: worst first');
  assert.equal(await page.getAttribute('#jobs-table th[data-sort=test_accuracy]', 'aria-sort'), 'ascending');
  assert.equal(await page.inputValue('input[name=filter]'), text);

  // The URL alone shows the same list.
  const again = await newPage(browser);
  await again.goto(page.url());
  await expectRows(again, byAccuracy(want, false), 'the same list from the URL');
  assert.equal(await again.inputValue('input[name=filter]'), text);
  assert.deepEqual([...pageErrors(page), ...pageErrors(again)], []);
  await page.context().close();
  await again.context().close();
});

test('sorted pages follow page tokens, and a new filter keeps the sort and starts at page 1', {timeout: TEST_TIMEOUT}, async () => {
  const suite = jobs.filter((j) => j.spec.labels.suite === 'search');
  const sorted = byAccuracy(suite, true);
  const page = await newPage(browser);
  await page.goto(`${server.url}/?filter=${encodeURIComponent('label.suite = search')}&sort=test_accuracy&page_size=2`);
  await expectRows(page, sorted.slice(0, 2), 'page 1');
  await page.click('button:has-text("Next")');
  await page.waitForURL(/page_token=/);
  await expectRows(page, sorted.slice(2, 4), 'page 2');
  await page.click('button:has-text("Next")');
  await expectRows(page, sorted.slice(4, 6), 'page 3');
  await page.click('button:has-text("Previous")');
  await expectRows(page, sorted.slice(2, 4), 'page 2 again');

  await page.fill('input[name=filter]', 'label.suite = search and depth >= 2');
  await page.press('input[name=filter]', 'Enter');
  await page.waitForURL(/depth/);
  const q = new URL(page.url()).searchParams;
  assert.equal(q.get('page_token'), null, 'a new filter starts at page 1');
  assert.equal(q.get('sort'), 'test_accuracy');
  assert.equal(q.get('page_size'), '2');
  await expectRows(page, byAccuracy(suite.filter((j) => depth(j) >= 2), true).slice(0, 2), 'page 1 of the new filter');
  await page.context().close();
});

test('a sorted, filtered list follows live changes: a job that finishes better moves up', {timeout: TEST_TIMEOUT}, async () => {
  const poor = await server.submit(['--name', 'live-poor', '--depth', '1', '--width', '8', '--lr', '0.0001', '--steps', '5',
    '--label', 'suite=live']);
  await server.waitJob(poor, (j) => j.state === 'succeeded');
  const page = await newPage(browser);
  await page.goto(`${server.url}/?filter=${encodeURIComponent('label.suite = live')}&sort=test_accuracy`);
  await expectRows(page, [poor], 'the finished job');
  await page.evaluate(() => { window.__noReload = true; });
  // Seconds of training to a far better accuracy: listed last while it has none, first after.
  const good = await server.submit(['--name', 'live-good', '--depth', '1', '--width', '64', '--lr', '0.1',
    '--batch', '64', '--steps', '20000', '--label', 'suite=live']);
  await expectRows(page, [poor, good], 'the new job, without a result, last');
  const done = await server.waitJob(good, (j) => j.state === 'succeeded', {what: 'succeeded'});
  assert.ok(done.summary.test_accuracy > (await server.api(`/api/jobs/${poor}`)).body.summary.test_accuracy);
  await expectRows(page, [good, poor], 'the better job first once it has finished');
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('a bad filter shows the server\'s message beside the box, naming the column', {timeout: TEST_TIMEOUT}, async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/`);
  await page.locator('#jobs-table tbody tr[data-job-id]').first().waitFor();
  await page.fill('input[name=filter]', 'depth <= 8 and acc > 0.9');
  await page.press('input[name=filter]', 'Enter');
  const problem = page.locator('#filter-error');
  await problem.waitFor();
  assert.match(await problem.textContent(), /^filter: at column 16: unknown field "acc"/);
  assert.equal(await page.getAttribute('input[name=filter]', 'aria-invalid'), 'true');
  // No stale list: the table says why it is empty; the banner stays clear.
  assert.deepEqual(await rowIds(page), []);
  assert.match(await page.locator('#jobs-table tbody tr.empty').textContent(), /refused/);
  assert.equal(await page.locator('#banner .error').count(), 0);
  await screenshot(page, 'jobs-filter-error');

  await page.fill('input[name=filter]', 'depth >= 3');
  await page.press('input[name=filter]', 'Enter');
  await expectRows(page, jobs.filter((j) => depth(j) >= 3).map((j) => j.id).reverse(), 'fixed: the list is back');
  assert.ok(await problem.isHidden());
  assert.equal(await page.getAttribute('input[name=filter]', 'aria-invalid'), null);

  await page.goto(`${server.url}/?sort=accuracy`);
  await problem.waitFor();
  assert.match(await problem.textContent(), /^sort: unknown sort key "accuracy"/);
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});
