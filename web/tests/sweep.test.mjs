// Sweeps: a tiny sweep (2 activations x 2 depths, 2,000 steps) followed live on its
// page until the report shows the accuracy grid, the trainable depths, the claims with their
// verdicts and the rules; a grid cell leads to that cell's jobs.

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {serverAndBrowser, TEST_TIMEOUT} from './fixture.mjs';
import {newPage, screenshot, pageErrors} from './browser.mjs';

let server;
let browser;
serverAndBrowser({}, (env) => ({server, browser} = env));

test('the sweep page shows progress, then the report with its claims', {timeout: TEST_TIMEOUT}, async () => {
  const id = await server.sweep([
    '--name', 'tiny-claims', '--axis', 'activation=tanh,ramp', '--axis', 'depth=1,2',
    '--width', '128', '--batch', '64', '--steps', '2000', '--eval-every', '200',
  ]);
  // A few seconds of training: the page is open while the sweep runs and follows it live.
  const page = await newPage(browser);
  await page.goto(`${server.url}/sweeps/${id}`);
  await page.locator('#sweep-progress .counts-text').waitFor();
  const firstSeen = await page.locator('#sweep-progress .counts-text').textContent();
  console.log(`sweep page opened at: ${firstSeen}`);
  assert.match(await page.locator('.page-head h1').textContent(), /tiny-claims/);
  // The report is there once every job has ended (the page follows the sweep live).
  await page.waitForFunction(() => /4\/4 done/.test(document.querySelector('#sweep-progress .counts-text')?.textContent || ''), null, {timeout: 90_000});
  await page.waitForFunction(() => document.querySelectorAll('table.acc-grid td.acc a').length === 4
    && [...document.querySelectorAll('table.acc-grid td.acc a')].every((a) => /^\d/.test(a.textContent) && !a.textContent.includes('/')), null, {timeout: 30_000});
  const sweep = await server.waitSweep(id, (s) => s.state === 'succeeded');
  assert.equal(sweep.counts.succeeded, 4);
  assert.equal((await page.locator('#sweep-counts [data-count=succeeded] strong').textContent()).trim(), '4');

  // The accuracy grid: rows tanh and ramp, columns 1 and 2, numbers in the cells.
  const grid = page.locator('table.acc-grid');
  assert.equal(await grid.count(), 1);
  const rows = await grid.locator('tbody tr th').allTextContents();
  assert.deepEqual(rows, ['tanh', 'ramp']);
  assert.deepEqual(await grid.locator('thead th.num').allTextContents(), ['1', '2']);
  for (const text of await grid.locator('td.acc a').allTextContents()) {
    const v = Number(text);
    assert.ok(v >= 0 && v <= 1, `accuracy ${text}`);
  }

  // Claims: tanh (<= 2) and ramp (unbounded), each with a verdict.
  const claims = page.locator('#claims-table tbody tr');
  assert.equal(await claims.count(), 2);
  for (const act of ['tanh', 'ramp']) {
    const row = page.locator(`#claims-table tr[data-activation=${act}]`);
    const verdict = await row.getAttribute('data-verdict');
    assert.ok(['supported', 'contradicted', 'not measured'].includes(verdict), `${act}: ${verdict}`);
    assert.equal((await row.locator('.badge').textContent()).trim(), verdict);
  }
  assert.match(await page.locator('#claims-table tr[data-activation=tanh]').textContent(), /≤ 2/);
  assert.match(await page.locator('#claims-table tr[data-activation=ramp]').textContent(), /unbounded/);
  assert.equal(await page.locator('#trainable-table tbody tr').count(), 2);
  assert.ok(await page.locator('#rules li').count() >= 2);
  assert.match(await page.locator('#rules').textContent(), /2000 training steps/);

  // The report agrees with the API's.
  const api = await server.api(`/api/sweeps/${id}/report`);
  assert.equal(api.status, 200);
  for (const c of api.body.report.claims) {
    const verdict = {supported: 'supported', not_supported: 'contradicted', not_measured: 'not measured'}[c.verdict];
    assert.equal(await page.locator(`#claims-table tr[data-activation=${c.activation}]`).getAttribute('data-verdict'), verdict);
  }
  await screenshot(page, 'sweep-report');

  // A cell links to its jobs: this sweep, that activation and depth.
  const cell = page.locator('table.acc-grid td.acc[data-activation=ramp][data-depth="2"] a');
  const href = await cell.getAttribute('href');
  const url = new URL(href, server.url);
  assert.equal(url.pathname, '/');
  assert.equal(url.searchParams.get('sweep'), String(id));
  assert.equal(url.searchParams.get('activation'), 'ramp');
  assert.equal(url.searchParams.get('min_depth'), '2');
  assert.equal(url.searchParams.get('max_depth'), '2');
  await cell.click();
  await page.waitForURL(/activation=ramp/);
  await page.locator('#jobs-table tbody tr[data-job-id]').first().waitFor();
  const jobRows = page.locator('#jobs-table tbody tr[data-job-id]');
  assert.equal(await jobRows.count(), 1);
  assert.match(await jobRows.first().textContent(), /ramp/);
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('the sweeps list shows each sweep with its progress', {timeout: TEST_TIMEOUT}, async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/sweeps`);
  const row = page.locator('#sweeps-table tbody tr[data-sweep-id]').first();
  await row.waitFor();
  assert.match(await row.textContent(), /tiny-claims/);
  assert.match(await row.textContent(), /4\/4 done/);
  assert.match(await row.textContent(), /activation: tanh, ramp × depth: 1, 2/);
  await screenshot(page, 'sweeps');
  await page.context().close();
});
