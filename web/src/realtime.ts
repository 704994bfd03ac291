// The /realtime WebSocket: subscribes to the tables the page needs, authenticates with
// authKeyExpires when a key is loaded, else with the browser session's cookie (authSession:
// the cookie went with the handshake; the venue checks the page's Origin), and reconnects after a drop (backoff from
// RECONNECT_DELAY_MIN_MS doubling to RECONNECT_DELAY_MAX_MS) with every subscription renewed;
// the partials that follow rebuild each table, so nothing stale survives a reconnect.
// State is one of: connecting, live, reconnecting (visible in the top bar).
import { expiresIn, sign } from "./api";
import { loadCredentials, loadCsrf, saveCsrf } from "./credentials";
import { Table, type TableMessage } from "./tables";

export const RECONNECT_DELAY_MIN_MS = 500;
export const RECONNECT_DELAY_MAX_MS = 8_000;
export const PING_INTERVAL_MS = 20_000;
export const PRIVATE_TOPICS = ["order", "position", "margin", "execution", "wallet", "bot"];

export type SocketState = "connecting" | "live" | "reconnecting";
type TableListener = (table: Table, message: TableMessage) => void;

export class Realtime {
  readonly tables = new Map<string, Table>();
  state: SocketState = "connecting";
  private socket: WebSocket | null = null;
  private publicTopics = new Set<string>();
  private authed = false;
  private delayMs = RECONNECT_DELAY_MIN_MS;
  private listeners = new Map<string, TableListener[]>();
  private stateListeners: ((state: SocketState) => void)[] = [];
  private errorListeners: ((message: string) => void)[] = [];
  private pingTimer = 0;
  connects = 0;

  constructor(private readonly url: string) {}

  table(name: string): Table {
    let table = this.tables.get(name);
    if (!table) {
      table = new Table(name);
      this.tables.set(name, table);
    }
    return table;
  }

  on(name: string, listener: TableListener): void {
    const list = this.listeners.get(name) ?? [];
    list.push(listener);
    this.listeners.set(name, list);
  }

  onState(listener: (state: SocketState) => void): void {
    this.stateListeners.push(listener);
  }

  onError(listener: (message: string) => void): void {
    this.errorListeners.push(listener);
  }

  connect(): void {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.connects += 1;
      this.delayMs = RECONNECT_DELAY_MIN_MS;
      void this.afterOpen(socket);
    };
    socket.onmessage = (event) => this.receive(String(event.data));
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      window.clearInterval(this.pingTimer);
      this.setState("reconnecting");
      const delay = this.delayMs;
      this.delayMs = Math.min(this.delayMs * 2, RECONNECT_DELAY_MAX_MS);
      window.setTimeout(() => this.connect(), delay);
    };
  }

  private async afterOpen(socket: WebSocket): Promise<void> {
    this.authed = false;
    const credentials = loadCredentials();
    if (credentials) {
      const expires = expiresIn();
      const signature = await sign(credentials.secret, "GET", "/realtime", expires, "");
      socket.send(JSON.stringify({ op: "authKeyExpires", args: [credentials.key, expires, signature] }));
    } else if (loadCsrf()) {
      socket.send(JSON.stringify({ op: "authSession" }));
    }
    if (this.publicTopics.size) {
      socket.send(JSON.stringify({ op: "subscribe", args: [...this.publicTopics] }));
    }
    this.pingTimer = window.setInterval(() => {
      if (socket.readyState === WebSocket.OPEN) socket.send("ping");
    }, PING_INTERVAL_MS);
    this.setState("live");
  }

  /** Re-authenticates (a new key or session, or none): simplest and exact is a fresh connection. */
  reauthenticate(): void {
    for (const name of PRIVATE_TOPICS) this.table(name).clear();
    const socket = this.socket;
    if (socket) {
      this.socket = null;
      socket.onclose = null;
      socket.close();
    }
    this.connect();
  }

  subscribe(topics: string[]): void {
    const fresh = topics.filter((t) => !this.publicTopics.has(t));
    for (const topic of fresh) this.publicTopics.add(topic);
    if (fresh.length && this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ op: "subscribe", args: fresh }));
    }
  }

  unsubscribe(topics: string[]): void {
    const gone = topics.filter((t) => this.publicTopics.delete(t));
    if (gone.length && this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ op: "unsubscribe", args: gone }));
    }
  }

  /** Drops the connection as a network failure would (used by the reconnect test hook). */
  drop(): void {
    this.socket?.close();
  }

  private setState(state: SocketState): void {
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }

  private receive(text: string): void {
    if (text === "pong") return;
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const request = message.request as { op?: string } | undefined;
    if (message.error) {
      // the session ended (expired, revoked, signed out elsewhere): stop presenting it
      if (request?.op === "authSession" && message.status === 401) saveCsrf("");
      for (const listener of this.errorListeners) listener(String(message.error));
      return;
    }
    if (message.success === true && request && (request.op === "authKeyExpires" || request.op === "authKey" || request.op === "authSession")) {
      this.authed = true;
      this.socket?.send(JSON.stringify({ op: "subscribe", args: PRIVATE_TOPICS }));
      return;
    }
    if (typeof message.table === "string" && typeof message.action === "string") {
      const tableMessage = message as unknown as TableMessage;
      const table = this.table(tableMessage.table);
      table.apply(tableMessage);
      for (const listener of this.listeners.get(table.name) ?? []) listener(table, tableMessage);
    }
  }

  get authenticated(): boolean {
    return this.authed;
  }
}
