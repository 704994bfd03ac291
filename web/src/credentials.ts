// Who the terminal acts as: the browser session (an HttpOnly cookie the page never sees, and
// its CSRF token kept here), or an API key a trader loads by hand (kept in this tab's session
// storage; nothing else stores it; closing the tab forgets it). A loaded key wins over the
// session; with neither, the terminal shows public data only.
export interface Credentials {
  key: string;
  secret: string;
}

const STORAGE_KEY = "perpetua.apiKey";
type Listener = (credentials: Credentials | null) => void;
const listeners: Listener[] = [];

export function loadCredentials(): Credentials | null {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const parsed = JSON.parse(raw) as Partial<Credentials>;
    if (typeof parsed.key === "string" && typeof parsed.secret === "string" && parsed.key && parsed.secret) {
      return { key: parsed.key, secret: parsed.secret };
    }
  } catch {
    // unreadable storage means no key
  }
  return null;
}

export function saveCredentials(credentials: Credentials | null): void {
  if (credentials) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
  else sessionStorage.removeItem(STORAGE_KEY);
  for (const listener of listeners) listener(credentials);
}

export function onCredentials(listener: Listener): void {
  listeners.push(listener);
}

// The browser session's CSRF token (the session itself is an HttpOnly cookie the page never
// sees): sent as x-csrf-token on every state-changing request made with the cookie.
const CSRF_KEY = "perpetua.csrf";

export function loadCsrf(): string {
  return sessionStorage.getItem(CSRF_KEY) ?? "";
}

/**
 * Saves the session's CSRF token ("" when signed out). A changed token means a new session
 * (signed in, or rotated at a privilege change): the listeners hear it, so the WebSocket signs
 * in again with the new cookie.
 */
export function saveCsrf(token: string): void {
  const before = loadCsrf();
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else {
    sessionStorage.removeItem(CSRF_KEY);
    sessionStorage.removeItem(PREFS_KEY);
  }
  if (token !== before) for (const listener of listeners) listener(loadCredentials());
}

/** Signed in (a session) or a key loaded: private data and trading are available. */
export function hasIdentity(): boolean {
  return loadCredentials() !== null || loadCsrf() !== "";
}

// The signed-in account's preferences (GET /user's `preferences`), kept for this tab so the
// terminal can apply them at the next load before the account answers.
const PREFS_KEY = "perpetua.preferences";

export function loadPreferences(): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(sessionStorage.getItem(PREFS_KEY) ?? "{}");
    return parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export function savePreferences(prefs: Record<string, unknown>): void {
  sessionStorage.setItem(PREFS_KEY, JSON.stringify(prefs));
}
