// Modal dialogs, all native <dialog> + showModal(): the browser traps focus and
// closes on Escape. We add: per-opening listeners (removed on close), errors
// inside the dialog, and focus back on the control that opened it.

import { say, withBusy } from './dom.js';

/**
 * Opens `dialog` modally. `setup(signal)` may add listeners with { signal };
 * they are removed when the dialog closes. Resolves with dialog.returnValue.
 */
function open(dialog, setup) {
  const opener = document.activeElement;
  const controller = new AbortController();
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
    setup(controller.signal);
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
 * Resolves true when saved, false when cancelled.
 */
export async function formDialog(id, { fill, save }) {
  const dialog = document.getElementById(id);
  const form = dialog.querySelector('form');
  const alert = dialog.querySelector('[role="alert"]');
  form.reset();
  if (fill) fill(dialog);
  const result = await open(dialog, (signal) => {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      say(alert, '');
      try {
        await withBusy(form.querySelector('[data-role="save"]'), () => save(form));
        if (dialog.open) dialog.close('saved');
      } catch (error) {
        say(alert, error.message);
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
      Promise.resolve(fill(dialog, signal)).catch((error) => {
        if (!signal.aborted) say(dialog.querySelector('[role="alert"]'), error.message);
      });
    });
  });
}
