// REST client for /api/v1: as the browser session (cookie and CSRF token), or signed
// BitMEX-style with a loaded API key in the browser with WebCrypto:
// hex(HMAC-SHA256(secret, VERB + path-with-query + expires + body)).
// Errors come back as ApiError carrying the venue's own message (BitMEX's {error:{message,name}}).
import { loadCredentials, loadCsrf } from "./credentials";

export const API_PREFIX = "/api/v1";
export const SIGNATURE_TTL_S = 60; // how long a signed request stays valid
export const REQUEST_TIMEOUT_MS = 15_000;

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly name_: string = "HTTPError") {
    super(message);
  }
}

const encoder = new TextEncoder();
const keyCache = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (!key) {
    if (!globalThis.crypto?.subtle) {
      throw new ApiError(0, "This page is not a secure context (https or localhost), so the browser offers no WebCrypto to sign requests with.");
    }
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    keyCache.set(secret, key);
  }
  return key;
}

export async function sign(secret: string, verb: string, path: string, expires: number, body: string): Promise<string> {
  const key = await hmacKey(secret);
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(verb.toUpperCase() + path + String(expires) + body));
  return Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function expiresIn(seconds: number = SIGNATURE_TTL_S): number {
  return Math.floor(Date.now() / 1000) + seconds;
}

export type Query = Record<string, string | number | boolean | undefined>;

function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export async function errorOf(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`;
  let name = "HTTPError";
  try {
    const body = await response.json();
    if (body?.error?.message) {
      message = String(body.error.message);
      name = String(body.error.name ?? name);
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, name);
}

/**
 * `signed`: as the trader (default: when signed in or a key is loaded): signed with the loaded
 * API key if there is one, else as the browser session (its cookie goes by itself; state
 * changes carry the CSRF token). `session`: always as the browser session, for the account
 * routes a key may not use.
 */
export async function request<T>(verb: string, path: string, options: { query?: Query; body?: object; signed?: boolean; session?: boolean } = {}): Promise<T> {
  const target = withQuery(API_PREFIX + path, options.query);
  const body = options.body ? JSON.stringify(options.body) : "";
  const headers: Record<string, string> = { accept: "application/json" };
  if (body) headers["content-type"] = "application/json";
  const credentials = options.session ? null : loadCredentials();
  const asTrader = options.signed ?? (credentials !== null || loadCsrf() !== "");
  if (options.session || (asTrader && !credentials)) {
    if (!options.session && !loadCsrf()) throw new ApiError(401, "Sign in (Account page) or load an API key first (top right).", "AuthError");
    if (verb !== "GET" && loadCsrf()) headers["x-csrf-token"] = loadCsrf();
  } else if (asTrader && credentials) {
    const expires = expiresIn();
    headers["api-key"] = credentials.key;
    headers["api-expires"] = String(expires);
    headers["api-signature"] = await sign(credentials.secret, verb, target, expires, body);
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response: Response;
  try {
    response = await fetch(target, { method: verb, headers, body: body || undefined, signal: controller.signal });
  } catch (error) {
    throw new ApiError(0, controller.signal.aborted ? `No answer from the venue within ${REQUEST_TIMEOUT_MS / 1000} s` : `Network error: ${String(error)}`);
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as T;
}

/** A multipart form (a file upload) sent as the browser session, with the CSRF token. */
export async function sessionUpload<T>(path: string, form: FormData): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (loadCsrf()) headers["x-csrf-token"] = loadCsrf();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response: Response;
  try {
    response = await fetch(API_PREFIX + path, { method: "POST", headers, body: form, signal: controller.signal });
  } catch (error) {
    throw new ApiError(0, controller.signal.aborted ? `No answer from the venue within ${REQUEST_TIMEOUT_MS / 1000} s` : `Network error: ${String(error)}`);
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as T;
}

export const get = <T>(path: string, query?: Query, signed?: boolean) => request<T>("GET", path, { query, signed });
export const post = <T>(path: string, body: object) => request<T>("POST", path, { body, signed: true });
export const put = <T>(path: string, body: object) => request<T>("PUT", path, { body, signed: true });
export const del = <T>(path: string, body: object) => request<T>("DELETE", path, { body, signed: true });
export const sessionGet = <T>(path: string, query?: Query) => request<T>("GET", path, { query, session: true });
export const sessionPost = <T>(path: string, body: object) => request<T>("POST", path, { body, session: true });
export const sessionDelete = <T>(path: string, body: object) => request<T>("DELETE", path, { body, session: true });
