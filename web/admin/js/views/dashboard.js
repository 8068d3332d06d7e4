// Dashboard: counts, server health and the last 30 days of usage.

import { get, getHealth, pageInfo } from '../api.js';
import { h, cloneTemplate, fmtNum, plural, say, errorMessage } from '../dom.js';
import { usageChart } from '../chart.js';

const STATUS_CLASSES = new Set(['ok', 'up', 'degraded', 'down', 'disabled', 'starting']);

function badge(status, id) {
  const text = status == null ? 'unknown' : String(status);
  return h('span', { id, class: `badge status-${STATUS_CLASSES.has(text) ? text : 'unknown'}`, text });
}

function uptime(seconds) {
  if (typeof seconds !== 'number') return '—';
  const d = Math.floor(seconds / 86400);
  const hr = Math.floor((seconds % 86400) / 3600);
  const min = Math.floor((seconds % 3600) / 60);
  if (d) return `${d} d ${hr} h`;
  if (hr) return `${hr} h ${min} min`;
  return `${min} min ${Math.floor(seconds % 60)} s`;
}

function healthBody(health) {
  const db = health.database || {};
  const cache = health.cache || {};
  const dbFacts = [db.driver, typeof db.latency_ms === 'number' ? `${db.latency_ms.toFixed(2)} ms` : null, db.error]
    .filter(Boolean).join(', ');
  return [
    h('p', { class: 'card-value health-status' }, badge(health.status, 'dash-health-status')),
    h('dl', { class: 'kv compact' },
      h('dt', { text: 'Database' }), h('dd', null, badge(db.status), dbFacts ? ` ${dbFacts}` : ''),
      h('dt', { text: 'Cache' }), h('dd', null, badge(cache.status), cache.backend ? ` ${cache.backend}` : ''),
      h('dt', { text: 'Version' }), h('dd', { text: health.version ?? '—' }),
      h('dt', { text: 'Uptime' }), h('dd', { text: uptime(health.uptime_seconds) })),
  ];
}

export async function render(ctx) {
  ctx.setTitle('Dashboard');
  ctx.root.append(cloneTemplate('tpl-dashboard'));
  const $ = (sel) => ctx.root.querySelector(sel);
  const errors = [];

  const count = (path, query, el) => get(path, query)
    .then(({ headers }) => { el.textContent = fmtNum(pageInfo(headers).total); })
    .catch((error) => { errors.push(errorMessage(error)); el.textContent = '—'; });

  const health = getHealth()
    .then(({ data }) => { $('#dash-health').replaceChildren(...healthBody(data)); })
    .catch((error) => {
      errors.push(`Health: ${errorMessage(error)}`);
      $('#dash-health').replaceChildren(h('p', { class: 'card-value health-status' }, badge('unknown', 'dash-health-status')));
    });

  const usage = get('/manage/usage', { group_by: 'day' })
    .then(({ data }) => {
      if (!ctx.isCurrent()) return;
      const chartBox = $('#usage-chart');
      const totals = data.totals || {};
      say($('[data-slot="usage-summary"]'), `${data.from} to ${data.to} (UTC): ` +
        `${plural(totals.requests ?? 0, 'request')}, ${plural(totals.total_tokens ?? 0, 'LLM token')}, ` +
        `${plural(totals.cache_hits ?? 0, 'cache hit')}.`);
      chartBox.replaceChildren(usageChart(data, chartBox.clientWidth));
    })
    .catch((error) => { errors.push(`Usage: ${errorMessage(error)}`); });

  await Promise.all([
    count('/manage/projects', { page: 1, page_size: 1 }, $('#dash-projects')),
    count('/manage/tokens', { active: 'true', page: 1, page_size: 1 }, $('#dash-active-tokens')),
    health,
    usage,
  ]);
  if (ctx.isCurrent()) say($('#view-error'), errors.join(' '));
}
