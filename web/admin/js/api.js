// The management API client. The management token lives only in
// sessionStorage (this tab, gone when it closes) and only ever travels in the
// Authorization header: never in a URL, a cookie or localStorage.

const TOKEN_KEY = 'llmproxy.managementToken';

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: behave as signed out
  }
}

/** Throws (a DOMException) when the browser blocks storage for this page. */
export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // nothing stored
  }
}

/** An API failure; `message` is safe to show (as text). status 0 = network. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

let unauthorizedHandler = () => {};

/** Registers what happens when the server rejects the stored token (401). */
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

/** A header value must be visible ASCII, else fetch() itself throws. */
export function isSendableToken(token) {
  return /^[\x21-\x7e]+$/.test(token);
}

/**
 * `path` ("/manage/...", "/health") resolved against the parent of this page's directory, so the UI keeps
 * working when a reverse proxy publishes the server under a prefix (https://host/llm/admin/ calls
 * https://host/llm/manage/...).
 */
function serverUrl(path) {
  return new URL(`..${path}`, document.baseURI).href;
}

function buildUrl(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const qs = params.toString();
  return qs ? `${serverUrl(path)}?${qs}` : serverUrl(path);
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Calls /manage. Options: query (empty values dropped), body (sent as JSON),
 * token (validate this token instead of the stored one; a 401 then does not
 * sign out). Resolves to { data, headers, status }; rejects with ApiError.
 */
export async function request(method, path, { query, body, token } = {}) {
  const bearer = token ?? getToken();
  const headers = { Accept: 'application/json', Authorization: `Bearer ${bearer}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(buildUrl(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
  } catch {
    throw new ApiError(0, 'network', 'Could not reach the server. Check the connection and try again.');
  }
  const data = response.status === 204 ? null : await readBody(response);
  if (!response.ok) {
    const message = data && typeof data.error === 'string' && data.error
      ? data.error
      : `The server answered ${response.status} ${response.statusText}.`.replace(' .', '.');
    const error = new ApiError(response.status, (data && data.code) || `http_${response.status}`, message);
    if (response.status === 401 && token === undefined) unauthorizedHandler(error);
    throw error;
  }
  return { data, headers: response.headers, status: response.status };
}

export const get = (path, query) => request('GET', path, { query });
export const post = (path, body) => request('POST', path, { body });
export const patch = (path, body) => request('PATCH', path, { body });
export const del = (path) => request('DELETE', path);

/**
 * Path segment for an id from the API (ids are UUIDs, but never trust that).
 * encodeURIComponent leaves "." alone, and percent-encoding it would not help:
 * the URL parser (new URL, fetch) treats "%2E%2E" exactly like "..". So an id
 * that would form a dot segment (or an empty one, which would hit the list
 * endpoint) is refused outright; any other dots are harmless inside a segment.
 */
export function seg(id) {
  const segment = encodeURIComponent(String(id ?? ''));
  if (segment === '' || segment === '.' || segment === '..') {
    throw new Error(`refusing ${JSON.stringify(String(id ?? ''))} as a path segment`);
  }
  return segment;
}

/** Page facts from the X-* headers of a paginated list. */
export function pageInfo(headers) {
  const num = (name, fallback) => {
    const v = Number(headers.get(name));
    return Number.isFinite(v) && headers.get(name) !== null ? v : fallback;
  };
  return {
    total: num('X-Total-Count', 0),
    page: num('X-Page', 1),
    pageSize: num('X-Page-Size', 20),
    totalPages: num('X-Total-Pages', 1),
  };
}

/** GET /health: public, and its body matters even on 503 (database down). */
export async function getHealth() {
  let response;
  try {
    response = await fetch(serverUrl('/health'), { cache: 'no-store', credentials: 'omit', redirect: 'error' });
  } catch {
    throw new ApiError(0, 'network', 'Could not reach the server.');
  }
  const data = await readBody(response);
  if (!data || typeof data !== 'object') {
    throw new ApiError(response.status, `http_${response.status}`, `Health check answered ${response.status}.`);
  }
  return { data, status: response.status };
}

/** Every project (unpaged list), for names in selects and tables. */
export async function listProjects() {
  const { data } = await get('/manage/projects');
  return Array.isArray(data) ? data : [];
}
