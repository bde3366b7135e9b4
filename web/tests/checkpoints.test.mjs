// A job that keeps its checkpoints: the job page lists them and links the newest one's weights,
// which download as the safetensors (or .npz) file ExportWeights writes. A fork's page links
// its parent and draws its history from step 0 (the parent's part before the fork).

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {readFile} from 'node:fs/promises';
import {serverAndBrowser, TEST_TIMEOUT} from './fixture.mjs';
import {newPage, screenshot, pageErrors} from './browser.mjs';

let server;
let browser;
serverAndBrowser({}, (env) => ({server, browser} = env));

test('the job page lists the stored checkpoints and downloads the newest weights', {timeout: TEST_TIMEOUT}, async () => {
  const id = await server.submit(['--name', 'kept', '--depth', '2', '--width', '8', '--batch', '16', '--steps', '60',
    '--keep-checkpoints', '--checkpoint-every-steps', '20', '--checkpoint-every-seconds', '0']);
  await server.waitJob(id, (j) => j.state === 'succeeded', {what: 'succeeded'});
  const page = await newPage(browser);
  const errors = pageErrors(page);
  await page.goto(`${server.url}/jobs/${id}`);
  const cell = page.locator('#spec-table tr', {hasText: 'stored checkpoints'}).locator('td');
  await cell.locator('a.weights-link').first().waitFor();
  const text = await cell.textContent();
  assert.match(text, /step 40 \(\d+(\.\d)? kB\), step 60 \(/, text);
  assert.match(await page.locator('#spec-table tr', {hasText: /^checkpoints/}).locator('td').textContent(),
    /every 20 steps, newest 2, kept after the end/);

  const [download] = await Promise.all([page.waitForEvent('download'), cell.locator('a[data-format=safetensors]').click()]);
  assert.equal(download.suggestedFilename(), `gradlab-job-${id}-step-60.safetensors`);
  const bytes = await readFile(await download.path());
  const headerLen = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8'));
  assert.deepEqual(header['layer0.weight'].shape, [8, 64]);
  assert.equal(header['layer2.bias'].dtype, 'F32');
  assert.equal(header.__metadata__.job, String(id));
  assert.equal(header.__metadata__.step, '60');

  const npz = await page.evaluate(async (u) => {
    const r = await fetch(u);
    return {status: r.status, magic: Array.from(new Uint8Array(await r.arrayBuffer()).slice(0, 2))};
  }, `/api/jobs/${id}/weights?format=npz&step=45`);
  assert.deepEqual(npz, {status: 200, magic: [0x50, 0x4b]}, 'a zip file (PK)');
  const refused = await page.evaluate(async (u) => {
    const r = await fetch(u);
    return {status: r.status, body: await r.json()};
  }, `/api/jobs/${id}/weights?step=5`);
  assert.equal(refused.status, 409);
  assert.match(refused.body.error, /no checkpoint at or before step 5/);
  await screenshot(page, 'checkpoints');
  assert.deepEqual(errors, []);
});

test('a fork\'s page links its parent and draws its history from step 0', {timeout: TEST_TIMEOUT}, async () => {
  const parent = await server.submit(['--name', 'parent', '--depth', '2', '--width', '8', '--batch', '16', '--steps', '80',
    '--keep-checkpoints', '--checkpoint-every-steps', '20', '--checkpoint-every-seconds', '0', '--checkpoint-keep', '5']);
  await server.waitJob(parent, (j) => j.state === 'succeeded', {what: 'succeeded'});
  const out = await server.cli(['fork', String(parent), '--at-step', '45', '--lr', '0.2', '--steps', '100']);
  const fork = Number(out.trim());
  await server.waitJob(fork, (j) => j.state === 'succeeded', {what: 'succeeded'});
  const page = await newPage(browser);
  const errors = pageErrors(page);
  await page.goto(`${server.url}/jobs/${fork}`);
  const link = page.locator('#fork-parent');
  await link.waitFor();
  assert.equal(await link.textContent(), `job ${parent} at step 40`);
  await page.waitForFunction(() => Number(document.getElementById('heatmap')?.dataset.steps) > 0);
  assert.equal(await page.evaluate(() => Number(document.getElementById('heatmap').dataset.steps)), 100,
    'steps 0-99: the parent\'s 0-39, the fork\'s 40-99');
  // The fork's start is marked on the charts and the heat map.
  assert.equal(await page.getAttribute('#heatmap', 'data-markers'), '40');
  const marked = await page.$$eval('[data-markers]', (els) => els.map((e) => e.dataset.markers));
  assert.deepEqual(marked.filter((m) => m === '40').length, 3, `loss, accuracy and heat map: ${marked}`);
  await screenshot(page, 'fork');
  await link.click();
  await page.waitForURL(`${server.url}/jobs/${parent}`);
  await page.waitForFunction(() => document.getElementById('heatmap')?.dataset.markers === '');
  await screenshot(page, 'fork-parent');
  assert.deepEqual(errors, []);
});
