// Modal dialogs, all native <dialog> + showModal(): the browser traps focus and
// closes on Escape. We add: per-opening listeners (removed on close), errors
// inside the dialog, and focus back on the control that opened it.

import { say, errorMessage, restoreFocus } from './dom.js';

// dialog -> number of its current opening. Async work started by one opening
// (a save still in flight) compares its number before touching the dialog, so
// it never closes or writes into a later opening of the same dialog.
const openings = new WeakMap();

/**
 * Opens `dialog` modally. `setup(signal, isCurrent)` may add listeners with
 * { signal }; they are removed when the dialog closes. isCurrent() is true
 * while this opening is the one shown. Resolves with dialog.returnValue.
 */
function open(dialog, setup) {
  const opener = document.activeElement;
  const controller = new AbortController();
  const opening = (openings.get(dialog) ?? 0) + 1;
  openings.set(dialog, opening);
  say(dialog.querySelector('[role="alert"]'), '');
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      controller.abort();
      // Chromium restores focus itself, but not every browser does.
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(dialog.returnValue);
    }, { once: true });
    for (const cancel of dialog.querySelectorAll('[data-role="cancel"]')) {
      cancel.addEventListener('click', () => dialog.close(''), { signal: controller.signal });
    }
    setup(controller.signal, () => openings.get(dialog) === opening && dialog.open);
    dialog.returnValue = '';
    dialog.showModal();
  });
}

/** Closes every open dialog (used on sign-out). */
export function closeAllDialogs() {
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close('');
}

/**
 * The shared confirmation dialog. Resolves true only when OK was pressed;
 * focus starts on Cancel so a stray Enter does not confirm a destructive action.
 */
export async function confirmAction({ title = 'Are you sure?', message = '', ok = 'OK' } = {}) {
  const dialog = document.getElementById('confirm-dialog');
  dialog.querySelector('#confirm-title').textContent = title;
  dialog.querySelector('#confirm-message').textContent = message;
  const okButton = dialog.querySelector('#confirm-ok');
  okButton.textContent = ok;
  const result = await open(dialog, (signal) => {
    okButton.addEventListener('click', () => dialog.close('ok'), { signal });
    dialog.querySelector('#confirm-cancel').addEventListener('click', () => dialog.close(''), { signal });
    queueMicrotask(() => dialog.querySelector('#confirm-cancel').focus());
  });
  return result === 'ok';
}

/**
 * A dialog holding a form. `fill(dialog)` prepares the fields; on submit
 * `save(form)` runs (save button disabled meanwhile); when it resolves the
 * dialog closes, when it throws the message is shown in the dialog's alert.
 * Resolves true when saved, false when cancelled. A save that is still
 * running when its dialog is closed (Escape, Cancel) no longer touches the
 * dialog: not a later opening's button, alert or result.
 */
export async function formDialog(id, { fill, save }) {
  const dialog = document.getElementById(id);
  const form = dialog.querySelector('form');
  const alert = dialog.querySelector('[role="alert"]');
  const saveButton = form.querySelector('[data-role="save"]');
  form.reset();
  // A save of an earlier opening may have left the button disabled.
  saveButton.disabled = false;
  saveButton.removeAttribute('aria-busy');
  if (fill) fill(dialog);
  const result = await open(dialog, (signal, isCurrent) => {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (saveButton.disabled) return;
      say(alert, '');
      const previous = document.activeElement;
      saveButton.disabled = true;
      saveButton.setAttribute('aria-busy', 'true');
      let saved = false;
      try {
        await save(form);
        saved = true;
      } catch (error) {
        const message = errorMessage(error); // logs a bug even when nobody sees the dialog any more
        if (isCurrent()) say(alert, message);
      } finally {
        if (isCurrent()) {
          saveButton.disabled = false;
          saveButton.removeAttribute('aria-busy');
          if (saved) dialog.close('saved');
          else restoreFocus(previous, saveButton);
        }
      }
    }, { signal });
    queueMicrotask(() => {
      const first = form.querySelector('input, select');
      if (first) { first.focus(); if (first.select) first.select(); }
    });
  });
  // Do not leave typed secrets (a new API key) in a closed dialog.
  form.reset();
  return result === 'saved';
}

/**
 * A read-only dialog whose content `fill(dialog, signal)` renders (it may be
 * async and keep rendering after the dialog opened). Resolves on close.
 */
export async function infoDialog(id, fill) {
  const dialog = document.getElementById(id);
  await open(dialog, (signal) => {
    queueMicrotask(() => {
      dialog.querySelector('[data-role="cancel"]').focus();
      Promise.resolve().then(() => fill(dialog, signal)).catch((error) => {
        const message = errorMessage(error);
        if (!signal.aborted) say(dialog.querySelector('[role="alert"]'), message);
      });
    });
  });
}
