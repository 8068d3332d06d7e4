// Tokens: paged list (newest first) with a project filter, create (the secret
// is shown once), edit limits, usage, revoke.

import { get, post, patch, del, seg, pageInfo, listProjects } from '../api.js';
import {
  h, cloneTemplate, timeCell, labelCells, say, withBusy, preserveFocus, fmtNum, fmtLimit, fmtTime, parseTime, plural, readInt,
  errorMessage, UserError,
} from '../dom.js';
import { confirmAction, formDialog, infoDialog } from '../dialogs.js';
import { usageChart } from '../chart.js';
import { actionRunner, projectOptions } from './common.js';

const PAGE_SIZE = 20;

/** "revoked" (deactivated), "expired" (past expires_at) or "active". */
export function tokenStatus(t) {
  if (t.is_active !== true) return 'revoked';
  if (parseTime(t.expires_at) <= Date.now()) return 'expired';
  return 'active';
}

const rpmText = (rpm) => (rpm > 0 ? `${fmtNum(rpm)} / min` : 'unlimited');

function rowButton(t, action, label) {
  return h('button', {
    type: 'button', class: 'small', text: label,
    dataset: { action, focusKey: `${t.id}:${action}` },
    'aria-label': `${label}: ${t.token}`,
  });
}

function tokenRow(t, projectName) {
  const status = tokenStatus(t);
  return h('tr', { dataset: { tokenId: t.id } },
    h('td', { class: 'token-status' }, h('span', { class: `badge status-${status}`, text: status })),
    h('td', { class: 'token-display mono nowrap', text: t.token ?? t.token_hint ?? '—' }),
    h('td', { class: 'token-project', text: projectName }),
    h('td', { class: 'nowrap' }, `${fmtNum(t.request_count)} / ${fmtLimit(t.max_requests)}`,
      h('span', { class: 'sub', text: plural(t.cache_hit_count ?? 0, 'cache hit') })),
    h('td', { class: 'nowrap' }, `${fmtNum(t.total_tokens)} / ${fmtLimit(t.max_tokens)}`,
      h('span', { class: 'sub', text: `${fmtNum(t.prompt_tokens)} prompt · ${fmtNum(t.completion_tokens)} completion` })),
    h('td', { class: 'nowrap', text: rpmText(t.rate_limit_rpm) }),
    timeCell(t.expires_at),
    timeCell(t.last_used_at),
    h('td', { class: 'actions' }, h('div', { class: 'button-row' },
      rowButton(t, 'edit', 'Edit limits'),
      rowButton(t, 'usage', 'Usage'),
      status === 'revoked' ? null : rowButton(t, 'revoke', 'Revoke'))));
}

/** Key/value list of everything the token JSON says about its use. */
function usageFacts(t, projectName) {
  const pairs = [
    ['Token', t.token], ['ID', t.id], ['Project', projectName], ['Status', tokenStatus(t)],
    ['Created', fmtTime(t.created_at)], ['Expires', fmtTime(t.expires_at)], ['Last used', fmtTime(t.last_used_at)],
    ['Requests', `${fmtNum(t.request_count)} of ${fmtLimit(t.max_requests)}`],
    ['Prompt tokens', fmtNum(t.prompt_tokens)], ['Completion tokens', fmtNum(t.completion_tokens)],
    ['LLM tokens', `${fmtNum(t.total_tokens)} of ${fmtLimit(t.max_tokens)}`],
    ['Cache hits', fmtNum(t.cache_hit_count)], ['Rate limit', rpmText(t.rate_limit_rpm)],
  ];
  return h('dl', { class: 'kv' }, pairs.map(([k, v]) => [h('dt', { text: k }), h('dd', { text: v ?? '—' })]));
}

/** A limit as the API means it: 0 and null are both "none". */
const limitOf = (v) => (typeof v === 'number' && v > 0 ? v : null);

const LIMIT_FIELDS = [
  ['max_requests', '#token-edit-max-requests', 'Max requests'],
  ['max_tokens', '#token-edit-max-tokens', 'Max LLM tokens'],
  ['rate_limit_rpm', '#token-edit-rpm', 'Requests per minute'],
];

export async function render(ctx) {
  ctx.setTitle('Tokens');
  ctx.root.append(cloneTemplate('tpl-tokens'));
  const $ = (sel) => ctx.root.querySelector(sel);
  const tbody = $('#tokens-table tbody');
  const filter = $('#token-project-filter');
  const createForm = $('#token-create-form');
  const createProject = $('#token-project');
  const createSubmit = createForm.querySelector('button[type="submit"]');
  const createHint = $('#token-create-hint');
  const status = $('#view-status');
  const error = $('#view-error');
  const prev = $('#tokens-prev');
  const next = $('#tokens-next');
  const pageLabel = $('#tokens-page');

  // What the table shows: `projectId`, `page`, `info` and `tokens` change
  // together, and only when a load succeeded.
  let projectId = ctx.params.get('project') || '';
  let page = 1;
  let info = { total: 0, page: 1, totalPages: 1 };
  let tokens = [];
  let names = new Map();
  let loaded = false; // the first load finished: until then the pager does nothing
  let loading = false; // the latest load is still running
  let loadSeq = 0;
  const nameOf = (id) => names.get(id) ?? id ?? '—';

  // ---- the one-time secret ---------------------------------------------------
  // The secret exists only as the text of code#token-secret-value: no variable
  // keeps it, so clearing that text (or leaving the view) forgets it.
  const secretPanel = $('#token-secret');
  const secretValue = $('#token-secret-value');
  const copyStatus = $('[data-slot="copy-status"]');

  // While a secret is shown no other token can be created: a new one would
  // silently replace a secret nobody has stored yet.
  function syncCreate() {
    const blocked = !secretPanel.hidden;
    createSubmit.disabled = blocked;
    createHint.hidden = !blocked;
  }

  function showSecret(created, projectName) {
    secretValue.textContent = created.token;
    say($('[data-slot="secret-facts"]'), `For “${projectName}”; expires ${fmtTime(created.expires_at)}; ` +
      `max requests ${fmtLimit(created.max_requests)}; max LLM tokens ${fmtLimit(created.max_tokens)}; ` +
      `rate limit ${rpmText(created.rate_limit_rpm)}.`);
    say(copyStatus, '');
    secretPanel.hidden = false;
    syncCreate();
    $('#token-secret-title').focus();
  }

  function dismissSecret() {
    window.getSelection()?.removeAllRanges();
    secretValue.textContent = '';
    say($('[data-slot="secret-facts"]'), '');
    say(copyStatus, '');
    secretPanel.hidden = true;
    syncCreate();
    createSubmit.focus();
  }

  $('#token-secret-copy').addEventListener('click', async () => {
    const text = secretValue.textContent;
    try {
      if (!navigator.clipboard?.writeText) throw new Error('no clipboard');
      await navigator.clipboard.writeText(text);
      say(copyStatus, 'Copied to the system clipboard. Clear the clipboard once you have stored the token.');
    } catch {
      // No clipboard access (permissions, insecure origin): select the text instead.
      window.getSelection()?.selectAllChildren(secretValue);
      say(copyStatus, 'Selected: press Ctrl+C (⌘C on a Mac) to copy it.');
    }
  });
  $('#token-secret-dismiss').addEventListener('click', dismissSecret);

  // ---- list ------------------------------------------------------------------
  function syncPager() {
    const pages = Math.max(1, info.totalPages);
    prev.disabled = !loaded || loading || page <= 1;
    next.disabled = !loaded || loading || page >= pages;
  }

  function draw() {
    preserveFocus(tbody, () => {
      tbody.replaceChildren(...tokens.map((t) => tokenRow(t, nameOf(t.project_id))));
      if (tokens.length === 0) {
        tbody.append(h('tr', null, h('td', { colspan: 9, class: 'empty',
          text: projectId ? 'This project has no tokens yet.' : 'No tokens yet.' })));
      }
      labelCells(tbody.parentElement);
    }, filter);
    say(pageLabel, `Page ${page} of ${Math.max(1, info.totalPages)} · ${plural(info.total, 'token')}`);
    syncPager();
  }

  /**
   * Loads page `page` of project `project` (default: what is shown now) and
   * shows it. Only the latest load counts: an older answer (or error) is
   * dropped and resolves false. Errors of the latest load are thrown, and
   * then nothing changes: the table, page label and filter stay as they were.
   */
  async function loadTokens({ page: wantPage = page, project = projectId } = {}) {
    const seq = ++loadSeq;
    const latest = () => ctx.isCurrent() && seq === loadSeq;
    loading = true;
    syncPager();
    try {
      const { data, headers } = await get('/manage/tokens', { page: wantPage, page_size: PAGE_SIZE, project_id: project });
      if (!latest()) return false;
      info = pageInfo(headers);
      tokens = Array.isArray(data) ? data : [];
      page = wantPage;
      loaded = true;
      if (project !== projectId) {
        projectId = project;
        // Keep the address shareable without a hashchange (which would re-render
        // the view and drop a secret that is still being shown).
        history.replaceState(null, '', projectId ? `#/tokens?project=${encodeURIComponent(projectId)}` : '#/tokens');
        const option = [...createProject.options].find((o) => o.value === projectId);
        if (option && !option.disabled) createProject.value = projectId;
      }
      filter.value = projectId;
      draw();
      return true;
    } catch (e) {
      if (latest()) throw e;
      return false;
    } finally {
      if (seq === loadSeq) {
        loading = false;
        syncPager();
      }
    }
  }

  const act = actionRunner(ctx, status, error, () => loadTokens());

  // Pager and filter: the page (or project) changes only when its load worked.
  async function goTo(target) {
    if (!loaded) return;
    say(error, '');
    try {
      await withBusy([prev, next], () => loadTokens(target), {
        settle: syncPager,
        // Next on the last page (or Previous on the first) is disabled now.
        fallback: () => [prev, next, pageLabel],
      });
    } catch (e) {
      const message = errorMessage(e);
      if (!ctx.isCurrent()) return;
      say(error, message);
      filter.value = projectId; // back to the project whose tokens are shown
    }
  }
  prev.addEventListener('click', () => goTo({ page: Math.max(1, page - 1) }));
  next.addEventListener('click', () => goTo({ page: page + 1 }));
  filter.addEventListener('change', () => goTo({ page: 1, project: filter.value }));

  // ---- row actions -------------------------------------------------------------
  const actions = {
    edit: (t) => {
      let before = {};
      let changed = false;
      return formDialog('token-edit-dialog', {
        fill: (d) => {
          d.querySelector('[data-slot="token"]').textContent = t.token;
          before = {};
          for (const [key, sel] of LIMIT_FIELDS) {
            before[key] = limitOf(t[key]);
            d.querySelector(sel).value = before[key] === null ? '' : String(before[key]);
          }
        },
        // Only the limits the user changed are sent; no change, no request.
        save: async (form) => {
          const body = {};
          for (const [key, sel, label] of LIMIT_FIELDS) {
            const value = readInt(form.querySelector(sel), label);
            if (limitOf(value) !== before[key]) body[key] = value;
          }
          changed = Object.keys(body).length > 0;
          if (changed) await patch(`/manage/tokens/${seg(t.id)}`, body);
        },
      }).then((saved) => (saved && changed ? `Limits of token ${t.token} saved.` : ''));
    },

    usage: (t) => infoDialog('token-usage-dialog', async (dialog, signal) => {
      const body = dialog.querySelector('[data-slot="body"]');
      const chartBox = h('div', { class: 'chart-box' }, h('p', { class: 'muted', text: 'Loading usage…' }));
      body.replaceChildren(usageFacts(t, nameOf(t.project_id)), h('h3', { text: 'Last 30 days' }), chartBox);
      const [fresh, usage] = await Promise.all([
        get(`/manage/tokens/${seg(t.id)}`),
        get('/manage/usage', { group_by: 'day', token_id: t.id }),
      ]);
      if (signal.aborted) return;
      body.firstChild.replaceWith(usageFacts(fresh.data, nameOf(fresh.data.project_id)));
      chartBox.replaceChildren(usageChart(usage.data, chartBox.clientWidth));
    }).then(() => ''),

    revoke: async (t) => {
      const ok = await confirmAction({
        title: 'Revoke token?',
        message: `Token ${t.token} of “${nameOf(t.project_id)}” stops working at once. This cannot be undone.`,
        ok: 'Revoke token',
      });
      if (!ok) return '';
      await del(`/manage/tokens/${seg(t.id)}`);
      return `Token ${t.token} revoked.`;
    },
  };

  tbody.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    const row = button?.closest('tr[data-token-id]');
    const token = row && tokens.find((t) => t.id === row.dataset.tokenId);
    if (token && actions[button.dataset.action]) act(() => actions[button.dataset.action](token));
  });

  // ---- create --------------------------------------------------------------------
  createForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const alert = createForm.querySelector('[role="alert"]');
    say(alert, '');
    if (!secretPanel.hidden) return; // the button is disabled and says why
    say(status, '');
    say(error, '');
    const optional = { max_requests: '#token-max-requests', max_tokens: '#token-max-tokens', rate_limit_rpm: '#token-rpm' };
    const labels = { max_requests: 'Max requests', max_tokens: 'Max LLM tokens', rate_limit_rpm: 'Requests per minute' };
    let reloadError = '';
    try {
      const body = { project_id: createProject.value };
      if (!body.project_id) throw new UserError('Choose a project (create one on the Projects page first).');
      body.duration_minutes = readInt($('#token-duration'), 'Valid for (minutes)', { min: 1, max: 525600 });
      if (body.duration_minutes === null) throw new UserError('Enter how many minutes the token is valid (1 to 525,600).');
      for (const [field, sel] of Object.entries(optional)) {
        const value = readInt($(sel), labels[field]);
        if (value !== null) body[field] = value; // empty = omit
      }
      await withBusy(createSubmit, async () => {
        const { data } = await post('/manage/tokens', body);
        if (!ctx.isCurrent()) return;
        showSecret(data, nameOf(body.project_id));
        for (const sel of Object.values(optional)) $(sel).value = '';
        // Show the list the new token is in (all projects stays all projects).
        const project = projectId && projectId !== body.project_id ? body.project_id : projectId;
        try {
          await loadTokens({ page: 1, project });
        } catch (e) {
          reloadError = errorMessage(e);
        }
      }, { settle: syncCreate });
    } catch (e) {
      const message = errorMessage(e);
      if (ctx.isCurrent()) say(alert, message);
      return;
    }
    // The token exists and its secret is shown: a failed reload is the list's
    // problem, not the form's (an error there would invite a second token).
    if (reloadError && ctx.isCurrent()) say(error, `The token was created, but the list could not be reloaded: ${reloadError}`);
  });

  // ---- first load ------------------------------------------------------------------
  const [projects] = await Promise.all([listProjects(), loadTokens()]);
  if (!ctx.isCurrent()) return;
  names = new Map(projects.map((p) => [p.id, p.name]));
  if (projectId && !names.has(projectId)) {
    filter.append(h('option', { value: projectId, text: `Unknown project ${projectId}` }));
  }
  projectOptions(filter, projects, { selected: projectId });
  const active = projects.filter((p) => p.is_active);
  const preferred = active.some((p) => p.id === projectId) ? projectId : active[0]?.id ?? '';
  projectOptions(createProject, projects, { selected: preferred, markInactive: true });
  if (projects.length === 0) say(createForm.querySelector('[role="alert"]'), 'Create a project first.');
  if (loaded) draw(); // now with project names
}
