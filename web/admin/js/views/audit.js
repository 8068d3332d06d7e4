// Audit trail: filters, paged table, event detail dialog.

import { get, seg, listProjects } from '../api.js';
import {
  h, cloneTemplate, timeCell, labelCells, say, withBusy, preserveFocus, fmtTime, fmtNum, errorMessage,
} from '../dom.js';
import { infoDialog } from '../dialogs.js';
import { projectDatalist } from './common.js';

const PAGE_SIZE = 20;
const OUTCOMES = new Set(['success', 'failure', 'denied', 'error']);
// Detail fields in reading order; any other field the server adds follows them.
const FIELD_ORDER = ['id', 'timestamp', 'action', 'outcome', 'actor', 'project_id', 'token_id', 'request_id',
  'correlation_id', 'client_ip', 'method', 'path', 'user_agent', 'reason'];

/** "2026-01-02T03:04" or "...:05" from a datetime-local input, read as UTC. */
function utcParam(value) {
  if (!value) return '';
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(value) ? `${value}:00Z` : `${value}Z`;
}

/** The metadata string pretty-printed when it is JSON, else as it came. */
function metadataText(metadata) {
  if (metadata === null || metadata === undefined || metadata === '') return '—';
  if (typeof metadata !== 'string') return JSON.stringify(metadata, null, 2);
  try {
    return JSON.stringify(JSON.parse(metadata), null, 2);
  } catch {
    return metadata;
  }
}

function outcomeBadge(outcome) {
  const text = outcome ?? '—';
  return h('span', { class: `badge outcome-${OUTCOMES.has(text) ? text : 'unknown'}`, text });
}

export async function render(ctx) {
  ctx.setTitle('Audit');
  ctx.root.append(cloneTemplate('tpl-audit'));
  const $ = (sel) => ctx.root.querySelector(sel);
  const form = $('#audit-filter-form');
  const tbody = $('#audit-table tbody');
  const error = $('#view-error');
  const prev = $('#audit-prev');
  const next = $('#audit-next');
  const pageLabel = $('#audit-page');
  const apply = form.querySelector('button[type="submit"]');
  // What the table shows: `page`, `filters`, `events` and `pagination` change
  // together, and only when a load succeeded.
  let page = 1;
  let filters = {};
  let events = [];
  let pagination = {};
  let names = new Map();
  let loaded = false; // the first load finished: until then the pager does nothing
  let loading = false; // the latest load is still running
  let loadSeq = 0;
  const projectLabel = (id) => (id ? names.get(id) ?? id : '—');

  function row(e) {
    const request = [e.method, e.path].filter(Boolean).join(' ') || '—';
    return h('tr', { dataset: { eventId: e.id } },
      timeCell(e.timestamp),
      h('td', { class: 'audit-action mono', text: e.action ?? '—' }),
      h('td', { class: 'audit-outcome' }, outcomeBadge(e.outcome)),
      h('td', { class: 'nowrap', text: e.actor ?? '—' }),
      h('td', { class: 'audit-project', text: projectLabel(e.project_id) }),
      h('td', { class: 'mono wrap-anywhere', text: request }),
      h('td', { class: 'wrap-anywhere', text: e.reason ?? '—' }),
      h('td', { class: 'actions' }, h('button', {
        type: 'button', class: 'small', text: 'Details',
        dataset: { action: 'detail', focusKey: `${e.id}:detail` },
        'aria-label': `Details of ${e.action ?? 'event'} at ${fmtTime(e.timestamp)}`,
      })));
  }

  function syncPager() {
    prev.disabled = !loaded || loading || !pagination.has_prev;
    next.disabled = !loaded || loading || !pagination.has_next;
  }

  function draw() {
    preserveFocus(tbody, () => {
      tbody.replaceChildren(...events.map(row));
      if (events.length === 0) tbody.append(h('tr', null, h('td', { colspan: 8, class: 'empty', text: 'No events match.' })));
      labelCells(tbody.parentElement);
    }, apply);
    const pages = Math.max(1, pagination.total_pages ?? 1);
    say(pageLabel, `Page ${pagination.page ?? page} of ${pages} · ${fmtNum(pagination.total_count ?? 0)} events`);
    syncPager();
  }

  /**
   * Loads a page with the given filters (default: what is shown now). Only the
   * latest load counts: an older answer (or error) is dropped and resolves
   * false; an error of the latest load is thrown and nothing changes.
   */
  async function load({ page: wantPage = page, filters: wantFilters = filters } = {}) {
    const seq = ++loadSeq;
    const latest = () => ctx.isCurrent() && seq === loadSeq;
    loading = true;
    syncPager();
    try {
      const { data } = await get('/manage/audit', { ...wantFilters, page: wantPage, page_size: PAGE_SIZE });
      if (!latest()) return false;
      events = Array.isArray(data?.events) ? data.events : [];
      pagination = data?.pagination || {};
      page = wantPage;
      filters = wantFilters;
      loaded = true;
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

  // Loads a page; errors are shown next to the table (or in the form).
  async function show(target, buttons, errorEl = error) {
    say(error, '');
    say(errorEl, '');
    try {
      await withBusy(buttons, () => load(target), {
        settle: syncPager,
        // Next on the last page (or Previous on the first) is disabled now.
        fallback: () => [prev, next, pageLabel],
      });
    } catch (e) {
      const message = errorMessage(e);
      if (ctx.isCurrent()) say(errorEl, message);
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const wanted = {
      action: $('#audit-action').value.trim(),
      outcome: $('#audit-outcome').value,
      search: $('#audit-search').value.trim(),
      project_id: $('#audit-project').value.trim(),
      start_time: utcParam($('#audit-start').value),
      end_time: utcParam($('#audit-end').value),
    };
    show({ page: 1, filters: wanted }, [apply, prev, next], form.querySelector('[role="alert"]'));
  });
  prev.addEventListener('click', () => { if (loaded) show({ page: Math.max(1, page - 1) }, [prev, next]); });
  next.addEventListener('click', () => { if (loaded) show({ page: page + 1 }, [prev, next]); });

  tbody.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action="detail"]');
    const id = button?.closest('tr[data-event-id]')?.dataset.eventId;
    if (!id) return;
    infoDialog('audit-detail-dialog', async (dialog, signal) => {
      const fields = dialog.querySelector('[data-slot="fields"]');
      const metadata = dialog.querySelector('#audit-detail-metadata');
      fields.replaceChildren(h('dt', { text: 'Loading…' }));
      metadata.textContent = '';
      const { data } = await get(`/manage/audit/${seg(id)}`);
      if (signal.aborted) return;
      const keys = [...FIELD_ORDER.filter((k) => k in data), ...Object.keys(data).filter((k) => !FIELD_ORDER.includes(k) && k !== 'metadata')];
      fields.replaceChildren(...keys.flatMap((k) => {
        let value = data[k] === null || data[k] === undefined ? '—' : String(data[k]);
        if (k === 'timestamp') value = fmtTime(data[k]);
        if (k === 'project_id' && names.has(data[k])) value = `${data[k]} (${names.get(data[k])})`;
        return [h('dt', { text: k }), h('dd', { class: 'wrap-anywhere', text: value })];
      }));
      metadata.textContent = metadataText(data.metadata);
    });
  });

  // Project names are a nicety: the audit is still usable without them.
  const [projects] = await Promise.all([listProjects().catch(() => []), load()]);
  if (!ctx.isCurrent()) return;
  names = new Map(projects.map((p) => [p.id, p.name]));
  projectDatalist($('#audit-projects'), projects);
  if (loaded) draw(); // now with project names
}
