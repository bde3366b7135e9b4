// Each test file's real server and browser: started before its tests, stopped after them.

import {before, after} from 'node:test';
import {startServer} from './server.mjs';
import {launch} from './browser.mjs';

// Generous: the debug build on a shared 2-core machine; a hang fails instead of stalling CI.
export const TEST_TIMEOUT = 180_000;

/** Registers the file's before/after hooks: before its tests, starts the server
 * (`serverOptions`: a token, workers, extra flags) and the browser and awaits
 * `ready({server, browser})`; after them, stops both. */
export function serverAndBrowser(serverOptions, ready) {
  const env = {server: null, browser: null};
  before(async () => {
    env.server = await startServer(serverOptions);
    env.browser = await launch();
    await ready(env);
  });
  after(async () => {
    if (env.browser) await env.browser.close();
    if (env.server) await env.server.stop();
  });
}
