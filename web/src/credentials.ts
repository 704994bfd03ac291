// The API key the terminal signs with, kept in this tab's session storage until accounts with
// session cookies land. Nothing else stores it; closing the tab forgets it.
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

export function saveCsrf(token: string): void {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}
