// Response cache: purge one resource or every key with a prefix.

import { post, listProjects } from '../api.js';
import { cloneTemplate, say, withBusy, plural, errorMessage } from '../dom.js';
import { confirmAction } from '../dialogs.js';
import { projectDatalist } from './common.js';

// Clearer words for the purge endpoint's own error codes.
const CODE_MESSAGES = {
  cache_disabled: 'The response cache is turned off on this server (HTTP_CACHE_ENABLED=false): there is nothing to purge.',
  cache_unavailable: 'The cache backend is unavailable right now; nothing was purged. Try again later.',
};

export async function render(ctx) {
  ctx.setTitle('Cache');
  ctx.root.append(cloneTemplate('tpl-cache'));
  const $ = (sel) => ctx.root.querySelector(sel);
  const form = $('#cache-purge-form');
  const alert = form.querySelector('[role="alert"]');
  const result = $('#cache-result');
  const kind = () => form.querySelector('input[name="purge-kind"]:checked').value;

  // Only the chosen group of fields is shown and enabled.
  function syncKind() {
    for (const group of form.querySelectorAll('fieldset[data-kind]')) {
      const on = group.dataset.kind === kind();
      group.hidden = !on;
      group.disabled = !on;
    }
  }
  for (const radio of form.querySelectorAll('input[name="purge-kind"]')) radio.addEventListener('change', syncKind);
  syncKind();

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    say(alert, '');
    say(result, '');
    let body;
    if (kind() === 'prefix') {
      body = { prefix: $('#cache-prefix').value.trim() };
      if (body.prefix === '') {
        const ok = await confirmAction({
          title: 'Purge the whole cache?',
          message: 'An empty prefix drops every stored answer of every project.',
          ok: 'Purge everything',
        });
        if (!ok) return;
      }
    } else {
      body = { method: $('#cache-method').value, url: $('#cache-url').value.trim() };
      const project = $('#cache-project').value.trim();
      if (!body.url) return say(alert, 'Enter the URL of the resource, e.g. /v1/models.');
      if (project) body.project_id = project;
    }
    try {
      const { data } = await withBusy(form.querySelector('button[type="submit"]'), () => post('/manage/cache/purge', body));
      const deleted = typeof data?.deleted === 'number' ? data.deleted : 0;
      say(result, `Deleted ${plural(deleted, 'stored answer')}.`);
    } catch (e) {
      const message = CODE_MESSAGES[e.code] || errorMessage(e);
      if (ctx.isCurrent()) say(alert, message);
    }
  });

  // Project ids to pick from; the form works without them.
  const projects = await listProjects().catch(() => []);
  if (ctx.isCurrent()) projectDatalist($('#cache-projects'), projects);
}
