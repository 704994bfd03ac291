// The venue's announcements (BitMEX `announcement` table, published by the operator) as a
// banner under the top bar: live from the WebSocket (partial, insert on publish, delete on
// withdrawal); with an API key loaded, GET /announcement/urgent marks the urgent ones, which
// come first. A trader dismisses one by id (remembered in this browser's local storage).
// Invariants: at most ANNOUNCEMENTS_SHOWN are shown, newest first; text is always textContent;
// a link is followed only when it is a path on this site or an http(s) URL.
import { get } from "./api";
import type { App } from "./app";
import { hasIdentity, onCredentials } from "./credentials";
import { el } from "./format";
import type { Row } from "./tables";

export const ANNOUNCEMENTS_SHOWN = 3;
export const DISMISSED_MAX = 200;
const DISMISSED_KEY = "perpetua.dismissedAnnouncements";

function dismissed(): Set<number> {
  try {
    const list = JSON.parse(localStorage.getItem(DISMISSED_KEY) ?? "[]") as unknown;
    return new Set(Array.isArray(list) ? list.map(Number) : []);
  } catch {
    return new Set();
  }
}

function dismiss(id: number): void {
  const ids = [...dismissed(), id].slice(-DISMISSED_MAX);
  localStorage.setItem(DISMISSED_KEY, JSON.stringify(ids));
}

export function safeLink(link: unknown): string {
  const text = String(link ?? "").trim();
  if (/^\/(?!\/)/.test(text) || /^https?:\/\//i.test(text)) return text;
  return "";
}

export function mountAnnouncements(app: App): void {
  const banner = document.getElementById("announcements")!;
  let urgent = new Set<number>();

  function render(): void {
    const gone = dismissed();
    const rows = app.rt.table("announcement").rows
      .filter((r) => !gone.has(Number(r.id)))
      .sort((a, b) => Number(urgent.has(Number(b.id))) - Number(urgent.has(Number(a.id))) || Number(b.id) - Number(a.id))
      .slice(0, ANNOUNCEMENTS_SHOWN);
    banner.replaceChildren(...rows.map((r: Row) => {
      const id = Number(r.id);
      const isUrgent = urgent.has(id);
      const close = el("button", { type: "button", class: "btn small ghost", "aria-label": `Dismiss: ${String(r.title)}`, "data-action": "dismiss" }, "×");
      close.addEventListener("click", () => {
        dismiss(id);
        render();
      });
      const body = el("span", { class: "note-text" }, el("strong", {}, isUrgent ? `Urgent: ${String(r.title)}` : String(r.title)));
      if (r.content) body.append(" ", el("span", { class: "note-content" }, String(r.content)));
      const href = safeLink(r.link);
      if (href) {
        const a = el("a", { href, rel: "noopener noreferrer" }, "More");
        if (!href.startsWith("/")) a.target = "_blank";
        body.append(" ", a);
      }
      return el("div", { class: `note${isUrgent ? " urgent" : ""}`, "data-announcement": String(id) },
        el("span", { class: "note-date muted" }, String(r.date ?? "").slice(0, 10)), body, close);
    }));
  }

  let fetching = false;
  async function loadUrgent(): Promise<void> {
    if (!hasIdentity() || fetching) {
      if (!hasIdentity()) urgent = new Set();
      return render();
    }
    fetching = true;
    try {
      const rows = await get<Row[]>("/announcement/urgent", undefined, true);
      urgent = new Set(rows.map((r) => Number(r.id)));
    } catch {
      // a key without access, or the venue away: nothing is urgent then
    } finally {
      fetching = false;
    }
    render();
  }

  app.rt.subscribe(["announcement"]);
  app.rt.on("announcement", () => {
    render();
    void loadUrgent();
  });
  onCredentials(() => void loadUrgent());
}
