// The server's HTTP/JSON/SSE API: requests, errors, event streams, and the decoding of
// non-finite numbers. The server writes NaN and infinities as the strings "NaN", "inf" and
// "-inf" (JSON has no such numbers); they are turned back into numbers here and only here,
// field by field (never by a blanket walk: a job may well be *named* "NaN").

/** Fired on window when any request answers 401: the app shows the token form. */
export const UNAUTHORIZED = 'gradlab:unauthorized';

export class ApiError extends Error {
  /** `field`: the request parameter a 400 is about (the body's "field"), when it names one. */
  constructor(status, message, path, field = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.path = path;
    this.field = field;
  }
}

const NONFINITE = new Map([
  ['NaN', NaN], ['nan', NaN], ['inf', Infinity], ['+inf', Infinity], ['Infinity', Infinity],
  ['-inf', -Infinity], ['-Infinity', -Infinity],
]);

/** A float as the server writes it: a number, "NaN"/"inf"/"-inf", or null (NaN). */
export function decodeNumber(x) {
  if (typeof x === 'number') return x;
  if (x === null || x === undefined) return NaN;
  if (typeof x === 'string') {
    if (NONFINITE.has(x)) return NONFINITE.get(x);
    const n = Number(x);
    return x.trim() === '' ? NaN : n;
  }
  return NaN;
}

/** An optional float: null stays null ("no figure"), anything else as decodeNumber. */
export function decodeOptional(x) {
  return x === null || x === undefined ? null : decodeNumber(x);
}

function decodeArray(a) {
  if (!Array.isArray(a)) return [];
  const out = new Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    out[i] = typeof v === 'number' ? v : decodeNumber(v);
  }
  return out;
}

const SUMMARY_FLOATS = ['train_loss', 'train_accuracy', 'test_loss', 'test_accuracy'];
const MEAN_FIELD_FLOATS = ['sigma_w', 'sigma_b', 'chi1', 'depth_scale', 'first_last_ratio'];

/** A job summary (engine Summary flattened, with mean_field). */
export function decodeSummary(s) {
  if (!s || typeof s !== 'object') return s ?? null;
  const out = {...s};
  for (const k of SUMMARY_FLOATS) if (k in out) out[k] = decodeNumber(out[k]);
  if (out.verdict && typeof out.verdict === 'object') {
    out.verdict = {...out.verdict};
    for (const k of ['ratio_at_init', 'ratio_at_end']) {
      if (k in out.verdict) out.verdict[k] = decodeOptional(out.verdict[k]);
    }
  }
  if (out.mean_field && typeof out.mean_field === 'object') {
    const mf = {...out.mean_field};
    for (const k of MEAN_FIELD_FLOATS) if (k in mf) mf[k] = decodeNumber(mf[k]);
    if ('q_star' in mf) mf.q_star = decodeOptional(mf.q_star);
    if (Array.isArray(mf.layer_ratios)) mf.layer_ratios = decodeArray(mf.layer_ratios);
    out.mean_field = mf;
  }
  return out;
}

/** A job record (runner JobRecord). */
export function decodeJob(j) {
  if (!j || typeof j !== 'object') return j;
  return {...j, summary: decodeSummary(j.summary)};
}

/** One metric series: steps as numbers, values/min/max decoded (null -> NaN). */
export function decodeSeries(s) {
  const steps = Array.isArray(s.steps) ? s.steps.map(Number) : [];
  const values = decodeArray(s.values);
  return {
    layer: s.layer === null || s.layer === undefined ? null : Number(s.layer),
    metric: String(s.metric),
    steps,
    values,
    min: Array.isArray(s.min) ? decodeArray(s.min) : values.slice(),
    max: Array.isArray(s.max) ? decodeArray(s.max) : values.slice(),
  };
}

export function decodeEvals(evals) {
  if (!Array.isArray(evals)) return [];
  return evals.map((e) => ({
    step: Number(e.step),
    test_loss: decodeNumber(e.test_loss),
    test_accuracy: decodeNumber(e.test_accuracy),
  }));
}

export function decodeHistory(h) {
  return {
    job_id: h.job_id,
    series: (h.series || []).map(decodeSeries),
    evals: decodeEvals(h.evals),
    downsampled: Boolean(h.downsampled),
  };
}

const count = (x) => (typeof x === 'number' ? x : Number(x) || 0);

/** A histograms answer with every count a number (counts are integers: nothing to decode). */
export function decodeHistograms(r) {
  const hist = (x) => ({
    counts: Array.isArray(x.counts) ? x.counts.map(count) : [],
    zeros: count(x.zeros),
    underflow: count(x.underflow),
    overflow: count(x.overflow),
    nonfinite: count(x.nonfinite),
  });
  return {
    job_id: r.job_id,
    log10_lo: Number(r.log10_lo),
    log10_hi: Number(r.log10_hi),
    per_decade: Number(r.per_decade),
    steps: Array.isArray(r.steps) ? r.steps.map(Number) : [],
    layers: (r.layers || []).map((l) => ({layer: Number(l.layer), histograms: (l.histograms || []).map(hist)})),
  };
}

/** A query string from an object; arrays repeat the key, null/undefined/'' are left out. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === null || v === undefined || v === '') continue;
    if (Array.isArray(v)) for (const x of v) q.append(k, String(x));
    else q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

function unauthorized(message) {
  window.dispatchEvent(new CustomEvent(UNAUTHORIZED, {detail: {message}}));
}

async function errorOf(res, path) {
  let message = `${res.status} ${res.statusText || 'error'}`;
  let field = null;
  try {
    const body = await res.json();
    if (body && typeof body.error === 'string' && body.error) message = body.error;
    if (body && typeof body.field === 'string') field = body.field;
  } catch {
    // Not JSON (a proxy's page, say): keep the status line.
  }
  return new ApiError(res.status, message, path, field);
}

/**
 * A JSON request. Resolves to the parsed body (null for 204); rejects with ApiError (status 0
 * when the server cannot be reached). A 401 also fires UNAUTHORIZED unless `quiet401`.
 */
export async function request(method, path, {params, body, signal, quiet401 = false} = {}) {
  const url = path + query(params);
  const init = {method, signal, credentials: 'same-origin', headers: {Accept: 'application/json'}};
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, `cannot reach the server (${e && e.message ? e.message : e})`, path);
  }
  if (!res.ok) {
    const err = await errorOf(res, path);
    if (res.status === 401 && !quiet401) unauthorized(err.message);
    throw err;
  }
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, body, opts) => request('POST', path, {...opts, body});
export const patch = (path, body, opts) => request('PATCH', path, {...opts, body});
export const del = (path, opts) => request('DELETE', path, opts);

// ------------------------------------------------------------------------------------------
// Endpoints

export const session = (opts) => get('/api/session', {...opts, quiet401: true});
export const login = (token) => post('/api/login', {token}, {quiet401: true});
export const logout = () => post('/api/logout', {});

export async function listJobs(params, opts) {
  const r = await get('/api/jobs', {...opts, params});
  return {jobs: (r.jobs || []).map(decodeJob), next_page_token: r.next_page_token || ''};
}

export async function getJob(id, opts) {
  return decodeJob(await get(`/api/jobs/${encodeURIComponent(id)}`, opts));
}

export async function cancelJob(id) {
  return decodeJob(await post(`/api/jobs/${encodeURIComponent(id)}/cancel`, {}));
}

/**
 * Renames a job and sets or removes labels (PATCH /api/jobs/<id>): changes {name?, set_labels?:
 * {key: value}, remove_labels?: [key]}. Resolves to the job as it is now; a bad label key
 * rejects with status 400 (its message names the key).
 */
export async function updateJob(id, changes) {
  return decodeJob(await patch(`/api/jobs/${encodeURIComponent(id)}`, changes));
}

/**
 * Deletes a job with everything it stored (DELETE /api/jobs/<id>). A queued or running job
 * rejects with status 409 unless `cancel`, which cancels it first. Resolves to {deleted: id}.
 */
export const deleteJob = (id, {cancel = false} = {}) =>
  del(`/api/jobs/${encodeURIComponent(id)}`, {params: {cancel: cancel ? 'true' : 'false'}});

/** params: metrics (array), layers (array), from, to, max_points. */
export async function history(id, params, opts) {
  const p = {...params};
  if (Array.isArray(p.metrics)) p.metrics = p.metrics.join(',');
  if (Array.isArray(p.layers)) p.layers = p.layers.join(',');
  return decodeHistory(await get(`/api/jobs/${encodeURIComponent(id)}/history`, {...opts, params: p}));
}

/**
 * A job's gradient histograms over time (GET /api/jobs/<id>/histograms). params: layers (array),
 * from, to, max_steps. Resolves to {job_id, log10_lo, log10_hi, per_decade, steps, layers:
 * [{layer, histograms: [{counts, zeros, underflow, overflow, nonfinite}, one per step]}]}.
 */
export async function histograms(id, params, opts) {
  const p = {...params};
  if (Array.isArray(p.layers)) p.layers = p.layers.join(',');
  return decodeHistograms(await get(`/api/jobs/${encodeURIComponent(id)}/histograms`, {...opts, params: p}));
}

export async function listSweeps(params, opts) {
  const r = await get('/api/sweeps', {...opts, params});
  return {sweeps: r.sweeps || [], next_page_token: r.next_page_token || ''};
}

export const getSweep = (id, opts) => get(`/api/sweeps/${encodeURIComponent(id)}`, opts);

/** Deletes a sweep and all its jobs, all or none (409 while one is active, unless `cancel`):
 *  resolves to {deleted: id, jobs_deleted: n}. */
export const deleteSweep = (id, {cancel = false} = {}) =>
  del(`/api/sweeps/${encodeURIComponent(id)}`, {params: {cancel: cancel ? 'true' : 'false'}});

export const sweepReport = (id, params, opts) =>
  get(`/api/sweeps/${encodeURIComponent(id)}/report`, {...opts, params});

// ------------------------------------------------------------------------------------------
// Event streams

/**
 * Opens an EventSource on `path` + params. `events` maps event names to handlers of the parsed
 * JSON data. Handled here:
 *  - `end`: the server has sent everything; closed (else EventSource reconnects and replays),
 *    then onEnd().
 *  - `error` with data ({"error": ...}): a server-side failure; closed, then onError(message).
 *  - a connection that fails (HTTP error status): closed; the status and message are read with
 *    a plain request, then onError(message, status) (and UNAUTHORIZED for 401).
 *  - a dropped connection: EventSource reconnects by itself; onReconnect() is called when it
 *    is open again, since the server then replays the stream from its start.
 * Returns {close()}.
 */
export function stream(path, params, {events = {}, onEnd, onError, onReconnect, onOpen} = {}) {
  const url = path + query(params);
  const es = new EventSource(url, {withCredentials: false});
  let closed = false;
  let opened = 0;
  const close = () => {
    if (!closed) {
      closed = true;
      es.close();
    }
  };
  const parse = (e) => {
    try {
      return e.data ? JSON.parse(e.data) : {};
    } catch {
      return null;
    }
  };
  for (const [name, fn] of Object.entries(events)) {
    es.addEventListener(name, (e) => {
      if (closed) return;
      const data = parse(e);
      if (data !== null) fn(data);
    });
  }
  es.addEventListener('open', () => {
    if (closed) return;
    opened += 1;
    if (opened > 1 && onReconnect) onReconnect();
    if (onOpen) onOpen(opened);
  });
  es.addEventListener('end', () => {
    if (closed) return;
    close();
    if (onEnd) onEnd();
  });
  es.addEventListener('error', async (e) => {
    if (closed) return;
    if (typeof e.data === 'string' && e.data) {
      const d = parse(e);
      close();
      if (onError) onError((d && d.error) || 'stream error', 500);
      return;
    }
    if (es.readyState !== EventSource.CLOSED) return; // reconnecting by itself
    close();
    // EventSource does not expose the status: ask again with fetch, then drop the body.
    const ctl = new AbortController();
    let status = 0;
    let message = 'live updates stopped (connection lost)';
    try {
      const res = await fetch(url, {signal: ctl.signal, headers: {Accept: 'text/event-stream'}});
      status = res.status;
      if (!res.ok) {
        const err = await errorOf(res, path);
        message = err.message;
        if (res.status === 401) unauthorized(message);
      }
      ctl.abort();
    } catch {
      // unreachable: keep the generic message
    }
    if (onError) onError(message, status);
  });
  return {close, get closed() { return closed; }};
}
