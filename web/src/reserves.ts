// The Proof of Reserves page (docs/proof-of-reserves.md): the published proofs
// (GET /porl/snapshots), the latest solvency report (reserves / liabilities per currency), and
// the trader's own check, done in this browser with BitMEX's method: GET /porl/nonce gives the
// account's sub-nonce for the latest proof; the proof file is downloaded as published and
//   every node:  digest = sha256(left_digest || u64le(left_value) || right_digest || u64le(right_value)),
//                value = left_value + right_value
//   own leaves:  digest = HMAC-SHA256(sub_nonce, u64le(value) || u64le(leaf_index))
// are recomputed with WebCrypto; the leaves the nonce opens add up to the trader's liability.
// Invariants: values are unsigned 64-bit (BigInt, never a float); the nonce is shown only on
// request and never stored; a check reports the first line that does not hold.
import { ApiError, get } from "./api";
import { currencyInfo } from "./contracts";
import { el } from "./format";
import type { Row } from "./tables";

export const HEIGHT_PREFIX = "block_height:";
export const HASH_BATCH = 512; // digests computed concurrently while checking a file
const U64_MAX = (1n << 64n) - 1n;

export interface ProofNode {
  digest: Uint8Array;
  value: bigint;
  line: number; // 1-based line of the file
}

export interface ProofCheck {
  height: number;
  nodes: number;
  leaves: number;
  rootDigest: string;
  rootTotal: bigint;
  mine: { index: number; value: bigint }[];
  included: bigint;
}

export class ProofError extends Error {}

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function fromHex(text: string): Uint8Array {
  if (!/^([0-9a-f]{2})*$/i.test(text)) throw new ProofError(`not hex: ${text.slice(0, 20)}`);
  const out = new Uint8Array(text.length / 2);
  for (let n = 0; n < out.length; n++) out[n] = parseInt(text.slice(2 * n, 2 * n + 2), 16);
  return out;
}

function u64le(value: bigint | number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value), true);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, n) => v === b[n]);

/** The file's height and nodes (root first, row by row); a malformed line is named. */
export function parseProof(text: string): { height: number; nodes: ProofNode[] } {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (!lines[0]?.startsWith(HEIGHT_PREFIX)) throw new ProofError(`line 1: expected ${HEIGHT_PREFIX}<height>`);
  const height = Number(lines[0].slice(HEIGHT_PREFIX.length));
  const nodes = lines.slice(1).map((line, n) => {
    const [digest, value, extra] = line.split(",");
    if (extra !== undefined || !/^[0-9a-f]{64}$/.test(digest ?? "") || !/^\d+$/.test(value ?? "")) {
      throw new ProofError(`line ${n + 2}: expected <64 hex digits>,<value>`);
    }
    const v = BigInt(value);
    if (v > U64_MAX) throw new ProofError(`line ${n + 2}: value over 64 bits`);
    return { digest: fromHex(digest), value: v, line: n + 2 };
  });
  const leaves = (nodes.length + 1) / 2;
  if (!nodes.length || !Number.isInteger(leaves) || (leaves & (leaves - 1)) !== 0) {
    throw new ProofError(`${nodes.length} nodes: not a complete binary tree`);
  }
  return { height, nodes };
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** Checks every node of the file against its children, then opens the leaves `subNonceHex`
 * opens (BitMEX's validate_liabilities method). Throws ProofError naming the first bad line. */
export async function checkProof(text: string, subNonceHex: string): Promise<ProofCheck> {
  if (!globalThis.crypto?.subtle) throw new ProofError("This page is not a secure context: the browser offers no WebCrypto.");
  const { height, nodes } = parseProof(text);
  const leafCount = (nodes.length + 1) / 2;
  const firstLeaf = leafCount - 1;
  for (let start = 0; start < firstLeaf; start += HASH_BATCH) {
    const batch = [];
    for (let i = start; i < Math.min(firstLeaf, start + HASH_BATCH); i++) {
      const left = nodes[2 * i + 1];
      const right = nodes[2 * i + 2];
      batch.push(sha256(concat(left.digest, u64le(left.value), right.digest, u64le(right.value))).then((digest) => {
        const node = nodes[i];
        if (node.value !== left.value + right.value) throw new ProofError(`line ${node.line}: value is not the sum of lines ${left.line} and ${right.line}`);
        if (!same(digest, node.digest)) throw new ProofError(`line ${node.line}: digest does not match lines ${left.line} and ${right.line}`);
      }));
    }
    await Promise.all(batch);
  }
  const key = await crypto.subtle.importKey("raw", concat(fromHex(subNonceHex)), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mine: { index: number; value: bigint }[] = [];
  for (let start = 0; start < leafCount; start += HASH_BATCH) {
    const batch = [];
    for (let index = start; index < Math.min(leafCount, start + HASH_BATCH); index++) {
      const leaf = nodes[firstLeaf + index];
      batch.push(crypto.subtle.sign("HMAC", key, concat(u64le(leaf.value), u64le(index))).then((mac) => {
        if (same(new Uint8Array(mac), leaf.digest)) mine.push({ index, value: leaf.value });
      }));
    }
    await Promise.all(batch);
  }
  mine.sort((a, b) => a.index - b.index);
  return {
    height, nodes: nodes.length, leaves: leafCount, rootDigest: hex(nodes[0].digest), rootTotal: nodes[0].value,
    mine, included: mine.reduce((sum, leaf) => sum + leaf.value, 0n),
  };
}

function major(minor: bigint | number | null | undefined, currency: string): string {
  if (minor === null || minor === undefined) return "-";
  const { major: name, scale } = currencyInfo(currency);
  const value = BigInt(minor);
  const base = 10n ** BigInt(scale);
  const whole = value / base;
  const fraction = scale ? `.${(value % base).toString().padStart(scale, "0")}` : "";
  return `${whole.toLocaleString("en-US")}${fraction} ${name || currency}`;
}

function grid(id: string, head: string[], rows: HTMLTableRowElement[], empty: string): HTMLElement {
  if (!rows.length) return el("p", { class: "empty", id }, empty);
  return el("table", { class: "grid", id }, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, ...rows));
}

export function mountReserves(): { show(): void } {
  const root = document.getElementById("reserves-body")!;
  const proofsBox = el("div", { id: "porl-proofs" });
  const solvencyBox = el("div", { id: "porl-solvency" });
  const currency = el("select", { id: "porl-currency" });
  const check = el("button", { type: "button", class: "btn primary", id: "porl-check" }, "Check my balance in the proof");
  const reveal = el("input", { type: "checkbox", id: "porl-reveal" });
  const result = el("div", { id: "porl-result", "aria-live": "polite" });
  const howto = el("pre", { class: "codes", id: "porl-howto", tabindex: "0", role: "region", "aria-label": "Commands to check the proof yourself" }); // scrolls: focusable for the keyboard
  root.append(
    el("p", { class: "muted" }, "The venue publishes what it owes every account (a blinded Merkle sum tree in BitMEX's format) and what it holds at the same block, with a solvency report. Check that your balance is in the tree here, or with BitMEX's own validator."),
    el("h2", {}, "Published proofs"), proofsBox,
    el("h2", {}, "Solvency at the latest proof"), solvencyBox,
    el("section", { class: "card", "aria-labelledby": "h-porl-mine" },
      el("h2", { id: "h-porl-mine" }, "Your balance in the proof"),
      el("p", { class: "muted" }, "Signs GET /porl/nonce with your key, downloads the proof file and recomputes it in this browser: every node against its children, then the leaves your nonce opens."),
      el("div", { class: "row" },
        el("div", { class: "field" }, el("label", { for: "porl-currency" }, "Currency"), currency),
        el("label", { class: "inline" }, reveal, " Show my nonces"),
        check),
      result,
      el("h2", {}, "Check it yourself (BitMEX's method)"),
      howto),
  );
  let snapshots: Row[] = [];
  let lastNonce: Row | null = null;

  function renderHowto(nonce: Row | null): void {
    const file = nonce?.filename ? String(nonce.filename) : "liabilities-<height>-<currency>.csv";
    const account = nonce ? String(nonce.account) : "<account>";
    const sub = nonce && reveal.checked ? String(nonce.nonce) : "<nonce>";
    const url = nonce?.height !== undefined && nonce?.height !== null ? `${location.origin}/porl/${String(nonce.height)}/${file}` : `${location.origin}/porl/<height>/<file>`;
    howto.textContent = [
      `curl -O ${url}`,
      "git clone https://github.com/BitMEX/proof-of-reserves-liabilities",
      `python3 proof-of-reserves-liabilities/validate_liabilities.py --proof ${file} --account ${account} --nonce ${sub}`,
      "# or with this venue's tool:",
      `perpetua verify-liabilities --proof ${file} --account ${account} --nonce ${sub}`,
      "# compare the root digest with other users' and with the listing above",
    ].join("\n");
  }

  async function loadSolvency(row: Row | undefined): Promise<void> {
    if (!row?.solvencyUrl) {
      solvencyBox.replaceChildren(el("p", { class: "empty" }, "No solvency report published yet."));
      return;
    }
    try {
      const response = await fetch(String(row.solvencyUrl));
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const report = (await response.json()) as Record<string, unknown>;
      const per = (report.currencies ?? report.solvency ?? report) as Record<string, Record<string, unknown>> | Record<string, unknown>[];
      const entries: [string, Record<string, unknown>][] = Array.isArray(per)
        ? per.map((r) => [String(r.currency), r])
        : Object.entries(per).filter(([, v]) => v && typeof v === "object" && "liabilities" in (v as object)) as [string, Record<string, unknown>][];
      solvencyBox.replaceChildren(grid("porl-solvency-table", ["Currency", "Reserves (signed)", "Liabilities", "Ratio", "Negative equity", "Pending withdrawals"],
        entries.map(([c, r]) => el("tr", { "data-currency": c },
          el("td", {}, currencyInfo(c).major || c),
          el("td", { class: "num" }, major(r.reserves as number, c)),
          el("td", { class: "num" }, major(r.liabilities as number, c)),
          el("td", { class: "num" }, r.ratio === null || r.ratio === undefined ? "-" : String(r.ratio)),
          el("td", { class: "num" }, major(r.negativeEquity as number, c)),
          el("td", { class: "num" }, major(r.pendingWithdrawals as number, c)))),
        "The report lists no currency."));
      if (entries.length && entries.every(([, r]) => r.reserves === null || r.reserves === undefined)) {
        solvencyBox.append(el("p", { class: "muted", id: "porl-no-reserves" }, "No reserves were published with this proof (the venue has no reserve chain configured), so no ratio."));
      }
    } catch (error) {
      solvencyBox.replaceChildren(el("p", { class: "empty" }, `Solvency report: ${error instanceof Error ? error.message : String(error)}`));
    }
  }

  async function load(): Promise<void> {
    try {
      snapshots = await get<Row[]>("/porl/snapshots", undefined, false);
    } catch (error) {
      proofsBox.replaceChildren(el("p", { class: "empty" }, error instanceof ApiError ? error.message : String(error)));
      return;
    }
    proofsBox.replaceChildren(grid("porl-table", ["Height", "Currency", "Time", "Liabilities", "Leaves", "Negative equity", "Root digest", "Files"],
      snapshots.map((r) => {
        const c = String(r.currency);
        const files = el("td", {});
        for (const [label, url] of [["proof", r.downloadUrl], ["reserves", r.reservesUrl], ["solvency", r.solvencyUrl]] as const) {
          if (url) files.append(el("a", { href: String(url), download: "" }, label), " ");
        }
        return el("tr", { "data-height": String(r.height), "data-currency": c },
          el("td", { class: "num" }, String(r.height)), el("td", {}, currencyInfo(c).major || c),
          el("td", {}, String(r.timestamp ?? "").replace("T", " ").slice(0, 19)),
          el("td", { class: "num" }, major(r.total as number, c)), el("td", { class: "num" }, String(r.leafCount)),
          el("td", { class: "num" }, major(r.negativeEquity as number, c)),
          el("td", { class: "digest", title: String(r.rootDigest) }, `${String(r.rootDigest).slice(0, 16)}…`), files);
      }), "No proof published yet."));
    const latest = snapshots[0]?.height;
    const currencies = [...new Set(snapshots.filter((r) => r.height === latest).map((r) => String(r.currency)))];
    const chosen = currency.value;
    currency.replaceChildren(...currencies.map((c) => el("option", { value: c }, currencyInfo(c).major || c)));
    if (currencies.includes(chosen)) currency.value = chosen;
    check.disabled = !currencies.length;
    await loadSolvency(snapshots[0]);
    renderHowto(lastNonce);
  }

  check.addEventListener("click", async () => {
    result.replaceChildren(el("p", { class: "muted" }, "Checking…"));
    try {
      const nonce = await get<Row>("/porl/nonce", { currency: currency.value }, true);
      lastNonce = nonce;
      renderHowto(nonce);
      if (!nonce.nonce || !nonce.filename) {
        result.replaceChildren(el("p", { class: "empty" }, "No proof of this currency includes your account yet."));
        return;
      }
      const listing = snapshots.find((r) => r.height === nonce.height && r.currency === nonce.currency);
      const response = await fetch(`/porl/${String(nonce.height)}/${String(nonce.filename)}`);
      if (!response.ok) throw new ProofError(`the proof file: ${response.status} ${response.statusText}`);
      const checked = await checkProof(await response.text(), String(nonce.nonce));
      const c = String(nonce.currency);
      const claimed = BigInt(Number(nonce.balance ?? 0));
      const agrees = checked.included === claimed;
      const digestAgrees = !listing || String(listing.rootDigest) === checked.rootDigest;
      const facts: [string, string, string][] = [
        ["Proof", `height ${checked.height}, ${checked.leaves} leaves, all ${checked.nodes} nodes checked`, "nodes"],
        ["Your leaves", checked.mine.length ? checked.mine.map((l) => `#${l.index}: ${major(l.value, c)}`).join(", ") : "none", "leaves"],
        ["Included total", major(checked.included, c), "included"],
        ["The venue's figure for you", `${major(claimed, c)} ${agrees ? "(equal)" : "(DIFFERENT)"}`, "claimed"],
        ["Root total", major(checked.rootTotal, c), "root-total"],
        ["Root digest", `${checked.rootDigest} ${digestAgrees ? "(as listed)" : "(NOT the listed one)"}`, "root-digest"],
      ];
      if (reveal.checked) facts.push(["Account nonce (every proof)", String(nonce.accountNonce), "account-nonce"], ["Nonce of this proof", String(nonce.nonce), "nonce"]);
      result.replaceChildren(
        el("p", { class: agrees && digestAgrees ? "up" : "down", id: "porl-verdict" }, agrees && digestAgrees
          ? `Verified in this browser: your ${currencyInfo(c).major || c} balance is in the proof at height ${checked.height}.`
          : "The proof does not show what the venue says: keep the file and report it."),
        el("dl", { class: "spec", id: "porl-facts" }, ...facts.flatMap(([k, v, key]) => [el("dt", {}, k), el("dd", { "data-porl": key }, v)])));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      result.replaceChildren(el("p", { class: "down", id: "porl-verdict" }, error instanceof ProofError ? `The proof does not hold: ${message}` : message));
    }
  });
  reveal.addEventListener("change", () => renderHowto(lastNonce));
  return { show: () => void load() };
}
