// Entry point: the session check, the token form on 401, the routes.

import * as api from './api.js';
import * as router from './router.js';
import {clear} from './dom.js';
import {clearBanner, showError} from './banner.js';
import {renderLogin} from './pages/login.js';
import * as jobsPage from './pages/jobs.js';
import * as jobPage from './pages/job.js';
import * as sweepsPage from './pages/sweeps.js';
import * as sweepPage from './pages/sweep.js';
import * as comparePage from './pages/compare.js';

const app = document.getElementById('app');
const logoutButton = document.getElementById('logout');

const routes = [
  {pattern: /^\/$/, page: jobsPage, nav: 'jobs'},
  {pattern: /^\/jobs\/?$/, page: jobsPage, nav: 'jobs'},
  {pattern: /^\/jobs\/([^/]+)\/?$/, keys: ['id'], page: jobPage, nav: 'jobs'},
  {pattern: /^\/sweeps\/?$/, page: sweepsPage, nav: 'sweeps'},
  {pattern: /^\/sweeps\/([^/]+)\/?$/, keys: ['id'], page: sweepPage, nav: 'sweeps'},
  {pattern: /^\/compare\/?$/, page: comparePage, nav: 'jobs'},
];

let started = false;
let loginShown = false;

function highlightNav(pathname) {
  const nav = pathname.startsWith('/sweeps') ? 'sweeps' : 'jobs';
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === nav);
  }
}

function showLogin(message) {
  // Shown already (several requests may answer 401 at once); a route change since replaced it.
  if (loginShown && app.querySelector('.login-form')) return;
  loginShown = true;
  router.leave();
  clearBanner();
  clear(app);
  document.title = 'gradlab: sign in';
  logoutButton.hidden = true;
  renderLogin(app, {
    message,
    onSuccess: () => {
      loginShown = false;
      void afterLogin();
    },
  });
}

async function afterLogin() {
  await refreshSession();
  if (started) router.render();
  else {
    started = true;
    router.start();
  }
}

async function refreshSession() {
  try {
    const s = await api.session();
    logoutButton.hidden = !(s && s.auth_required && s.authenticated);
    return s;
  } catch (e) {
    return null;
  }
}

logoutButton.addEventListener('click', async () => {
  try {
    await api.logout();
  } catch (e) {
    showError(e);
    return;
  }
  showLogin();
});

window.addEventListener(api.UNAUTHORIZED, (e) => showLogin(e.detail && e.detail.message));

router.configure(routes, app, {onUnauthorized: showLogin, onRender: highlightNav});

async function boot() {
  let s = null;
  try {
    s = await api.session();
  } catch (e) {
    if (e instanceof api.ApiError && e.status === 401) {
      showLogin();
      return;
    }
    showError(e);
  }
  if (s && s.auth_required && !s.authenticated) {
    showLogin();
    return;
  }
  logoutButton.hidden = !(s && s.auth_required && s.authenticated);
  started = true;
  router.start();
}

void boot();
