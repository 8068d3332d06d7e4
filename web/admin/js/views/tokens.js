// Tokens: paged list (newest first) with a project filter, create (the secret
// is shown once), edit limits, usage, revoke.

import { get, post, patch, del, seg, pageInfo, listProjects } from '../api.js';
import {
  h, cloneTemplate, timeCell, labelCells, say, withBusy, preserveFocus, fmtNum, fmtLimit, fmtTime, parseTime, plural, readInt,
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

export async function render(ctx) {
  ctx.setTitle('Tokens');
  ctx.root.append(cloneTemplate('tpl-tokens'));
  const $ = (sel) => ctx.root.querySelector(sel);
  const tbody = $('#tokens-table tbody');
  const filter = $('#token-project-filter');
  const createForm = $('#token-create-form');
  const createProject = $('#token-project');
  const status = $('#view-status');
  const error = $('#view-error');
  const prev = $('#tokens-prev');
  const next = $('#tokens-next');

  let projectId = ctx.params.get('project') || '';
  let page = 1;
  let info = { total: 0, page: 1, totalPages: 1 };
  let tokens = [];
  let names = new Map();
  const nameOf = (id) => names.get(id) ?? id ?? '—';

  // ---- the one-time secret ---------------------------------------------------
  // The secret exists only as the text of code#token-secret-value: no variable
  // keeps it, so clearing that text (or leaving the view) forgets it.
  const secretPanel = $('#token-secret');
  const secretValue = $('#token-secret-value');
  const copyStatus = $('[data-slot="copy-status"]');

  function showSecret(created, projectName) {
    secretValue.textContent = created.token;
    say($('[data-slot="secret-facts"]'), `For “${projectName}”; expires ${fmtTime(created.expires_at)}; ` +
      `max requests ${fmtLimit(created.max_requests)}; max LLM tokens ${fmtLimit(created.max_tokens)}; ` +
      `rate limit ${rpmText(created.rate_limit_rpm)}.`);
    say(copyStatus, '');
    secretPanel.hidden = false;
    $('#token-secret-title').focus();
  }

  function dismissSecret() {
    window.getSelection()?.removeAllRanges();
    secretValue.textContent = '';
    say($('[data-slot="secret-facts"]'), '');
    say(copyStatus, '');
    secretPanel.hidden = true;
    createForm.querySelector('button[type="submit"]').focus();
  }

  $('#token-secret-copy').addEventListener('click', async () => {
    const text = secretValue.textContent;
    try {
      if (!navigator.clipboard?.writeText) throw new Error('no clipboard');
      await navigator.clipboard.writeText(text);
      say(copyStatus, 'Copied to the clipboard.');
    } catch {
      // No clipboard access (permissions, insecure origin): select the text instead.
      window.getSelection()?.selectAllChildren(secretValue);
      say(copyStatus, 'Selected: press Ctrl+C (⌘C on a Mac) to copy it.');
    }
  });
  $('#token-secret-dismiss').addEventListener('click', dismissSecret);

  // ---- list ------------------------------------------------------------------
  function draw() {
    preserveFocus(tbody, () => {
      tbody.replaceChildren(...tokens.map((t) => tokenRow(t, nameOf(t.project_id))));
      if (tokens.length === 0) {
        tbody.append(h('tr', null, h('td', { colspan: 9, class: 'empty',
          text: projectId ? 'This project has no tokens yet.' : 'No tokens yet.' })));
      }
      labelCells(tbody.parentElement);
    }, filter);
    const pages = Math.max(1, info.totalPages);
    say($('#tokens-page'), `Page ${page} of ${pages} · ${plural(info.total, 'token')}`);
    prev.disabled = page <= 1;
    next.disabled = page >= pages;
  }

  async function loadTokens() {
    const { data, headers } = await get('/manage/tokens', { page, page_size: PAGE_SIZE, project_id: projectId });
    if (!ctx.isCurrent()) return;
    info = pageInfo(headers);
    tokens = Array.isArray(data) ? data : [];
    draw();
  }

  const act = actionRunner(ctx, status, error, loadTokens);

  async function goTo(newPage, button) {
    page = newPage;
    say(error, '');
    try {
      await withBusy([prev, next], loadTokens);
    } catch (e) {
      if (ctx.isCurrent()) say(error, e.message);
    }
    draw(); // re-apply the disabled state withBusy restored
    if (button.disabled) (button === prev ? next : prev).focus();
  }
  prev.addEventListener('click', () => goTo(Math.max(1, page - 1), prev));
  next.addEventListener('click', () => goTo(page + 1, next));

  filter.addEventListener('change', () => {
    projectId = filter.value;
    // Keep the address shareable without a hashchange (which would re-render
    // the view and drop a secret that is still being shown).
    history.replaceState(null, '', projectId ? `#/tokens?project=${encodeURIComponent(projectId)}` : '#/tokens');
    const option = [...createProject.options].find((o) => o.value === projectId);
    if (option && !option.disabled) createProject.value = projectId;
    goTo(1, filter);
  });

  // ---- row actions -------------------------------------------------------------
  const actions = {
    edit: (t) => formDialog('token-edit-dialog', {
      fill: (d) => {
        d.querySelector('[data-slot="token"]').textContent = t.token;
        d.querySelector('#token-edit-max-requests').value = t.max_requests > 0 ? String(t.max_requests) : '';
        d.querySelector('#token-edit-max-tokens').value = t.max_tokens > 0 ? String(t.max_tokens) : '';
        d.querySelector('#token-edit-rpm').value = t.rate_limit_rpm > 0 ? String(t.rate_limit_rpm) : '';
      },
      save: (form) => patch(`/manage/tokens/${seg(t.id)}`, {
        max_requests: readInt(form.querySelector('#token-edit-max-requests'), 'Max requests'),
        max_tokens: readInt(form.querySelector('#token-edit-max-tokens'), 'Max LLM tokens'),
        rate_limit_rpm: readInt(form.querySelector('#token-edit-rpm'), 'Requests per minute'),
      }),
    }).then((saved) => saved && `Limits of token ${t.token} saved.`),

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
    say(status, '');
    try {
      const body = { project_id: createProject.value };
      if (!body.project_id) throw new Error('Choose a project (create one on the Projects page first).');
      body.duration_minutes = readInt($('#token-duration'), 'Valid for (minutes)', { min: 1, max: 525600 });
      if (body.duration_minutes === null) throw new Error('Enter how many minutes the token is valid (1 to 525,600).');
      const optional = { max_requests: '#token-max-requests', max_tokens: '#token-max-tokens', rate_limit_rpm: '#token-rpm' };
      const labels = { max_requests: 'Max requests', max_tokens: 'Max LLM tokens', rate_limit_rpm: 'Requests per minute' };
      for (const [field, sel] of Object.entries(optional)) {
        const value = readInt($(sel), labels[field]);
        if (value !== null) body[field] = value; // empty = omit
      }
      await withBusy(createForm.querySelector('button[type="submit"]'), async () => {
        const { data } = await post('/manage/tokens', body);
        if (!ctx.isCurrent()) return;
        showSecret(data, nameOf(body.project_id));
        for (const sel of Object.values(optional)) $(sel).value = '';
        if (projectId && projectId !== body.project_id) {
          // Show the list the new token is in.
          projectId = body.project_id;
          filter.value = projectId;
          history.replaceState(null, '', `#/tokens?project=${encodeURIComponent(projectId)}`);
        }
        page = 1;
        await loadTokens();
      });
    } catch (e) {
      if (ctx.isCurrent()) say(alert, e.message);
    }
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
  draw(); // now with project names
}
