// The Operator page: the venue's own routes under /api/v1/admin, sent with the operator key
// (x-operator-key, kept in this tab's session storage only): markets with halt and resume,
// withdrawals waiting for a second person's approval (approve, reject), the KYC review queue
// (approve, reject, ask for more, with the reviewer's name and a reason; a high-risk approval
// needs a second reviewer, as the venue enforces), each case's application and its documents
// (GET /admin/kyc/case, then GET /admin/kyc/document per file, decrypted by the venue: images
// shown as data: URLs, which the CSP allows; a PDF offered as a download), the wallet networks
// (GET /admin/wallets: deposits and withdrawals on or paused, confirmations, the hot wallet's
// balances; pause and resume with POST /admin/wallets/network), and announcements. Nothing here is reachable without the key: the venue refuses it.
// Invariants: the key never goes into a URL or local storage; every answer shown is the venue's.
import { API_PREFIX, ApiError, errorOf, REQUEST_TIMEOUT_MS } from "./api";
import type { App } from "./app";
import { el, money, price } from "./format";
import type { Row } from "./tables";

const KEY = "perpetua.operatorKey";

export async function admin<T>(verb: string, path: string, body?: object): Promise<T> {
  const key = sessionStorage.getItem(KEY) ?? "";
  if (!key) throw new ApiError(401, "Enter the operator key first.");
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  try {
    const response = await fetch(API_PREFIX + path, {
      method: verb, signal: controller.signal, body: body ? JSON.stringify(body) : undefined,
      headers: { accept: "application/json", "content-type": "application/json", "x-operator-key": key },
    });
    if (!response.ok) throw await errorOf(response);
    return (await response.json()) as T;
  } finally {
    clearTimeout(timer);
  }
}

function grid(id: string, head: string[], rows: HTMLTableRowElement[], empty: string): HTMLElement {
  if (!rows.length) return el("p", { class: "empty", id }, empty);
  return el("table", { class: "grid", id }, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, ...rows));
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function mountOperator(app: App): { show(): void } {
  const root = document.getElementById("operator-body")!;
  const keyInput = el("input", { id: "operator-key", type: "password", autocomplete: "off", spellcheck: "false" });
  const keyUse = el("button", { type: "button", class: "btn primary", id: "operator-use" }, "Use key");
  const keyForget = el("button", { type: "button", class: "btn", id: "operator-forget" }, "Forget");
  const out = el("p", { class: "form-out", id: "operator-out", "aria-live": "polite" });
  const markets = el("div", { id: "operator-markets" });
  const withdrawals = el("div", { id: "operator-withdrawals" });
  const networks = el("div", { id: "operator-networks" });
  const approver = el("input", { id: "operator-name", autocomplete: "off", value: "" });
  const kyc = el("div", { id: "operator-kyc" });
  const kycReason = el("input", { id: "operator-kyc-reason", autocomplete: "off", maxlength: "1000" });
  const caseView = el("section", { class: "card", id: "operator-case", "aria-live": "polite", hidden: "" });
  const title = el("input", { id: "announce-title", autocomplete: "off" });
  const content = el("input", { id: "announce-content", autocomplete: "off" });
  const link = el("input", { id: "announce-link", autocomplete: "off" });
  const urgent = el("input", { type: "checkbox", id: "announce-urgent" });
  const publish = el("button", { type: "button", class: "btn", id: "announce-go" }, "Publish");
  const labelled = (text: string, input: HTMLElement) => el("div", { class: "field" }, el("label", { for: input.id }, text), input);
  root.append(
    el("div", { class: "row" }, labelled("Operator key", keyInput), keyUse, keyForget), out,
    el("h2", {}, "Markets"), markets,
    el("h2", {}, "Wallet networks"), networks,
    el("h2", {}, "Withdrawals awaiting approval"), labelled("Your name (the reviewer or second approver)", approver), withdrawals,
    el("h2", {}, "KYC review queue"),
    el("div", { class: "bot-fields" }, labelled("Reason (needed to reject or ask for more)", kycReason)), kyc, caseView,
    el("section", { class: "card", "aria-labelledby": "h-announce" }, el("h2", { id: "h-announce" }, "Publish an announcement"),
      el("div", { class: "bot-fields" }, labelled("Title", title), labelled("Text", content), labelled("Link (path or https URL)", link)),
      el("div", { class: "row" }, el("label", { class: "inline" }, urgent, " Urgent"), publish)));

  const say = (text: string, ok: boolean) => {
    out.textContent = text;
    out.className = `form-out ${ok ? "up" : "down"}`;
  };
  const act = async (what: () => Promise<unknown>, done: string) => {
    try {
      await what();
      say(done, true);
    } catch (error) {
      say(message(error), false);
    }
    await load();
  };

  async function load(): Promise<void> {
    if (!sessionStorage.getItem(KEY)) {
      for (const box of [markets, networks, withdrawals, kyc]) box.replaceChildren(el("p", { class: "empty" }, "Enter the operator key."));
      return;
    }
    const [instruments, pending, queue, wallets] = await Promise.allSettled([
      admin<Row[]>("GET", "/admin/instruments"),
      admin<Row[]>("GET", "/admin/withdrawals?status=Approval"),
      admin<Row[]>("GET", "/admin/kyc/queue"),
      admin<Row[]>("GET", "/admin/wallets"),
    ]);
    if (wallets.status === "rejected") networks.replaceChildren(el("p", { class: "empty" }, message(wallets.reason)));
    else networks.replaceChildren(grid("operator-networks-table", ["Network", "Deposits", "Withdrawals", "Confirmations", "Hot wallet", "Hot balances", ""], wallets.value.map((n) => {
      const network = String(n.network);
      const toggle = (what: "deposits" | "withdrawals", on: boolean) => {
        const button = el("button", { type: "button", class: "btn small", "data-action": `${on ? "pause" : "resume"}-${what}` }, `${on ? "Pause" : "Resume"} ${what}`);
        button.addEventListener("click", () => void act(() => admin("POST", "/admin/wallets/network", { network, [what]: !on }),
          `${network}: ${what} ${on ? "paused" : "resumed"}`));
        return button;
      };
      const balances = Object.entries((n.hotBalances ?? {}) as Record<string, number>).map(([c, v]) => money(Number(v), c)).join(", ");
      return el("tr", { "data-network": network }, el("td", {}, network),
        el("td", { "data-field": "deposits" }, n.depositsEnabled ? "on" : "paused"), el("td", { "data-field": "withdrawals" }, n.withdrawalsEnabled ? "on" : "paused"),
        el("td", { class: "num" }, String(n.confirmations ?? "")), el("td", { class: "digest" }, String(n.hotAddress ?? "")), el("td", { class: "num" }, balances),
        el("td", { class: "actions" }, toggle("deposits", Boolean(n.depositsEnabled)), toggle("withdrawals", Boolean(n.withdrawalsEnabled))));
    }), "No wallet networks."));
    if (instruments.status === "rejected") {
      say(message(instruments.reason), false);
      markets.replaceChildren();
    } else {
      markets.replaceChildren(grid("operator-markets-table", ["Symbol", "Kind", "State", "Last", "Mark", ""], instruments.value.map((i) => {
        const tick = app.instruments.get(String(i.symbol))?.tickSize ?? 0.01;
        const open = i.state === "Open";
        const button = el("button", { type: "button", class: "btn small", "data-action": open ? "halt" : "resume" }, open ? "Halt" : "Resume");
        button.addEventListener("click", () => void act(() => admin("POST", "/admin/instrument/state", { symbol: i.symbol, state: open ? "Closed" : "Open" }), `${String(i.symbol)} ${open ? "halted" : "resumed"}`));
        return el("tr", { "data-symbol": String(i.symbol) }, el("td", {}, String(i.symbol)), el("td", {}, String(i.kind)),
          el("td", { "data-field": "state" }, String(i.state)), el("td", { class: "num" }, price(i.lastPrice as number, tick)),
          el("td", { class: "num" }, price(i.markPrice as number, tick)), el("td", {}, i.state === "Open" || i.state === "Closed" ? button : ""));
      }), "No markets."));
    }
    if (pending.status === "rejected") withdrawals.replaceChildren(el("p", { class: "empty" }, message(pending.reason)));
    else withdrawals.replaceChildren(grid("operator-withdrawals-table", ["Requested", "Account", "Asset", "Network", "Amount", "Address", ""], pending.value.map((w) => {
      const approve = el("button", { type: "button", class: "btn small primary", "data-action": "approve" }, "Approve");
      const reject = el("button", { type: "button", class: "btn small", "data-action": "reject" }, "Reject");
      approve.addEventListener("click", () => void act(() => admin("POST", "/admin/withdrawal/approve", { withdrawalId: w.transactID, operator: approver.value.trim() }), "Withdrawal approved"));
      reject.addEventListener("click", () => void act(() => admin("POST", "/admin/withdrawal/reject", { withdrawalId: w.transactID }), "Withdrawal rejected"));
      return el("tr", { "data-transact": String(w.transactID) }, el("td", {}, String(w.transactTime ?? "").replace("T", " ").slice(0, 19)), el("td", { class: "num" }, String(w.account)),
        el("td", {}, String(w.currency)), el("td", {}, String(w.network ?? "")), el("td", { class: "num" }, money(-Number(w.amount ?? 0), String(w.currency))),
        el("td", { class: "digest" }, String(w.address ?? "")), el("td", { class: "actions" }, approve, reject));
    }), "No withdrawals awaiting approval."));
    if (queue.status === "rejected") kyc.replaceChildren(el("p", { class: "empty" }, message(queue.reason)));
    else kyc.replaceChildren(grid("operator-kyc-table", ["Case", "Account", "Kind", "Status", "Risk", "Target level", "First reviewer", ""], queue.value.map((c) => {
      const decide = (decision: string, label: string) => {
        const button = el("button", { type: "button", class: `btn small${decision === "approve" ? " primary" : ""}`, "data-action": decision }, label);
        button.addEventListener("click", () => void act(async () => {
          await admin("POST", "/admin/kyc/decide", { caseId: c.id, reviewer: approver.value.trim(), decision, reason: kycReason.value.trim() });
          caseView.hidden = true;
        },
          `Case ${String(c.id)}: ${decision} recorded`));
        return button;
      };
      const kind = String(c.kind);
      const review = el("button", { type: "button", class: "btn small", "data-action": "review" }, "Review");
      review.addEventListener("click", () => void openCase(Number(c.id)));
      const decisions = kind === "sanctions" ? [decide("confirm", "Confirm hit"), decide("clear", "Clear")] : [decide("approve", "Approve"), decide("reject", "Reject"), decide("more", "Ask for more")];
      const actions = [review, ...decisions];
      return el("tr", { "data-case": String(c.id), "data-account": String(c.account) },
        el("td", { class: "num" }, String(c.id)), el("td", { class: "num" }, String(c.account)), el("td", {}, kind), el("td", { "data-field": "status" }, String(c.status)),
        el("td", {}, String(c.risk ?? "")), el("td", { class: "num" }, String(c.targetLevel ?? "")), el("td", {}, String(c.firstReviewer ?? "")),
        el("td", { class: "actions" }, ...actions));
    }), "No cases waiting."));
  }

  /** One case: what the applicant declared and the documents they sent, each opened by the venue. */
  async function openCase(id: number): Promise<void> {
    caseView.hidden = false;
    caseView.replaceChildren(el("p", { class: "muted" }, `Loading case ${id}…`));
    let found: Row;
    try {
      found = await admin<Row>("GET", `/admin/kyc/case?id=${id}`);
    } catch (error) {
      caseView.replaceChildren(el("p", { class: "down" }, message(error)));
      return;
    }
    const application = (found.application ?? {}) as Record<string, unknown>;
    const docs = (found.documents ?? []) as Row[];
    const shown = (v: unknown) => (v === null || v === undefined || v === "" ? "-" : typeof v === "object" ? JSON.stringify(v) : String(v));
    const facts: [string, string][] = [["Case", String(found.id)], ["Account", String(found.account)], ["Kind", String(found.kind)],
      ["Status", String(found.status)], ["Risk", shown(found.risk)], ["Target level", shown(found.targetLevel)],
      ...Object.entries(application).map(([k, v]): [string, string] => [k, shown(v)])];
    const files = el("div", { class: "kyc-docs", id: "operator-case-docs" });
    caseView.replaceChildren(el("h2", { id: "h-case" }, `Case ${String(found.id)}: account ${String(found.account)}`),
      el("dl", { class: "spec", id: "operator-case-facts" }, ...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-case-field": k }, v)])),
      el("h3", {}, `Documents (${docs.length})`), docs.length ? files : el("p", { class: "empty" }, "No documents."));
    caseView.setAttribute("aria-labelledby", "h-case");
    for (const doc of docs) {
      const figure = el("figure", { class: "kyc-doc", "data-doc": String(doc.id), "data-kind": String(doc.kind) },
        el("figcaption", {}, `${String(doc.kind)} · ${String(doc.contentType)} · ${Math.ceil(Number(doc.size ?? 0) / 1024)} KiB`));
      files.append(figure);
      try {
        const file = await admin<Row>("GET", `/admin/kyc/document?id=${encodeURIComponent(String(doc.id))}`);
        const type = String(file.contentType);
        if (type.startsWith("image/")) {
          figure.append(el("img", { src: `data:${type};base64,${String(file.data)}`, alt: `${String(doc.kind)} of account ${String(found.account)}` }));
        } else {
          const bytes = Uint8Array.from(atob(String(file.data)), (ch) => ch.charCodeAt(0));
          const url = URL.createObjectURL(new Blob([bytes], { type }));
          figure.append(el("a", { href: url, download: `${String(doc.kind)}-${String(found.account)}.pdf`, class: "btn small" }, "Download PDF"));
        }
      } catch (error) {
        figure.append(el("p", { class: "down" }, message(error)));
      }
    }
  }

  keyUse.addEventListener("click", () => {
    sessionStorage.setItem(KEY, keyInput.value.trim());
    keyInput.value = "";
    say("Operator key loaded for this tab.", true);
    void load();
  });
  keyForget.addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    say("Operator key forgotten.", true);
    void load();
  });
  publish.addEventListener("click", () => void act(() => admin("POST", "/admin/announcement", { title: title.value.trim(), content: content.value.trim(), link: link.value.trim(), urgent: urgent.checked }), "Announcement published"));
  return { show: () => void load() };
}
