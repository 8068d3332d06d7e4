// Helpers shared by the list views.

import { say, errorMessage } from '../dom.js';

/**
 * Returns run(fn) for the row actions of a table. fn resolves to a success
 * message (or '' when the user cancelled); after a success `reload()` runs and
 * the message is shown in `status`, a failure goes to `error`. When the action
 * worked but the reload failed, both show: the success (so nobody repeats the
 * action) and why the list may be out of date. Row buttons are not disabled (a
 * closing dialog returns focus to its opener, which must stay focusable); a
 * flag stops a second action while one runs.
 */
export function actionRunner(ctx, status, error, reload) {
  let busy = false;
  return async function run(fn) {
    if (busy) return;
    busy = true;
    say(status, '');
    say(error, '');
    try {
      let message;
      try {
        message = await fn();
      } catch (e) {
        const text = errorMessage(e); // a bug is logged even if the view is gone
        if (ctx.isCurrent()) say(error, text);
        return;
      }
      if (!message || !ctx.isCurrent()) return;
      let reloadError = '';
      try {
        await reload();
      } catch (e) {
        reloadError = errorMessage(e);
      }
      if (!ctx.isCurrent()) return;
      say(status, message);
      if (reloadError) say(error, `The list could not be reloaded: ${reloadError}`);
    } finally {
      busy = false;
    }
  };
}

/** Fills a <select> with projects (keeps `extra` options first). */
export function projectOptions(select, projects, { selected = '', markInactive = false } = {}) {
  const options = projects.map((p) => {
    const option = document.createElement('option');
    option.value = p.id;
    option.textContent = markInactive && !p.is_active ? `${p.name} (inactive)` : p.name;
    if (markInactive && !p.is_active) option.disabled = true;
    return option;
  });
  select.append(...options);
  select.value = selected;
}

/** Fills a <datalist> with project ids, labelled with their names. */
export function projectDatalist(datalist, projects) {
  datalist.replaceChildren(...projects.map((p) => {
    const option = document.createElement('option');
    option.value = p.id;
    option.label = p.name;
    return option;
  }));
}
