// Timings of a big job's page: a finished 17-layer (16 hidden + output) x 100,000-step job.
// Recorded, printed and written to target/browser-timings.json, not asserted on (speed is
// for benchmarks): first-draw (navigation to the first heat map and curves drawn), full-draw
// (to the drawing after the live stream's `end`: the whole run), and zoom (a selection on the
// heat map to its redraw from /history). Width 8 and batch 8 keep the training short: the
// debug build trains it in about 5 s on the 2-core machine.

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {serverAndBrowser, TEST_TIMEOUT} from './fixture.mjs';
import {startServer} from './server.mjs';
import {newPage, screenshot, writeJson, pageErrors} from './browser.mjs';

const STEPS = 100_000;
const DEPTH = 16;
let server;
let browser;
serverAndBrowser({}, (env) => ({server, browser} = env));

async function drag(page, selector, a, b) {
  const box = await page.locator(selector).boundingBox();
  const y = box.y + box.height * 0.3;
  await page.mouse.move(box.x + box.width * a, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * b, y, {steps: 4});
  await page.mouse.up();
}

test(`a finished ${DEPTH + 1}-layer x ${STEPS}-step job: first draw and zoom times`, {timeout: TEST_TIMEOUT}, async () => {
  const t0 = Date.now();
  const id = await server.submit(['--name', 'speed-17x100k', '--depth', String(DEPTH), '--width', '8', '--batch', '8',
    '--steps', String(STEPS), '--eval-every', '5000', '--activation', 'tanh']);
  const job = await server.waitJob(id, (j) => j.state === 'succeeded' || j.state === 'failed', {timeout: 150_000, what: 'finished'});
  assert.equal(job.state, 'succeeded', job.error || '');
  assert.equal(job.steps_done, STEPS);
  const trainMs = Date.now() - t0;

  const page = await newPage(browser);
  const zoomRequests = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === `/api/jobs/${id}/history` && u.searchParams.has('from') && u.searchParams.get('to') !== '0') zoomRequests.push(u);
  });
  await page.goto(`${server.url}/jobs/${id}`);
  await page.waitForFunction(() => window.__gradlabTimings && window.__gradlabTimings.fullDraw !== undefined, null, {timeout: 60_000});
  const heat = page.locator('#heatmap');
  const buckets = Number(await heat.getAttribute('data-steps'));
  assert.ok(buckets > 500, `the heat map shows ${buckets} step buckets of the 100,000 steps`);
  assert.equal(await page.locator('#layer-table tbody tr').count(), DEPTH + 1);
  await screenshot(page, 'speed-full');

  await drag(page, '#heatmap-canvas', 0.5, 0.6);
  await page.waitForFunction(() => window.__gradlabTimings.zoom !== undefined, null, {timeout: 60_000});
  assert.equal(zoomRequests.length, 1);
  assert.equal(await heat.getAttribute('data-state'), 'zoomed');
  await screenshot(page, 'speed-zoomed');

  const t = await page.evaluate(() => ({...window.__gradlabTimings}));
  const measures = await page.evaluate(() => performance.getEntriesByType('measure').map((m) => ({name: m.name, ms: m.duration})));
  const timings = {
    job: {id, layers: DEPTH + 1, steps: STEPS, width: 8, batch: 8},
    binary: process.env.GRADLAB_BIN || 'target/debug/gradlab',
    train_and_store_ms: trainMs,
    first_draw_ms: Math.round(t.firstDraw),
    full_draw_ms: Math.round(t.fullDraw),
    zoom_ms: Math.round(t.zoom),
    zoom_range: zoomRequests[0] ? `${zoomRequests[0].searchParams.get('from')}-${zoomRequests[0].searchParams.get('to')}` : null,
    heat_map_buckets: buckets,
    measures,
    measured_at: new Date().toISOString(),
  };
  const path = writeJson('target/browser-timings.json', timings);
  console.log(`browser timings (${path}): first draw ${timings.first_draw_ms} ms, full draw ${timings.full_draw_ms} ms, zoom ${timings.zoom_ms} ms (${buckets} buckets, 17 layers x 100,000 steps)`);
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('the jobs page with 10,000 jobs stored: first page drawn', {timeout: TEST_TIMEOUT}, async () => {
  // Its own server with no workers: the jobs stay queued, so the list holds still.
  const many = await startServer({workers: 0});
  try {
    const seeds = Array.from({length: 10_000}, (_, i) => String(i + 1)).join(',');
    const sweep = await many.sweep(['--name', 'many', '--depth', '1', '--width', '8', '--steps', '10', '--axis', `seed=${seeds}`]);
    const s = await many.api(`/api/sweeps/${sweep}`);
    assert.equal(s.body.counts.queued, 10_000);

    const page = await newPage(browser);
    await page.goto(`${many.url}/`);
    await page.waitForFunction(() => window.__gradlabTimings && window.__gradlabTimings.jobsFirstDraw !== undefined);
    assert.equal(await page.locator('#jobs-table tbody tr').count(), 50);
    assert.equal(await page.locator('#jobs-table tbody tr').first().getAttribute('data-job-id'), '10000', 'newest first');
    const ms = Math.round(await page.evaluate(() => window.__gradlabTimings.jobsFirstDraw));
    await screenshot(page, 'jobs-10000');
    const path = writeJson('target/browser-timings-jobs.json', {jobs: 10_000, page_size: 50, first_draw_ms: ms, measured_at: new Date().toISOString()});
    console.log(`jobs page with 10,000 jobs (${path}): first page drawn ${ms} ms after navigation`);
    assert.deepEqual(pageErrors(page), []);
    await page.context().close();
  } finally {
    await many.stop();
  }
});
