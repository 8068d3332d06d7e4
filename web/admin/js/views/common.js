// Helpers shared by the list views.

import { say } from '../dom.js';

/**
 * Returns run(fn) for the row actions of a table. fn resolves to a success
 * message (or '' when the user cancelled); after a success `reload()` runs and
 * the message is shown in `status`, a failure goes to `error`. Row buttons are
 * not disabled (a closing dialog returns focus to its opener, which must stay
 * focusable); a flag stops a second action while one runs.
 */
export function actionRunner(ctx, status, error, reload) {
  let busy = false;
  return async function run(fn) {
    if (busy) return;
    busy = true;
    say(status, '');
    say(error, '');
    try {
      const message = await fn();
      if (message && ctx.isCurrent()) {
        await reload();
        say(status, message);
      }
    } catch (e) {
      if (ctx.isCurrent()) say(error, e.message);
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
