// Page timings for the browser tests and for anyone profiling: performance.measure entries
// named 'gradlab:...', and the same figures in window.__gradlabTimings (ms).

export function timings() {
  if (!window.__gradlabTimings) window.__gradlabTimings = {};
  return window.__gradlabTimings;
}

/** Measures from `start` (a performance.now() value; 0 is the navigation) to now. */
export function measure(name, start) {
  try {
    performance.mark(`${name}-end`);
    const m = performance.measure(name, {start, end: performance.now()});
    return m.duration;
  } catch {
    return performance.now() - start;
  }
}
