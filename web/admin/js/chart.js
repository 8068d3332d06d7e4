// The per-day usage chart: two bar panels in one SVG sharing the day axis
// (requests on top, LLM tokens below, prompt + completion stacked), a legend,
// and the same numbers as a table for screen readers and copy/paste.

import { h, svg, fmtNum } from './dom.js';

const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "2026-12-04" -> "Dec 4". */
function shortDay(day) {
  const m = /^\d{4}-(\d{2})-(\d{2})$/.exec(day);
  return m ? `${MONTHS[Number(m[1]) - 1] || m[1]} ${Number(m[2])}` : day;
}

const num = (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);
const r2 = (v) => Math.round(v * 100) / 100;

/**
 * One panel: a title, y axis with 0 and the maximum, and a baseline.
 * Returns the pixel scale for values.
 */
function panel(root, { title, top, height, left, right, max }) {
  root.append(
    svg('text', { class: 'chart-title', x: left, y: top - 8, text: title }),
    svg('line', { class: 'chart-grid', x1: left, x2: right, y1: top, y2: top }),
    svg('line', { class: 'chart-axis', x1: left, x2: right, y1: top + height, y2: top + height }),
    svg('text', { class: 'chart-label', x: left - 6, y: top + height, 'text-anchor': 'end', text: '0' }),
  );
  if (max > 0) {
    root.append(svg('text', { class: 'chart-label', x: left - 6, y: top + 4, 'text-anchor': 'end', text: compact.format(max) }));
  }
  return (value) => (max > 0 ? (value / max) * height : 0);
}

/** A bar rect with its tooltip; height 0 bars are still drawn (one per day). */
function bar(cls, x, y, width, height, data, tooltip) {
  return svg('rect', {
    class: cls, x: r2(x), y: r2(y - height), width: r2(width), height: r2(height), dataset: data,
  }, svg('title', { text: tooltip }));
}

function chartSvg(series, usage, width) {
  const W = Math.round(Math.min(900, Math.max(300, width)));
  const left = 44;
  const right = W - 10;
  const plotH = W < 500 ? 90 : 110;
  const top1 = 26;
  const top2 = top1 + plotH + 42;
  const H = top2 + plotH + 26;
  const n = Math.max(1, series.length);
  const slot = (right - left) / n;
  const barW = Math.max(1, slot * 0.7);
  const offset = (slot - barW) / 2;

  const maxReq = Math.max(0, ...series.map((d) => num(d.requests)));
  const maxTok = Math.max(0, ...series.map((d) => Math.max(num(d.total_tokens), num(d.prompt_tokens) + num(d.completion_tokens))));
  const totals = usage.totals || {};
  const busiest = series.reduce((best, d) => (num(d.requests) > num(best?.requests) ? d : best), null);

  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    class: 'chart-svg',
    'aria-label': `Requests and LLM tokens per day from ${usage.from} to ${usage.to}: ` +
      `${fmtNum(num(totals.requests))} requests and ${fmtNum(num(totals.total_tokens))} LLM tokens in total` +
      (busiest ? `; busiest day ${busiest.day} with ${fmtNum(num(busiest.requests))} requests.` : '.'),
  });
  const reqScale = panel(root, { title: 'Requests per day', top: top1, height: plotH, left, right, max: maxReq });
  const tokScale = panel(root, { title: 'LLM tokens per day', top: top2, height: plotH, left, right, max: maxTok });

  // Label every k-th day, counted back from the last one so today is always labelled.
  const step = Math.ceil(n / Math.max(2, Math.floor((right - left) / 62)));
  series.forEach((d, i) => {
    const x = left + i * slot + offset;
    const requests = num(d.requests);
    const prompt = num(d.prompt_tokens);
    const completion = num(d.completion_tokens);
    const total = Math.max(num(d.total_tokens), prompt + completion);
    const day = String(d.day);
    root.append(
      bar('bar-requests', x, top1 + plotH, barW, reqScale(requests), { day, value: requests },
        `${day}: ${fmtNum(requests)} ${requests === 1 ? 'request' : 'requests'}`),
      // The full bar is the total (drawn in the completion colour); the prompt
      // part is drawn over its bottom, which makes the stack.
      bar('bar-tokens', x, top2 + plotH, barW, tokScale(total), { day, value: num(d.total_tokens) },
        `${day}: ${fmtNum(total)} LLM tokens (${fmtNum(prompt)} prompt + ${fmtNum(completion)} completion)`),
      bar('bar-prompt', x, top2 + plotH, barW, tokScale(prompt), { day, value: prompt },
        `${day}: ${fmtNum(prompt)} prompt tokens of ${fmtNum(total)}`),
    );
    if ((n - 1 - i) % step === 0) {
      const cx = r2(x + barW / 2);
      root.append(
        svg('line', { class: 'chart-tick', x1: cx, x2: cx, y1: top2 + plotH, y2: top2 + plotH + 4 }),
        svg('text', { class: 'chart-label', x: cx, y: top2 + plotH + 17, 'text-anchor': 'middle', text: shortDay(day) }),
      );
    }
  });
  return root;
}

function legend() {
  const item = (cls, label) => h('li', null, h('span', { class: `swatch ${cls}`, 'aria-hidden': 'true' }), label);
  return h('ul', { class: 'legend' },
    item('swatch-requests', 'Requests'),
    item('swatch-prompt', 'Prompt tokens'),
    item('swatch-completion', 'Completion tokens'));
}

function table(series, totals) {
  const cols = ['requests', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'cache_hits'];
  const row = (first, d, cellTag) => h('tr', null, h('th', { scope: 'row', text: first }),
    cols.map((c) => h(cellTag, { class: 'num', text: fmtNum(num(d[c])) })));
  return h('details', { class: 'chart-table' },
    h('summary', { text: 'Show as table' }),
    h('div', { class: 'table-wrap' },
      h('table', null,
        h('thead', null, h('tr', null,
          ['Day', 'Requests', 'Prompt tokens', 'Completion tokens', 'Total tokens', 'Cache hits']
            .map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', null, series.map((d) => row(String(d.day), d, 'td'))),
        h('tfoot', null, row('Total', totals || {}, 'td')))));
}

/**
 * Renders a /manage/usage?group_by=day answer. `width` is the space available
 * in CSS pixels: the viewBox is sized to it so labels stay legible on a phone,
 * and the SVG still scales (width: 100%) if the window is resized later.
 */
export function usageChart(usage, width) {
  const series = Array.isArray(usage?.series) ? usage.series : [];
  if (series.length === 0) return h('p', { class: 'muted', text: 'No usage data for this period.' });
  return h('div', { class: 'chart' }, chartSvg(series, usage, width || 720), legend(), table(series, usage.totals));
}
