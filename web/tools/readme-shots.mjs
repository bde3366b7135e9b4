// The README's dashboard pictures, from a running server:
//   gradlab demo --serve --addr 127.0.0.1:50071 --database /tmp/demo.db &   # wait for its report
//   node web/tools/readme-shots.mjs http://127.0.0.1:50071 SWEEP_ID JOB_ID
// writes docs/dashboard-sweep.png (the sweep's page) and docs/dashboard-job.png (the job's page).

import {join} from 'node:path';
import {launch, newPage, REPO} from '../tests/browser.mjs';

const [base, sweep, job] = process.argv.slice(2);
if (!base || !sweep || !job) {
  console.error('usage: node web/tools/readme-shots.mjs BASE_URL SWEEP_ID JOB_ID');
  process.exit(2);
}
const browser = await launch();
try {
  const page = await newPage(browser);
  await page.setViewportSize({width: 1280, height: 1000});
  await page.goto(`${base}/sweeps/${sweep}`);
  await page.getByText('Claims').first().waitFor();
  await page.screenshot({path: join(REPO, 'docs', 'dashboard-sweep.png')});
  await page.goto(`${base}/jobs/${job}`);
  await page.waitForFunction(() => window.__gradlabTimings && window.__gradlabTimings.fullDraw !== undefined);
  await page.screenshot({path: join(REPO, 'docs', 'dashboard-job.png')});
} finally {
  await browser.close();
}
