// DOM helpers. The page runs under Trusted Types with no policy, so HTML is
// never parsed from strings: every node is created here and every value from
// the API goes in as text (textContent / createTextNode / plain attributes).

import { ApiError } from './api.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

function applyProps(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') {
      el.setAttribute('class', value);
    } else if (key === 'text') {
      el.textContent = String(value);
    } else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'href') {
      // Only in-page routes are ever linked; refuse anything else outright.
      if (!String(value).startsWith('#')) throw new Error(`refusing href ${value}`);
      el.setAttribute('href', value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
}

function appendChildren(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Creates an HTML element: h('td', { class: 'x' }, 'text', otherNode). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  applyProps(el, props);
  appendChildren(el, children);
  return el;
}

/** Creates an SVG element. */
export function svg(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyProps(el, props);
  appendChildren(el, children);
  return el;
}

/** A fresh copy of a <template> of index.html. */
export function cloneTemplate(id) {
  return document.getElementById(id).content.cloneNode(true);
}

/** Shows a message in an alert/status element (empty text hides it via CSS). */
export function say(el, message) {
  if (el) el.textContent = message || '';
}

/** A mistake in what the user entered; `message` is meant for them (shown as text). */
export class UserError extends Error {
  constructor(message) {
    super(message);
    this.name = 'UserError';
  }
}

export const GENERIC_ERROR = 'Something went wrong in this page (the details are in the browser console). ' +
  'Reload the page and try again.';

/**
 * The text to show for a failure. API errors and input mistakes say what
 * happened; anything else is a bug in this page: it is logged with its stack
 * (console.error) and the user gets a generic message.
 */
export function errorMessage(error) {
  if ((error instanceof ApiError || error instanceof UserError) && error.message) return error.message;
  console.error(error);
  return GENERIC_ERROR;
}

/** Focuses `el` if it can take focus now; true when it has it. */
function tryFocus(el) {
  if (!el || !el.isConnected || el === document.body || typeof el.focus !== 'function' || el.matches(':disabled')) return false;
  el.focus();
  return document.activeElement === el;
}

/**
 * Puts focus back on `previous` after an operation that may have lost it (a
 * disabled button drops focus to <body>), or on the first focusable of
 * `fallback` (an element, a list, or a function returning either) when
 * `previous` cannot take it any more. Focus that the operation moved on
 * purpose (to a new heading, a dialog, a row) is left alone.
 */
export function restoreFocus(previous, fallback) {
  const now = document.activeElement;
  if (!previous || previous === document.body) return;
  if (now && now !== document.body && now !== previous && now.isConnected) return;
  if (now === previous && !previous.matches(':disabled')) return;
  if (tryFocus(previous)) return;
  const list = [typeof fallback === 'function' ? fallback() : fallback].flat();
  for (const el of list) if (tryFocus(el)) return;
}

/**
 * Runs fn while `buttons` are disabled, so a slow request cannot be sent twice.
 * Buttons that were already disabled stay disabled afterwards. Then
 * `settle()` may set the final state of the controls (e.g. a pager's buttons
 * for the page now shown), and focus goes back where it was (see restoreFocus;
 * `fallback` when that control is disabled now).
 */
export async function withBusy(buttons, fn, { settle, fallback } = {}) {
  const list = (Array.isArray(buttons) ? buttons : [buttons]).filter(Boolean);
  const previous = document.activeElement;
  const changed = list.filter((b) => !b.disabled);
  changed.forEach((b) => { b.disabled = true; b.setAttribute('aria-busy', 'true'); });
  try {
    return await fn();
  } finally {
    changed.forEach((b) => { b.disabled = false; b.removeAttribute('aria-busy'); });
    if (settle) settle();
    restoreFocus(previous, fallback);
  }
}

/**
 * Re-renders part of the page and keeps keyboard focus on "the same" control.
 * Row controls carry data-focus-key="<row id>:<action>"; when the old element is
 * replaced, focus moves to the new element with that key, else to another
 * control of the same row, else to `fallback`.
 */
export function preserveFocus(container, render, fallback) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.focusKey : undefined;
  render();
  if (!key || active.isConnected) return;
  const row = key.split(':')[0];
  const target = container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`) ||
    container.querySelector(`[data-focus-key^="${CSS.escape(row + ':')}"]`) || fallback;
  if (target) target.focus();
}

// ---- formatting ------------------------------------------------------------

const nf = new Intl.NumberFormat('en-US');

/** 1234 -> "1,234"; null -> "—". */
export function fmtNum(n) {
  return typeof n === 'number' && Number.isFinite(n) ? nf.format(n) : '—';
}

/** A limit: null or 0 mean "no limit". */
export function fmtLimit(n) {
  return typeof n === 'number' && n > 0 ? nf.format(n) : 'unlimited';
}

/** "2026-12-04T19:21:10.104295Z" -> "2026-12-04 19:21:10Z" (times stay UTC). */
export function fmtTime(iso) {
  if (!iso) return '—';
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z$/.exec(String(iso));
  return m ? `${m[1]} ${m[2]}Z` : String(iso);
}

/** A table cell with a time that may wrap between date and time, never inside them. */
export function timeCell(iso) {
  const [date, time] = fmtTime(iso).split(' ');
  return h('td', { class: 'time' }, h('span', { class: 'nowrap', text: date }), time ? ' ' : '',
    time ? h('span', { class: 'nowrap', text: time }) : null);
}

/**
 * Copies each column's header text into data-label of its body cells; on a
 * phone the CSS turns rows into cards and shows these labels.
 */
export function labelCells(table) {
  const labels = [...table.tHead.rows[0].cells].map((th) => th.textContent.trim());
  for (const row of table.tBodies[0].rows) {
    [...row.cells].forEach((td, i) => { if (labels[i] && td.colSpan === 1) td.dataset.label = labels[i]; });
  }
}

/** Milliseconds since the epoch of an RFC 3339 time (NaN when absent). */
export function parseTime(iso) {
  // Trim microseconds to milliseconds: Date.parse is only specified for the latter.
  return iso ? Date.parse(String(iso).replace(/(\.\d{3})\d+/, '$1')) : NaN;
}

/** "1 token" / "3 tokens". */
export function plural(n, word, many = `${word}s`) {
  return `${fmtNum(n)} ${n === 1 ? word : many}`;
}

/**
 * Reads an optional integer input: '' -> null, else an integer >= min.
 * Throws a UserError with a message naming the field otherwise.
 */
export function readInt(input, label, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}) {
  const raw = input.value.trim();
  if (raw === '' && !input.validity.badInput) return null;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${fmtNum(max)}`;
    throw new UserError(`${label} must be a whole number ${range}.`);
  }
  return Number(raw);
}
