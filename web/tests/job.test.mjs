// The job page: a running job's heat map grows while it trains (and its Cancel button stops
// it); a range dragged on the loss chart or the heat map is fetched from /history with from/to
// and every chart is redrawn for it; "Reset zoom" returns to the live view. A job recorded with
// --histogram-every has a gradient histograms panel (per layer, refetched for a layer, a zoom and
// the stream's end); others have none.

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {serverAndBrowser, TEST_TIMEOUT} from './fixture.mjs';
import {sleep} from './server.mjs';
import {newPage, screenshot, pageErrors} from './browser.mjs';

let server;
let browser;
serverAndBrowser({}, (env) => ({server, browser} = env));

const heatSteps = (page) => page.evaluate(() => Number(document.getElementById('heatmap').dataset.steps));

/** Drags across the middle of an element from fraction a to fraction b of its width. */
async function drag(page, selector, a, b) {
  const box = await page.locator(selector).boundingBox();
  assert.ok(box, `${selector} is on the page`);
  const y = box.y + box.height * 0.4;
  await page.mouse.move(box.x + box.width * a, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * ((a + b) / 2), y, {steps: 3});
  await page.mouse.move(box.x + box.width * b, y, {steps: 3});
  await page.mouse.up();
}

test('a running job\'s heat map grows while it trains, and Cancel stops it', {timeout: TEST_TIMEOUT}, async () => {
  // About a minute of training at ~750 steps/s (debug build); cancelled once the growth is seen.
  const id = await server.submit(['--name', 'growing', '--depth', '4', '--width', '128', '--batch', '64', '--steps', '40000']);
  await server.waitJob(id, (j) => j.state === 'running' && j.steps_done > 0, {what: 'running'});
  const page = await newPage(browser);
  await page.goto(`${server.url}/jobs/${id}`);
  await page.waitForFunction(() => Number(document.getElementById('heatmap')?.dataset.steps) > 0);
  const first = await heatSteps(page);
  assert.equal(await page.locator('.job-head .badge.state').textContent(), 'running');
  await page.waitForFunction((n) => Number(document.getElementById('heatmap').dataset.steps) > n + 5, first, {timeout: 30_000});
  const later = await heatSteps(page);
  assert.ok(later > first, `the heat map grew: ${first} -> ${later} step buckets`);
  assert.equal(await page.locator('#heatmap').getAttribute('data-state'), 'live');
  // The per-layer table has a row per layer (4 hidden + output) with values.
  assert.equal(await page.locator('#layer-table tbody tr').count(), 5);
  assert.match(await page.locator('#layer-table tbody tr').last().textContent(), /output/);
  await screenshot(page, 'job-running');

  await page.click('#cancel');
  await page.waitForFunction(() => document.querySelector('.job-head .badge.state')?.textContent === 'cancelled', null, {timeout: 30_000});
  const job = await server.waitJob(id, (j) => j.state === 'cancelled', {what: 'cancelled'});
  assert.ok(job.steps_done < 40000);
  await page.waitForFunction(() => document.getElementById('heatmap').dataset.state === 'done', null, {timeout: 30_000});
  assert.equal(await page.locator('#cancel').count(), 0);
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('dragging a step range refetches /history with from/to and redraws every chart', {timeout: TEST_TIMEOUT}, async () => {
  const id = await server.submit(['--name', 'zoomable', '--depth', '4', '--width', '8', '--batch', '16', '--steps', '20000', '--eval-every', '1000']);
  await server.waitJob(id, (j) => j.state === 'succeeded', {what: 'succeeded'});
  const page = await newPage(browser);
  const history = [];
  page.on('request', (r) => {
    if (r.url().includes(`/api/jobs/${id}/history`)) history.push(new URL(r.url()));
  });
  await page.goto(`${server.url}/jobs/${id}`);
  await page.waitForFunction(() => window.__gradlabTimings && window.__gradlabTimings.fullDraw !== undefined);
  assert.equal(await page.locator('#heatmap').getAttribute('data-state'), 'done');
  const fullBuckets = await heatSteps(page);
  assert.ok(fullBuckets > 100, `the full view has ${fullBuckets} step buckets`);

  // Drag on the loss chart: 20%..60% of 20,000 steps, more steps than pixels.
  const before = history.length;
  await drag(page, '#loss-chart .u-over', 0.2, 0.6);
  await page.waitForFunction(() => window.__gradlabTimings.zoom !== undefined);
  const zoomReqs = history.slice(before).filter((u) => u.searchParams.has('from') && u.searchParams.has('to'));
  assert.equal(zoomReqs.length, 1, `one zoom request: ${history.map(String).join(', ')}`);
  const from = Number(zoomReqs[0].searchParams.get('from'));
  const to = Number(zoomReqs[0].searchParams.get('to'));
  assert.ok(from > 3000 && from < 5000 && to > 11000 && to < 13000, `range ${from}-${to}`);
  assert.ok(Number(zoomReqs[0].searchParams.get('max_points')) > 100);
  assert.equal(await page.locator('#heatmap').getAttribute('data-state'), 'zoomed');
  assert.equal(await page.locator('#heatmap').getAttribute('data-zoom'), `${from}-${to}`);
  assert.match(await page.locator('#zoom-info').textContent(), /steps/);
  assert.ok(await page.locator('#reset-zoom').isVisible());
  assert.match(page.url(), new RegExp(`from=${from}&to=${to}`));
  // Both curves now span the range, at the chart's resolution.
  for (const chart of ['#loss-chart', '#accuracy-chart']) {
    assert.equal(await page.locator(chart).getAttribute('data-range'), `${from}-${to}`);
    assert.ok(Number(await page.locator(chart).getAttribute('data-points')) > 100, `${chart} redrawn with points`);
  }
  await screenshot(page, 'job-zoomed');

  // Zoom again on the heat map, into fewer steps than pixels: every step is shown.
  const n = history.length;
  await drag(page, '#heatmap-canvas', 0.3, 0.4);
  await page.waitForFunction(() => window.__gradlabTimings.zoomCount === 2);
  const again = history.slice(n).filter((u) => u.searchParams.has('from'));
  assert.equal(again.length, 1);
  const f2 = Number(again[0].searchParams.get('from'));
  const t2 = Number(again[0].searchParams.get('to'));
  assert.ok(f2 >= from && t2 <= to && t2 > f2, `nested range ${f2}-${t2} in ${from}-${to}`);
  assert.match(await page.locator('#zoom-info').textContent(), /every recorded step/);
  assert.equal(again[0].searchParams.get('max_points'), null, 'full resolution: no max_points');
  assert.equal(await heatSteps(page), t2 - f2 + 1, 'one bucket per step once the range is narrower than the chart');
  assert.equal(await page.locator('#loss-chart').getAttribute('data-range'), `${f2}-${t2}`);
  assert.ok(Number(await page.locator('#loss-chart').getAttribute('data-points')) >= t2 - f2 + 1);

  await page.click('#reset-zoom');
  assert.equal(await page.locator('#heatmap').getAttribute('data-state'), 'done');
  assert.equal(await heatSteps(page), fullBuckets);
  assert.doesNotMatch(page.url(), /from=/);
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('the heat map metric can be changed and the live stream reopens for it', {timeout: TEST_TIMEOUT}, async () => {
  const id = await server.submit(['--name', 'metrics', '--depth', '3', '--width', '8', '--steps', '500']);
  await server.waitJob(id, (j) => j.state === 'succeeded');
  const page = await newPage(browser);
  const live = [];
  page.on('request', (r) => {
    if (r.url().includes(`/api/jobs/${id}/live`)) live.push(new URL(r.url()));
  });
  await page.goto(`${server.url}/jobs/${id}`);
  await page.waitForFunction(() => window.__gradlabTimings && window.__gradlabTimings.fullDraw !== undefined);
  assert.match(live[0].searchParams.get('metrics'), /loss/);
  assert.ok(Number(live[0].searchParams.get('max_points')) > 100);
  await page.selectOption('#heat-metric', 'saturated');
  await page.waitForFunction(() => document.getElementById('heatmap').dataset.metric === 'saturated'
    && document.getElementById('heatmap').dataset.state === 'done' && Number(document.getElementById('heatmap').dataset.steps) > 0);
  assert.ok(live.some((u) => u.searchParams.get('metrics').split(',').includes('saturated')));
  assert.match(page.url(), /metric=saturated/);
  assert.match(await page.locator('.heatmap-legend').textContent(), /saturated/);
  assert.match(await page.locator('.heatmap-legend').textContent(), /NaN \/ inf/);
  // Spec, summary and the mean-field table.
  assert.match(await page.locator('#spec-table').textContent(), /3 × 8/);
  assert.match(await page.locator('#verdict').textContent(), /healthy|vanishing|exploding|dead|not_learning/);
  assert.match(await page.locator('#layer-table').textContent(), /predicted/);
  await sleep(100);
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('a job that blew up: NaN and inf are decoded, shown as such and drawn in their own color', {timeout: TEST_TIMEOUT}, async () => {
  // lr 1e30: the weights overflow at once; training stops at the first non-finite loss.
  const id = await server.submit(['--name', 'blown-up', '--depth', '4', '--width', '8', '--steps', '300', '--lr', '1e30', '--activation', 'identity']);
  const job = await server.waitJob(id, (j) => j.state === 'succeeded' || j.state === 'failed');
  assert.equal(job.summary.train_loss, 'NaN', 'the server writes NaN as "NaN"');
  const page = await newPage(browser);
  await page.goto(`${server.url}/jobs/${id}?metric=weight_norm`);
  await page.waitForFunction(() => window.__gradlabTimings && window.__gradlabTimings.fullDraw !== undefined);
  const heat = page.locator('#heatmap');
  assert.equal(await heat.getAttribute('data-metric'), 'weight_norm');
  assert.ok(Number(await heat.getAttribute('data-nonfinite')) >= 5, 'inf weight norms drawn as non-finite cells');
  assert.match(await page.locator('.heatmap-legend').textContent(), /non-finite values present/);
  const figures = await page.locator('.summary-card .figures').textContent();
  assert.match(figures, /train lossNaN/);
  assert.match(await page.locator('#verdict').textContent(), /exploding/);
  // The train loss at step 1 and the test loss of the eval after step 2 are NaN.
  assert.equal(await page.locator('#loss-chart').getAttribute('data-nonfinite'), '2', 'the NaN losses are marked on the chart');
  const cells = await page.locator('#layer-table td.nonfinite').allTextContents();
  assert.ok(cells.includes('inf') && cells.includes('NaN'), `non-finite cells: ${cells.join(' ')}`);
  await screenshot(page, 'job-nonfinite');
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

const histmapData = (page) => page.evaluate(() => ({...document.getElementById('histmap').dataset}));

test('a job recorded with --histogram-every shows its gradient histograms; the layer and zoom refetch them', {timeout: TEST_TIMEOUT}, async () => {
  const id = await server.submit(['--name', 'histograms', '--depth', '4', '--width', '8', '--batch', '16', '--steps', '400', '--histogram-every', '10']);
  const plain = await server.submit(['--name', 'no-histograms', '--depth', '3', '--width', '8', '--steps', '200']);
  await server.waitJob(id, (j) => j.state === 'succeeded', {what: 'succeeded'});
  await server.waitJob(plain, (j) => j.state === 'succeeded', {what: 'succeeded'});
  const page = await newPage(browser);
  const reqs = [];
  page.on('request', (r) => {
    if (r.url().includes('/histograms')) reqs.push(new URL(r.url()));
  });
  await page.goto(`${server.url}/jobs/${id}`);
  await page.waitForFunction(() => window.__gradlabTimings && window.__gradlabTimings.fullDraw !== undefined);
  await page.waitForFunction(() => document.getElementById('histmap')?.dataset.state === 'done');
  assert.ok(await page.locator('#histograms').isVisible(), 'the panel is shown');
  assert.match(await page.locator('#histograms h2').textContent(), /Gradient histograms/);

  // One request: the first layer, at most one step per pixel of the plot.
  const d = await histmapData(page);
  const maxSteps = Number(d.maxSteps);
  const plotWidth = await page.evaluate(() => document.getElementById('histmap').clientWidth - 74);
  assert.equal(maxSteps, plotWidth, 'max_steps is the plot width in px');
  assert.equal(reqs.length, 1, `one request: ${reqs.map(String).join(', ')}`);
  assert.equal(reqs[0].pathname, `/api/jobs/${id}/histograms`);
  assert.equal(reqs[0].searchParams.get('layers'), '0');
  assert.equal(reqs[0].searchParams.get('max_steps'), String(maxSteps));
  const answer = (await server.api(`/api/jobs/${id}/histograms?layers=0&max_steps=${maxSteps}`)).body;
  assert.equal(answer.steps.length, 40, 'steps 0, 10, ..., 390');
  assert.equal(Number(d.steps), answer.steps.length, 'one column per step of the answer');
  assert.equal(d.layer, '0');
  assert.equal(d.range, '0-399');
  assert.equal(d.nonfinite, '0');
  assert.equal(await page.locator('#hist-layer').inputValue(), '0');
  assert.deepEqual(await page.locator('#hist-layer option').allTextContents(), ['layer 1', 'layer 2', 'layer 3', 'layer 4', 'output']);
  assert.match(await page.locator('#histmap .histmap-legend').textContent(), /share of layer 1's weights per bin.*log scale/);
  assert.match(await page.locator('#hist-info').textContent(), /40 histograms, recorded every 10 steps/);
  // The last step's counts outside the bins, beside the map: digits' always-blank pixels give
  // the first layer exact zeros (8 weights each).
  const last = answer.layers[0].histograms[39];
  const readout = page.locator('#histmap-readout');
  assert.equal(await readout.getAttribute('data-step'), '390');
  assert.equal(await readout.locator('[data-kind=zeros]').getAttribute('data-count'), String(last.zeros));
  assert.ok(last.zeros > 0);
  assert.match(await readout.textContent(), /512 weights/);
  // Hovering a column shows that step's counts and the bin under the pointer.
  await page.evaluate(() => document.getElementById('histograms').scrollIntoView({block: 'center'}));
  const box = await page.locator('#histmap-canvas').boundingBox();
  await page.mouse.move(box.x + 64 + (box.width - 74) * 0.02, box.y + 200);
  await page.waitForFunction(() => document.getElementById('histmap-readout').dataset.step === '0');
  assert.match(await page.locator('#histmap .histmap-tip').textContent(), /step 0 · /);
  await screenshot(page, 'job-histograms');

  // Another layer: fetched for that layer.
  await page.selectOption('#hist-layer', '4');
  await page.waitForFunction(() => document.getElementById('histmap').dataset.layer === '4' && document.getElementById('histmap').dataset.state === 'done');
  assert.equal(reqs.length, 2);
  assert.equal(reqs[1].searchParams.get('layers'), '4');
  assert.match(page.url(), /hlayer=4/);
  assert.match(await page.locator('#histmap-readout').textContent(), /80 weights/, 'the output layer: 8 x 10');
  assert.match(await page.locator('#histmap .histmap-legend').textContent(), /output's weights/);

  // The color scale is redrawn without a request.
  await page.selectOption('#hist-scale', 'sqrt');
  await page.waitForFunction(() => document.getElementById('histmap').dataset.scale === 'sqrt');
  assert.match(await page.locator('#histmap .histmap-legend').textContent(), /square-root scale/);
  assert.equal(reqs.length, 2);

  // Zooming (a drag on the layers x steps heat map) refetches the range.
  await page.locator('#heatmap-canvas').scrollIntoViewIfNeeded();
  await drag(page, '#heatmap-canvas', 0.25, 0.75);
  await page.waitForFunction(() => window.__gradlabTimings.zoom !== undefined);
  const zoom = await page.locator('#heatmap').getAttribute('data-zoom');
  await page.waitForFunction((z) => document.getElementById('histmap').dataset.range === z && document.getElementById('histmap').dataset.state === 'done', zoom);
  const zr = reqs[reqs.length - 1];
  const [from, to] = zoom.split('-');
  assert.equal(zr.searchParams.get('from'), from);
  assert.equal(zr.searchParams.get('to'), to);
  assert.equal(zr.searchParams.get('layers'), '4');
  const zoomed = (await server.api(`/api/jobs/${id}/histograms?layers=4&from=${from}&to=${to}&max_steps=${zr.searchParams.get('max_steps')}`)).body;
  assert.ok(zoomed.steps.length > 10 && zoomed.steps.length < 40, `${zoomed.steps.length} steps in ${zoom}`);
  assert.equal(Number((await histmapData(page)).steps), zoomed.steps.length);
  await page.click('#reset-zoom');
  await page.waitForFunction(() => document.getElementById('histmap').dataset.range === '0-399' && document.getElementById('histmap').dataset.state === 'done');
  assert.equal(Number((await histmapData(page)).steps), 40);
  assert.deepEqual(pageErrors(page), []);

  // A job without histograms: no panel, and nothing asked.
  const before = reqs.length;
  await page.goto(`${server.url}/jobs/${plain}`);
  await page.waitForFunction(() => window.__gradlabTimings && window.__gradlabTimings.fullDraw !== undefined);
  await sleep(300);
  assert.equal(await page.locator('#histograms').isVisible(), false);
  assert.equal(reqs.length, before, 'no histograms request for a job that records none');
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('a running job\'s histograms are read again when its stream ends', {timeout: TEST_TIMEOUT}, async () => {
  const id = await server.submit(['--name', 'histograms-running', '--depth', '2', '--width', '8', '--steps', '1000000', '--histogram-every', '50']);
  await server.waitJob(id, (j) => j.state === 'running' && j.steps_done > 100, {what: 'running'});
  const page = await newPage(browser);
  const reqs = [];
  page.on('request', (r) => {
    if (r.url().includes(`/api/jobs/${id}/histograms`)) reqs.push(new URL(r.url()));
  });
  await page.goto(`${server.url}/jobs/${id}`);
  await page.waitForFunction(() => document.getElementById('histmap')?.dataset.state === 'done');
  assert.ok(await page.locator('#histograms').isVisible());
  assert.match(await page.locator('#hist-info').textContent(), /as of step/);
  const first = Number((await histmapData(page)).steps);
  assert.ok(first > 0);
  assert.equal(reqs.length, 1);
  await sleep(500);
  await page.click('#cancel');
  await page.waitForFunction(() => document.querySelector('.job-head .badge.state')?.textContent === 'cancelled', null, {timeout: 30_000});
  await page.waitForFunction(() => document.getElementById('hist-info').textContent.includes('recorded every 50 steps')
    && !document.getElementById('hist-info').textContent.includes('as of'), null, {timeout: 30_000});
  assert.equal(reqs.length, 2, 'fetched again at the end');
  const job = (await server.api(`/api/jobs/${id}`)).body;
  const answer = (await server.api(`/api/jobs/${id}/histograms?layers=0&max_steps=${reqs[1].searchParams.get('max_steps')}`)).body;
  assert.equal(Number((await histmapData(page)).steps), answer.steps.length);
  assert.ok(answer.steps.length > first, `more histograms at the end (${answer.steps.length}) than at first (${first})`);
  assert.ok(answer.steps[answer.steps.length - 1] < job.steps_done);
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});
