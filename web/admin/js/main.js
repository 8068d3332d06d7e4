// Entry point: sign-in / sign-out and the hash router that renders one view
// at a time into main#view.

import { ApiError, request, getToken, setToken, clearToken, onUnauthorized, isSendableToken } from './api.js';
import { say, withBusy, errorMessage } from './dom.js';
import { closeAllDialogs } from './dialogs.js';
import * as dashboard from './views/dashboard.js';
import * as projects from './views/projects.js';
import * as tokens from './views/tokens.js';
import * as audit from './views/audit.js';
import * as cache from './views/cache.js';

const ROUTES = { dashboard, projects, tokens, audit, cache };
const APP = 'llm-proxy admin';

const signinSection = document.getElementById('signin');
const signinForm = document.getElementById('signin-form');
const signinInput = document.getElementById('signin-token');
const signinError = document.getElementById('signin-error');
const shell = document.getElementById('shell');
const view = document.getElementById('view');
const nav = document.getElementById('nav');

// Bumped on every render and on sign-out: a view's async work checks it before
// touching the page, so a slow answer never paints over a newer view.
let generation = 0;

function parseRoute() {
  const match = /^#\/([a-z]+)(?:\?(.*))?$/.exec(location.hash);
  const name = match && ROUTES[match[1]] ? match[1] : null;
  return { name, params: new URLSearchParams(match && name ? match[2] || '' : '') };
}

async function render({ focus = false } = {}) {
  if (!getToken()) return;
  showSignedIn();
  const { name, params } = parseRoute();
  if (!name) {
    // Unknown or empty hash: show the dashboard without adding a history entry.
    history.replaceState(null, '', '#/dashboard');
    return render({ focus });
  }
  const gen = ++generation;
  closeAllDialogs();
  for (const link of nav.querySelectorAll('a')) {
    if (link.getAttribute('href') === `#/${name}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  view.replaceChildren(); // drops the previous view, including any shown secret
  view.dataset.ready = 'false';
  const ctx = {
    root: view,
    params,
    isCurrent: () => gen === generation,
    setTitle: (title) => { document.title = `${title} · ${APP}`; },
  };
  try {
    await ROUTES[name].render(ctx);
  } catch (error) {
    const message = errorMessage(error); // a bug is logged (console.error) even when the view is gone
    if (!ctx.isCurrent()) return;
    const target = view.querySelector('#view-error') ||
      view.appendChild(Object.assign(document.createElement('p'), { id: 'view-error', className: 'alert' }));
    target.setAttribute('role', 'alert');
    say(target, message);
  }
  if (!ctx.isCurrent()) return;
  view.dataset.ready = 'true';
  // After a navigation by the user, move focus to the new heading so keyboard
  // and screen reader users start at the content (not on the first load).
  if (focus) view.querySelector('h1')?.focus();
}

function showSignedIn() {
  signinSection.hidden = true;
  shell.hidden = false;
}

function signOut(message = '', { focus = true } = {}) {
  generation++;
  clearToken();
  closeAllDialogs();
  view.replaceChildren();
  view.dataset.ready = 'false';
  shell.hidden = true;
  signinSection.hidden = false;
  document.title = `Sign in · ${APP}`;
  say(signinError, message);
  if (focus) signinInput.focus();
}

const STORAGE_BLOCKED = 'This browser does not let the page keep the token for this tab (site data is blocked). ' +
  'Allow cookies and site data for this server, then sign in again.';

async function signIn() {
  say(signinError, '');
  const token = signinInput.value.trim();
  if (!token) return say(signinError, 'Enter the management token.');
  if (!isSendableToken(token)) return say(signinError, 'The token contains spaces or characters that cannot be sent.');
  await withBusy(signinForm.querySelector('button[type="submit"]'), async () => {
    try {
      // Any cheap authenticated call validates the token.
      await request('GET', '/manage/projects', { query: { page: 1, page_size: 1 }, token });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 401) say(signinError, 'The management token was not accepted.');
      else if (error.status === 0) say(signinError, 'Could not reach the server. Check the connection and try again.');
      else say(signinError, `The server could not check the token: ${error.message}`);
      return;
    }
    try {
      setToken(token);
    } catch {
      // sessionStorage refused (storage blocked, quota): an expected state of the browser, not a bug.
      say(signinError, STORAGE_BLOCKED);
      return;
    }
    if (getToken() !== token) return say(signinError, STORAGE_BLOCKED);
    signinInput.value = '';
    showSignedIn();
    await render({ focus: true });
  });
}

signinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  signIn().catch((error) => say(signinError, errorMessage(error)));
});

document.getElementById('signout').addEventListener('click', () => signOut(''));

// A rejected token later on (rotated on the server, or a new process) ends the session.
onUnauthorized(() => signOut('The management token was not accepted. Please sign in again.'));

// The skip link would change the hash (our router); move focus instead.
document.getElementById('skip-link').addEventListener('click', (event) => {
  event.preventDefault();
  view.focus();
});

// render() shows its own errors; this only catches a bug outside its try.
const renderSafely = (options) => render(options).catch((error) => errorMessage(error));

window.addEventListener('hashchange', () => renderSafely({ focus: true }));

if (getToken()) {
  // Still signed in from earlier in this tab (e.g. a reload); a stale token
  // is caught by the first API call's 401.
  renderSafely();
} else {
  signOut('', { focus: false });
}
