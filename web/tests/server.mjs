// A throwaway `gradlab serve` for the browser tests: the real binary (GRADLAB_BIN, default
// target/debug/gradlab) on a free loopback port over a SQLite database in a temporary folder.
// Its address is read from its JSON log line "gradlab serving" (as python/gradlab/testing.py
// does). Jobs and sweeps are submitted with the binary's own CLI, as a user would.

import {spawn, execFile, execFileSync} from 'node:child_process';
import {request as httpsRequest} from 'node:https';
import {readFileSync} from 'node:fs';
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {REPO} from './browser.mjs';

export function binary() {
  const bin = process.env.GRADLAB_BIN || join(REPO, 'target', 'debug', 'gradlab');
  if (!existsSync(bin)) {
    throw new Error(`no gradlab binary at ${bin}: build it (cargo build) or set GRADLAB_BIN`);
  }
  return bin;
}

/** The environment for the server and the CLI: none of the caller's GRADLAB_* settings
 *  (GRADLAB_WEB_DIR excepted: serving web/static from disk while developing). */
function cleanEnv(token) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('GRADLAB_') || k === 'GRADLAB_WEB_DIR') env[k] = v;
  }
  if (token) env.GRADLAB_TOKEN = token;
  return env;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a server. options: token (the server requires it), workers, args (more serve flags),
 * tls (a CA and server certificate from `gradlab cert`: the server is https://, the CLI and
 * api() trust that CA; `ca` is its PEM file).
 * Returns {url, token, dir, cli(), submit(), sweep(), api(), waitJob(), waitSweep(), log(), stop()}.
 */
export async function startServer({token = null, workers = null, args = [], tls = false, timeoutMs = 30_000} = {}) {
  const bin = binary();
  const dir = mkdtempSync(join(tmpdir(), 'gradlab-web-'));
  const cmd = ['serve', '--addr', '127.0.0.1:0', '--database', `sqlite://${join(dir, 'g.db')}`, '--log-format', 'json'];
  if (workers !== null) cmd.push('--workers', String(workers));
  const ca = tls ? join(dir, 'tls', 'ca.pem') : null;
  if (tls) {
    execFileSync(bin, ['cert', '--out', join(dir, 'tls')], {env: cleanEnv(null)});
    cmd.push('--tls-cert', join(dir, 'tls', 'server.pem'), '--tls-key', join(dir, 'tls', 'server-key.pem'));
  }
  cmd.push(...args);
  const child = spawn(bin, cmd, {env: cleanEnv(token), stdio: ['ignore', 'ignore', 'pipe']});
  let logText = '';
  let exited = null;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { logText += d; });
  child.on('exit', (code, signal) => { exited = {code, signal}; });

  const addr = await new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const poll = () => {
      for (const line of logText.split('\n')) {
        try {
          const f = JSON.parse(line).fields || {};
          if (f.message === 'gradlab serving') return resolve(String(f.addr));
        } catch {
          // not a JSON line (yet)
        }
      }
      if (exited) return reject(new Error(`gradlab serve exited (${JSON.stringify(exited)}): ${logText}`));
      if (Date.now() > deadline) return reject(new Error(`gradlab serve did not listen within ${timeoutMs} ms: ${logText}`));
      setTimeout(poll, 50);
    };
    poll();
  }).catch((e) => {
    child.kill('SIGKILL');
    rmSync(dir, {recursive: true, force: true});
    throw e;
  });
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${addr.split(':').pop()}`;

  /** Runs `gradlab <args> --server URL` (with the token); resolves to its stdout. */
  function cli(cliArgs, {timeout = 60_000} = {}) {
    return new Promise((resolve, reject) => {
      execFile(bin, [...cliArgs, '--server', url, ...(ca ? ['--ca-cert', ca] : [])], {env: cleanEnv(token), timeout}, (err, stdout, stderr) => {
        if (err) reject(new Error(`gradlab ${cliArgs.join(' ')}: ${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
  }

  /** `gradlab submit ...`: the new job's id. */
  async function submit(submitArgs) {
    const out = await cli(['submit', ...submitArgs]);
    const id = Number(out.trim().split('\n').pop());
    if (!Number.isInteger(id)) throw new Error(`gradlab submit printed ${JSON.stringify(out)}`);
    return id;
  }

  /** `gradlab sweep ...`: the new sweep's id. */
  async function sweep(sweepArgs) {
    const out = await cli(['sweep', ...sweepArgs]);
    const id = Number(out.trim().split('\n').pop());
    if (!Number.isInteger(id)) throw new Error(`gradlab sweep printed ${JSON.stringify(out)}`);
    return id;
  }

  /** GET (or another method) of an /api path with the token: {status, body}. */
  async function api(path, {method = 'GET', body, auth = true} = {}) {
    const headers = {Accept: 'application/json'};
    if (auth && token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const res = ca ? await fetchTrusting(ca, url + path, {method, headers, body: payload})
      : await fetch(url + path, {method, headers, body: payload});
    const text = await res.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return {status: res.status, body: parsed};
  }

  /** Polls a job until `pred(job)`; the job. */
  async function waitJob(id, pred, {timeout = 120_000, what = 'condition'} = {}) {
    const deadline = Date.now() + timeout;
    let job = null;
    while (Date.now() < deadline) {
      const r = await api(`/api/jobs/${id}`);
      if (r.status === 200) {
        job = r.body;
        if (pred(job)) return job;
      }
      await sleep(200);
    }
    throw new Error(`job ${id}: ${what} not reached within ${timeout} ms (last: ${job && job.state}, ${job && job.steps_done} steps)`);
  }

  async function waitSweep(id, pred, {timeout = 120_000} = {}) {
    const deadline = Date.now() + timeout;
    let s = null;
    while (Date.now() < deadline) {
      const r = await api(`/api/sweeps/${id}`);
      if (r.status === 200) {
        s = r.body;
        if (pred(s)) return s;
      }
      await sleep(250);
    }
    throw new Error(`sweep ${id}: not done within ${timeout} ms (last: ${JSON.stringify(s && s.counts)})`);
  }

  async function stop() {
    if (!exited) {
      child.kill('SIGTERM');
      const deadline = Date.now() + 15_000;
      while (!exited && Date.now() < deadline) await sleep(50);
      if (!exited) child.kill('SIGKILL');
    }
    if (process.env.GRADLAB_KEEP_LOGS) writeFileSync(join(REPO, 'target', `server-${Date.now()}.log`), logText);
    rmSync(dir, {recursive: true, force: true});
  }

  return {url, token, dir, ca, cli, submit, sweep, api, waitJob, waitSweep, log: () => logText, stop};
}

/** A fetch-like GET/POST over https that trusts the CA in the PEM file `ca` (Node's fetch takes
 * no CA of its own): {status, text()}. */
function fetchTrusting(ca, target, {method, headers, body}) {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(target, {method, headers, ca: readFileSync(ca)}, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({status: res.statusCode, text: async () => data}));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
