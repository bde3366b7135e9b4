// A server started with --token: without the token the page shows the token form and no data
// (the data endpoints answer 401); a wrong token is refused with its error; the right one
// (POST /api/login, an HttpOnly cookie) shows the data, and logging out hides it again.

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {serverAndBrowser, TEST_TIMEOUT} from './fixture.mjs';
import {createHash, X509Certificate} from 'node:crypto';
import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import {startServer} from './server.mjs';
import {launch, newPage, screenshot, pageErrors} from './browser.mjs';

const TOKEN = 'web-test-token-5f2c';
let server;
let browser;
let jobId;
serverAndBrowser({token: TOKEN}, async (env) => {
  ({server, browser} = env);
  jobId = await server.submit(['--name', 'secret-job-name', '--depth', '2', '--width', '8', '--steps', '40']);
  await server.waitJob(jobId, (j) => j.state === 'succeeded', {what: 'succeeded'});
});

test('without the token the data endpoints answer 401', {timeout: TEST_TIMEOUT}, async () => {
  for (const path of ['/api/jobs', `/api/jobs/${jobId}`, `/api/jobs/${jobId}/history`, '/api/sweeps']) {
    const r = await server.api(path, {auth: false});
    assert.equal(r.status, 401, path);
    assert.equal(typeof r.body.error, 'string', `${path}: {"error": ...}`);
  }
  // Nor do renames and deletes: the job is still there, named as it was.
  for (const [method, path, body] of [
    ['PATCH', `/api/jobs/${jobId}`, {name: 'hijacked'}],
    ['DELETE', `/api/jobs/${jobId}?cancel=true`, undefined],
    ['DELETE', '/api/sweeps/1?cancel=true', undefined],
  ]) {
    const r = await server.api(path, {method, body, auth: false});
    assert.equal(r.status, 401, `${method} ${path}`);
  }
  assert.equal((await server.api(`/api/jobs/${jobId}`)).body.spec.name, 'secret-job-name');
  const bad = await fetch(`${server.url}/api/jobs`, {headers: {Authorization: 'Bearer not-the-token'}});
  assert.equal(bad.status, 401);
  const s = await server.api('/api/session', {auth: false});
  assert.equal(s.status, 200);
  assert.deepEqual(s.body, {auth_required: true, authenticated: false});
  const ok = await server.api('/api/jobs');
  assert.equal(ok.status, 200);
  assert.equal(ok.body.jobs[0].id, jobId);
});

test('the page shows the token form and no data until the right token is given', {timeout: TEST_TIMEOUT}, async () => {
  const page = await newPage(browser);
  const statuses = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/')) statuses.push(`${new URL(r.url()).pathname} ${r.status()}`);
  });
  for (const path of ['/', `/jobs/${jobId}`]) {
    await page.goto(`${server.url}${path}`);
    await page.locator('input[type=password]').waitFor();
    assert.equal(await page.locator('#jobs-table').count(), 0);
    assert.doesNotMatch(await page.locator('body').textContent(), /secret-job-name/);
  }
  // The page's own requests for data are refused.
  const direct = await page.evaluate(async () => (await fetch('/api/jobs')).status);
  assert.equal(direct, 401);
  await screenshot(page, 'auth-form');

  // A wrong token: refused, its error shown, still no data.
  await page.goto(`${server.url}/`);
  await page.fill('input[type=password]', 'wrong-token');
  await page.click('form.login-form button[type=submit]');
  const err = page.locator('.login-status .error');
  await err.waitFor();
  assert.ok((await err.textContent()).trim().length > 0);
  assert.ok(statuses.includes('/api/login 401'), statuses.join(', '));
  assert.equal(await page.locator('#jobs-table').count(), 0);
  assert.doesNotMatch(await page.locator('body').textContent(), /secret-job-name/);
  await screenshot(page, 'auth-wrong-token');

  // The right token: the data appears, and stays across a reload (cookie).
  await page.fill('input[type=password]', TOKEN);
  await page.click('form.login-form button[type=submit]');
  const row = page.locator(`#jobs-table tr[data-job-id="${jobId}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), /secret-job-name/);
  assert.ok(statuses.includes('/api/login 204'), statuses.join(', '));
  const cookies = await page.context().cookies();
  assert.ok(cookies.length > 0 && cookies.every((c) => c.httpOnly), 'an HttpOnly session cookie');
  assert.equal(await page.evaluate(() => document.cookie), '', 'the cookie is not readable by scripts');
  await page.reload();
  await row.waitFor();
  await page.goto(`${server.url}/jobs/${jobId}`);
  await page.waitForFunction(() => window.__gradlabTimings && window.__gradlabTimings.firstDraw !== undefined);
  await screenshot(page, 'auth-signed-in');

  // Log out: the form again, no data.
  await page.click('#logout');
  await page.locator('input[type=password]').waitFor();
  assert.equal(await page.evaluate(async () => (await fetch('/api/jobs')).status), 401);
  await page.goto(`${server.url}/`);
  await page.locator('input[type=password]').waitFor();
  assert.doesNotMatch(await page.locator('body').textContent(), /secret-job-name/);
  assert.deepEqual(pageErrors(page), []);
  await page.context().close();
});

test('over TLS the dashboard is https on the same port, and the token still guards it', {timeout: TEST_TIMEOUT}, async () => {
  const secure = await startServer({token: TOKEN, tls: true});
  // The browser trusts exactly the server certificate's key (its SPKI hash), nothing more.
  const cert = new X509Certificate(readFileSync(join(secure.dir, 'tls', 'server.pem')));
  const spki = createHash('sha256').update(cert.publicKey.export({type: 'spki', format: 'der'})).digest('base64');
  const tlsBrowser = await launch([`--ignore-certificate-errors-spki-list=${spki}`]);
  try {
    assert.match(secure.url, /^https:/);
    const id = await secure.submit(['--name', 'over-tls', '--depth', '1', '--width', '8', '--steps', '20']);
    await secure.waitJob(id, (j) => j.state === 'succeeded', {what: 'succeeded'});
    assert.equal((await secure.api('/api/jobs', {auth: false})).status, 401);
    const page = await newPage(tlsBrowser);
    await page.goto(`${secure.url}/`);
    await page.fill('input[type=password]', TOKEN);
    await page.click('form.login-form button[type=submit]');
    const row = page.locator(`#jobs-table tr[data-job-id="${id}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /over-tls/);
    const cookies = await page.context().cookies();
    assert.ok(cookies.some((c) => c.secure && c.httpOnly && c.sameSite === 'Strict'), JSON.stringify(cookies));
    assert.deepEqual(pageErrors(page), []);
    await page.context().close();
  } finally {
    await tlsBrowser.close();
    await secure.stop();
  }
});
