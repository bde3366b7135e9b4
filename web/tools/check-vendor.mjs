#!/usr/bin/env node
// The dashboard serves uPlot from web/static/vendor/ (committed: the server embeds web/static/
// and loads nothing from a CDN). This checks that those copies are byte for byte the files of
// the uplot version package-lock.json pins, as `npm ci --prefix web` installed them; it fails
// naming every file that differs or is missing. `--write` copies them over instead (after
// bumping uplot: npm install --prefix web uplot@VERSION && node web/tools/check-vendor.mjs --write).

import {createHash} from 'node:crypto';
import {copyFileSync, existsSync, readFileSync} from 'node:fs';
import {dirname, join, relative} from 'node:path';
import {fileURLToPath} from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const FILES = [
  ['node_modules/uplot/dist/uPlot.iife.min.js', 'static/vendor/uPlot.iife.min.js'],
  ['node_modules/uplot/dist/uPlot.min.css', 'static/vendor/uPlot.min.css'],
  ['node_modules/uplot/LICENSE', 'static/vendor/uPlot.LICENSE'],
];

const write = process.argv.includes('--write');
const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');
const show = (p) => relative(process.cwd(), p) || p;

const pkg = join(web, 'node_modules/uplot/package.json');
if (!existsSync(pkg)) {
  console.error(`check-vendor: ${show(pkg)} is missing: run npm ci --prefix web first`);
  process.exit(1);
}
const installed = JSON.parse(readFileSync(pkg, 'utf8')).version;
const lock = JSON.parse(readFileSync(join(web, 'package-lock.json'), 'utf8'));
const locked = lock.packages && lock.packages['node_modules/uplot'] && lock.packages['node_modules/uplot'].version;
const problems = [];
if (locked !== installed) {
  problems.push(`node_modules has uplot ${installed} but package-lock.json pins ${locked}: run npm ci --prefix web`);
}

for (const [from, to] of FILES) {
  const src = join(web, from);
  const dst = join(web, to);
  if (!existsSync(src)) {
    problems.push(`${show(src)} is missing from the installed uplot ${installed}`);
    continue;
  }
  if (write) {
    copyFileSync(src, dst);
    console.log(`check-vendor: wrote ${show(dst)} (uplot ${installed})`);
    continue;
  }
  if (!existsSync(dst)) {
    problems.push(`${show(dst)} is missing (node web/tools/check-vendor.mjs --write copies it)`);
  } else if (sha(src) !== sha(dst)) {
    problems.push(`${show(dst)} differs from ${show(src)} (uplot ${installed}): sha256 ${sha(dst).slice(0, 12)} != ${sha(src).slice(0, 12)}`);
  }
}

if (problems.length) {
  for (const p of problems) console.error(`check-vendor: ${p}`);
  process.exit(1);
}
if (!write) console.log(`check-vendor: ${FILES.length} vendored files match uplot ${installed}`);
