// Projects: list with search, create, rename, rotate key, rate limit,
// deactivate (revoking tokens) / activate.

import { listProjects, post, patch, seg } from '../api.js';
import {
  h, cloneTemplate, timeCell, labelCells, say, withBusy, preserveFocus, fmtLimit, plural, readInt, errorMessage, UserError,
} from '../dom.js';
import { confirmAction, formDialog } from '../dialogs.js';
import { actionRunner } from './common.js';

function actionButton(project, action, label) {
  return h('button', {
    type: 'button',
    class: 'small',
    dataset: { action, focusKey: `${project.id}:${action}` },
    'aria-label': `${label}: ${project.name}`,
    text: label,
  });
}

function projectRow(p) {
  const active = p.is_active === true;
  return h('tr', { dataset: { projectId: p.id } },
    h('td', { class: 'project-name', text: p.name }),
    h('td', { class: 'mono small-text nowrap', text: p.id }),
    h('td', { class: 'mono nowrap', text: p.api_key ?? '—' }),
    h('td', { class: 'project-state' },
      h('span', { class: `badge ${active ? 'status-active' : 'status-inactive'}`, text: active ? 'active' : 'inactive' })),
    h('td', { class: 'nowrap', text: p.rate_limit_rpm > 0 ? `${fmtLimit(p.rate_limit_rpm)} / min` : 'unlimited' }),
    timeCell(p.created_at),
    h('td', { class: 'actions' },
      h('div', { class: 'button-row' },
        actionButton(p, 'rename', 'Rename'),
        actionButton(p, 'rotate-key', 'Rotate key'),
        actionButton(p, 'rate-limit', 'Rate limit'),
        active ? actionButton(p, 'deactivate', 'Deactivate') : actionButton(p, 'activate', 'Activate'),
        h('a', {
          class: 'button-link small',
          href: `#/tokens?project=${encodeURIComponent(p.id)}`,
          dataset: { action: 'tokens', focusKey: `${p.id}:tokens` },
          'aria-label': `Tokens of ${p.name}`,
          text: 'Tokens',
        }))));
}

export async function render(ctx) {
  ctx.setTitle('Projects');
  ctx.root.append(cloneTemplate('tpl-projects'));
  const $ = (sel) => ctx.root.querySelector(sel);
  const createForm = $('#project-create-form');
  const search = $('#project-search');
  const tbody = $('#projects-table tbody');
  const status = $('#view-status');
  const error = $('#view-error');
  let projects = [];

  function draw() {
    const term = search.value.trim().toLowerCase();
    const shown = term
      ? projects.filter((p) => String(p.name).toLowerCase().includes(term) || String(p.id).toLowerCase().includes(term))
      : projects;
    preserveFocus(tbody, () => {
      tbody.replaceChildren(...shown.map(projectRow));
      if (shown.length === 0) {
        tbody.append(h('tr', null, h('td', { colspan: 7, class: 'empty',
          text: projects.length ? 'No project matches the search.' : 'No projects yet. Create one above.' })));
      }
      labelCells(tbody.parentElement);
    }, search);
    say($('[data-slot="count"]'), term
      ? `${shown.length} of ${plural(projects.length, 'project')} match.`
      : plural(projects.length, 'project'));
  }

  // Every load has a number; only the answer of the latest one is drawn (or
  // its error reported), so a slow older answer never paints over a newer one.
  let loadSeq = 0;
  async function load() {
    const seq = ++loadSeq;
    const latest = () => ctx.isCurrent() && seq === loadSeq;
    let list;
    try {
      list = await listProjects();
    } catch (e) {
      if (latest()) throw e;
      return false;
    }
    if (!latest()) return false;
    projects = list;
    draw();
    return true;
  }

  const act = actionRunner(ctx, status, error, load);

  const actions = {
    rename: (p) => {
      let name = p.name;
      return formDialog('project-rename-dialog', {
        fill: (d) => { d.querySelector('#project-rename-name').value = p.name; },
        save: async (form) => {
          name = form.querySelector('#project-rename-name').value;
          if (!name.trim()) throw new UserError('Enter a name.');
          if (name !== p.name) await patch(`/manage/projects/${seg(p.id)}`, { name });
        },
      }).then((saved) => saved && name !== p.name && `Project “${p.name}” renamed to “${name}”.`);
    },

    'rotate-key': (p) => formDialog('project-key-dialog', {
      fill: (d) => { d.querySelector('[data-slot="name"]').textContent = p.name; },
      save: async (form) => {
        const apiKey = form.querySelector('#project-key-value').value.trim();
        if (!apiKey) throw new UserError('Enter the new API key.');
        await patch(`/manage/projects/${seg(p.id)}`, { api_key: apiKey });
      },
    }).then((saved) => saved && `The API key of “${p.name}” was replaced.`),

    'rate-limit': (p) => {
      let rpm = null;
      return formDialog('project-rpm-dialog', {
        fill: (d) => {
          d.querySelector('[data-slot="name"]').textContent = p.name;
          d.querySelector('#project-rpm-value').value = p.rate_limit_rpm > 0 ? String(p.rate_limit_rpm) : '';
        },
        save: async (form) => {
          rpm = readInt(form.querySelector('#project-rpm-value'), 'Requests per minute');
          await patch(`/manage/projects/${seg(p.id)}`, { rate_limit_rpm: rpm || null });
        },
      }).then((saved) => saved && (rpm
        ? `“${p.name}” is limited to ${fmtLimit(rpm)} requests per minute.`
        : `“${p.name}” has no rate limit now.`));
    },

    deactivate: async (p) => {
      const ok = await confirmAction({
        title: 'Deactivate project?',
        message: `“${p.name}” will stop accepting requests, and all its active tokens are revoked ` +
          '(activating the project later does not bring them back).',
        ok: 'Deactivate and revoke tokens',
      });
      if (!ok) return '';
      const { data } = await patch(`/manage/projects/${seg(p.id)}`, { is_active: false, revoke_tokens: true });
      const revoked = data?.tokens_revoked?.revoked_count ?? 0;
      return `Project “${p.name}” deactivated; ${plural(revoked, 'token')} revoked.`;
    },

    activate: async (p) => {
      await patch(`/manage/projects/${seg(p.id)}`, { is_active: true });
      return `Project “${p.name}” activated.`;
    },
  };

  tbody.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    const row = button?.closest('tr[data-project-id]');
    const project = row && projects.find((p) => p.id === row.dataset.projectId);
    if (project && actions[button.dataset.action]) act(() => actions[button.dataset.action](project));
  });

  search.addEventListener('input', draw);

  createForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const alert = createForm.querySelector('[role="alert"]');
    say(alert, '');
    say(status, '');
    say(error, '');
    const name = $('#project-name').value;
    const apiKey = $('#project-api-key').value.trim();
    if (!name.trim() || !apiKey) return say(alert, 'Enter a name and the upstream API key.');
    let created = false;
    let reloadError = '';
    try {
      await withBusy(createForm.querySelector('button[type="submit"]'), async () => {
        // The 201 answer echoes the key in clear: it is deliberately not kept or shown.
        await post('/manage/projects', { name, api_key: apiKey });
        created = true;
        createForm.reset();
        try {
          await load();
        } catch (e) {
          reloadError = errorMessage(e);
        }
      });
    } catch (e) {
      const message = errorMessage(e);
      if (ctx.isCurrent()) say(alert, message);
      return;
    }
    if (!ctx.isCurrent() || !created) return;
    say(status, `Project “${name}” created.`);
    // The project exists: the reload failure belongs to the list, not to the
    // form (an error there would invite a second try and a 409).
    if (reloadError) say(error, `The list could not be reloaded: ${reloadError}`);
  });

  await load();
}
