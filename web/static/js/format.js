// Number, time and label formatting for display. Pure functions, no DOM.

/** A measured figure: NaN/inf spelled out, very small or large in exponent form. */
export function num(x, digits = 4) {
  if (x === null || x === undefined) return '—';
  if (typeof x !== 'number') return String(x);
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(Math.max(1, digits - 2));
  return String(Number(x.toPrecision(digits)));
}

/** A share in [0, 1] as a percentage. */
export function pct(x, digits = 1) {
  if (x === null || x === undefined) return '—';
  if (!Number.isFinite(x)) return num(x);
  return `${(x * 100).toFixed(digits)}%`;
}

/** An integer with thousands separators. */
export function int(n) {
  if (n === null || n === undefined) return '—';
  return Number(n).toLocaleString('en-US');
}

/** Unix milliseconds as local "YYYY-MM-DD HH:MM:SS" (the date left out for today). */
export function time(ms, {alwaysDate = false} = {}) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  const hms = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  const today = new Date();
  const sameDay = d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth()
    && d.getDate() === today.getDate();
  if (sameDay && !alwaysDate) return hms;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${hms}`;
}

/** A duration in milliseconds: "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min". */
export function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** "steps_done / steps" with the share. */
export function progress(done, total) {
  if (!total) return int(done);
  return `${int(done)} / ${int(total)}`;
}

/** A spec's depth: hidden layers (JobSpec.hidden), or a `depth` field if one is sent. */
export function depthOf(spec) {
  if (!spec) return null;
  if (Array.isArray(spec.hidden)) return spec.hidden.length;
  return spec.depth ?? null;
}

/** A spec's width: the one hidden width, or "512,256,128" when they differ. */
export function widthOf(spec) {
  if (!spec) return null;
  if (Array.isArray(spec.hidden)) {
    if (spec.hidden.length === 0) return '—';
    return spec.hidden.every((w) => w === spec.hidden[0]) ? String(spec.hidden[0]) : spec.hidden.join(',');
  }
  return spec.width ?? null;
}

/** Label of layer index `i` (0-based, input side first) of a net with `nLayers` layers. */
export function layerName(i, nLayers) {
  return i === nLayers - 1 ? 'output' : `layer ${i + 1}`;
}

/** Spec fields that have a text form may still come as objects from other builds. */
export function specText(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'object') {
    if (v.kind) {
      const rest = Object.entries(v).filter(([k]) => k !== 'kind').map(([k, x]) => `${k}=${x}`);
      return rest.length ? `${v.kind}(${rest.join(', ')})` : v.kind;
    }
    return JSON.stringify(v);
  }
  return String(v);
}

/** A claim's depth (ClaimedDepth: {"kind": "at_most", "depth": 2}). */
export function claimed(c) {
  if (!c) return '—';
  if (typeof c === 'string') return c;
  switch (c.kind) {
    case 'at_most': return `≤ ${c.depth}`;
    case 'at_least': return `≥ ${c.depth}`;
    case 'unbounded': return 'unbounded';
    default: return specText(c);
  }
}

/** A size in bytes for people: 812 B, 4.1 kB, 120.3 MB (decimal units, as the CLI writes). */
export function bytes(n) {
  if (!(n >= 1000)) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let u = 0;
  while (v >= 999.95 && u + 1 < units.length) {
    v /= 1000;
    u += 1;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** How often a job stores its checkpoints and how many it keeps: "every 10,000 steps, at most every 60 s, newest 2". */
export function checkpointPolicy(spec) {
  const kept = spec.keep_checkpoints ? ', kept after the end' : '';
  if (!(spec.checkpoint_every_steps > 0)) return spec.keep_checkpoints ? 'at the end only' : 'none';
  const cap = spec.checkpoint_every_seconds > 0 ? `, at most every ${num(spec.checkpoint_every_seconds)} s` : '';
  return `every ${int(spec.checkpoint_every_steps)} steps${cap}, newest ${spec.checkpoint_keep}${kept}`;
}
