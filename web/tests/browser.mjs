// Chromium for the browser tests: Debian's /usr/bin/chromium (or CHROMIUM) driven by
// playwright-core, a fresh profile per launch. Screenshots go to target/screenshots/ of the
// repository; what the page logs to its console is kept, so that a failing test can show it.

import {mkdirSync, writeFileSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SCREENSHOTS = join(REPO, 'target', 'screenshots');

/** Chromium; `extraArgs` are added to its command line. */
export async function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', ...extraArgs],
  });
}

/** A new page of 1280x800 in a fresh context, with its console and failures recorded. */
export async function newPage(browser) {
  const context = await browser.newContext({viewport: {width: 1280, height: 800}});
  const page = await context.newPage();
  page.logs = [];
  page.on('console', (m) => page.logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => page.logs.push(`[pageerror] ${e.message}`));
  page.on('dialog', (d) => {
    page.logs.push(`[dialog] ${d.message()}`);
    void d.dismiss();
  });
  page.setDefaultTimeout(20_000);
  return page;
}

/** Saves target/screenshots/<name>.png. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, {recursive: true});
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({path, fullPage: false});
  return path;
}

/** Errors the page threw (uncaught): a test fails on them. */
export function pageErrors(page) {
  return page.logs.filter((l) => l.startsWith('[pageerror]'));
}

export function writeJson(relPath, data) {
  const path = join(REPO, relPath);
  mkdirSync(dirname(path), {recursive: true});
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}
