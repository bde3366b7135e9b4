// Series of a job kept in the browser: what a live stream appended so far (completed buckets
// plus, per series, the bucket still filling), or one history answer. Also the step-bucket
// arithmetic the server uses (runner::downsample): bucket k of a query over [lo, hi] with
// max_points P covers [lo + k*w, lo + (k+1)*w), w = ceil((hi - lo + 1) / P).

export function bucketWidth(lo, hi, maxPoints) {
  const span = Math.max(1, hi - lo + 1);
  return Math.max(1, Math.ceil(span / Math.max(1, maxPoints || span)));
}

export function bucketCount(lo, hi, width) {
  return Math.max(1, Math.ceil(Math.max(1, hi - lo + 1) / width));
}

function key(layer, metric) {
  return `${layer === null || layer === undefined ? '-' : layer}:${metric}`;
}

export class SeriesSet {
  constructor() {
    this.map = new Map();
  }

  static fromHistory(h) {
    const set = new SeriesSet();
    for (const s of h.series) set.append(s);
    return set;
  }

  entry(layer, metric) {
    const k = key(layer, metric);
    let e = this.map.get(k);
    if (!e) {
      e = {layer: layer ?? null, metric, steps: [], values: [], min: [], max: [], partial: null};
      this.map.set(k, e);
    }
    return e;
  }

  /** Completed buckets, in step order: appended; the series' partial bucket is dropped. */
  append(s) {
    const e = this.entry(s.layer, s.metric);
    const n = s.steps.length;
    // Buckets are sent once each; a bucket at or before the last one kept replaces nothing.
    const last = e.steps.length ? e.steps[e.steps.length - 1] : -Infinity;
    for (let i = 0; i < n; i++) {
      if (s.steps[i] <= last) continue;
      e.steps.push(s.steps[i]);
      e.values.push(s.values[i]);
      e.min.push(s.min[i]);
      e.max.push(s.max[i]);
    }
    e.partial = null;
  }

  /** The bucket still filling (0 or 1 point): replaces the previous one. */
  setPartial(s) {
    const e = this.entry(s.layer, s.metric);
    const n = s.steps.length;
    e.partial = n ? {step: s.steps[n - 1], value: s.values[n - 1], min: s.min[n - 1], max: s.max[n - 1]} : null;
  }

  has(layer, metric) {
    return this.map.has(key(layer, metric));
  }

  /** {steps, values, min, max} with the partial bucket at the end; null when absent. */
  view(layer, metric) {
    const e = this.map.get(key(layer, metric));
    if (!e) return null;
    const p = e.partial;
    if (!p || (e.steps.length && p.step <= e.steps[e.steps.length - 1])) return e;
    return {
      layer: e.layer, metric,
      steps: e.steps.concat([p.step]),
      values: e.values.concat([p.value]),
      min: e.min.concat([p.min]),
      max: e.max.concat([p.max]),
    };
  }

  /** The latest value of a series (partial bucket first), or undefined. */
  last(layer, metric) {
    const e = this.map.get(key(layer, metric));
    if (!e) return undefined;
    if (e.partial) return e.partial.value;
    return e.values.length ? e.values[e.values.length - 1] : undefined;
  }

  lastStep() {
    let s = -1;
    for (const e of this.map.values()) {
      if (e.partial) s = Math.max(s, e.partial.step);
      if (e.steps.length) s = Math.max(s, e.steps[e.steps.length - 1]);
    }
    return s;
  }

  /** Layer indices that have `metric`, ascending. */
  layers(metric) {
    const out = [];
    for (const e of this.map.values()) if (e.metric === metric && e.layer !== null) out.push(e.layer);
    return out.sort((a, b) => a - b);
  }
}

/**
 * The heat-map grid of `metric` over layers 0..nLayers-1: grid[layer][bucket], taking each
 * bucket's max (agg 'max': spikes stay visible) or its last value (agg 'last').
 */
export function heatGrid(set, metric, nLayers, lo, width, buckets, agg = 'max') {
  const grid = new Array(nLayers);
  for (let l = 0; l < nLayers; l++) {
    const row = new Array(buckets);
    const v = set ? set.view(l, metric) : null;
    if (v) {
      const src = agg === 'last' ? v.values : v.max;
      for (let i = 0; i < v.steps.length; i++) {
        const k = Math.floor((v.steps[i] - lo) / width);
        if (k >= 0 && k < buckets) row[k] = src[i];
      }
    }
    grid[l] = row;
  }
  return grid;
}
