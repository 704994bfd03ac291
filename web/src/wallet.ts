// The Wallet page (docs/wallets.md): balances per currency (live from the margin table); the
// deposit address per asset and network with its QR code, minimum and confirmations; a
// withdrawal (to a saved or typed address, fee on top, 2FA code) then its confirmation or
// cancellation with the mailed token; the address book (saved addresses usable after 24 h, the
// whitelist switch); the wallet history with BitMEX's statuses (and the venue's stage: awaiting an
// operator's approval, sending, on chain), network and transaction.
import { ApiError, get, post } from "./api";
import type { App } from "./app";
import { hasIdentity, loadPreferences } from "./credentials";
import { currencyInfo } from "./contracts";
import { el, money } from "./format";
import qrcode from "qrcode-generator";
import type { Row } from "./tables";

export const HISTORY_ROWS_MAX = 100;
export const HISTORY_RELOAD_DELAY_MS = 500;
export const HISTORY_POLL_MS = 3_000; // while a row is on its way (Pending, Confirmed) and the page shown
export const HISTORY_APPROVAL_POLL_MS = 10_000; // while every moving row waits for an operator
export const SMALL_BALANCE_MAJOR = 0.0001; // hidden under this with the hideSmallBalances preference
export const ADDRESS_LOCK_MS = 24 * 60 * 60 * 1000; // a saved address is usable after this

interface Asset {
  asset: string;
  currency: string;
  majorCurrency: string;
  name: string;
  scale: number;
  networks: { asset: string; withdrawalFee: number; depositEnabled: boolean; withdrawalEnabled: boolean }[];
}

/** BitMEX's status, with the venue's own stage where it says more (docs/wallets.md: `state`). */
function statusText(r: Row): string {
  const status = String(r.transactStatus ?? "");
  if (r.state === "Approval") return `${status}: awaiting approval`;
  if (r.state === "Queued" || r.state === "Signed") return `${status}: sending`;
  if (r.state === "Broadcast") return `${status}: on chain`;
  return status;
}

export function mountWallet(app: App): { show(): void } {
  const body = document.getElementById("wallet-body")!;
  const balances = el("div", { id: "balances" });
  const history = el("div", { id: "wallet-history" });
  const depositAsset = el("select", { id: "deposit-asset" });
  const depositNetwork = el("select", { id: "deposit-network" });
  const depositGo = el("button", { type: "button", class: "btn", id: "deposit-go" }, "Show address");
  const depositOut = el("div", { id: "deposit-out", "aria-live": "polite" });
  const wdAsset = el("select", { id: "withdraw-asset" });
  const wdNetwork = el("select", { id: "withdraw-network" });
  const wdSaved = el("select", { id: "withdraw-saved" });
  const wdAddress = el("input", { id: "withdraw-address", autocomplete: "off", spellcheck: "false" });
  const wdAmount = el("input", { id: "withdraw-amount", type: "number", step: "any", min: "0" });
  const wdOtp = el("input", { id: "withdraw-otp", inputmode: "numeric", autocomplete: "one-time-code" });
  const wdFee = el("p", { class: "muted", id: "withdraw-fee" });
  const wdGo = el("button", { type: "button", class: "btn primary", id: "withdraw-go" }, "Request withdrawal");
  const wdOut = el("p", { class: "form-out", id: "withdraw-out", "aria-live": "polite" });
  const wdToken = el("input", { id: "withdraw-token", autocomplete: "off", spellcheck: "false" });
  const wdConfirm = el("button", { type: "button", class: "btn primary", id: "withdraw-confirm" }, "Confirm withdrawal");
  const wdCancel = el("button", { type: "button", class: "btn", id: "withdraw-cancel" }, "Cancel withdrawal");
  const book = el("div", { id: "address-book" });
  const abAsset = el("select", { id: "address-asset" });
  const abNetwork = el("select", { id: "address-network" });
  const abAddress = el("input", { id: "address-address", autocomplete: "off", spellcheck: "false" });
  const abName = el("input", { id: "address-name", autocomplete: "off" });
  const abOtp = el("input", { id: "address-otp", inputmode: "numeric", autocomplete: "one-time-code" });
  const abGo = el("button", { type: "button", class: "btn", id: "address-add" }, "Save address");
  const wlOn = el("input", { type: "checkbox", id: "whitelist-on" });
  const wlGo = el("button", { type: "button", class: "btn small", id: "whitelist-go" }, "Apply");
  const abOut = el("p", { class: "form-out", id: "address-out", "aria-live": "polite" });
  const labelled = (text: string, input: HTMLElement) => el("div", { class: "field" }, el("label", { for: input.id }, text), input);

  body.append(
    el("h2", {}, "Balances"), balances,
    el("div", { class: "columns" },
      el("section", { class: "card", "aria-label": "Deposit" }, el("h2", {}, "Deposit"),
        labelled("Asset", depositAsset), labelled("Network", depositNetwork), depositGo, depositOut),
      el("section", { class: "card", "aria-label": "Withdraw" }, el("h2", {}, "Withdraw"),
        labelled("Asset", wdAsset), labelled("Network", wdNetwork), labelled("Saved address", wdSaved),
        labelled("Or an address", wdAddress), labelled("Amount (arrives in full; the fee is on top)", wdAmount), wdFee,
        labelled("2FA code", wdOtp), wdGo, wdOut,
        el("p", { class: "muted" }, "Then confirm it with the token we mail you (or cancel it before it is signed):"),
        labelled("Token from the mail", wdToken), el("div", { class: "row" }, wdConfirm, wdCancel))),
    el("section", { class: "card", "aria-label": "Address book" }, el("h2", {}, "Address book"),
      el("p", { class: "muted" }, "A saved address is usable 24 hours after it is added. With the whitelist on, withdrawals go only to saved addresses."),
      book,
      el("div", { class: "bot-fields" }, labelled("Asset", abAsset), labelled("Network", abNetwork), labelled("Address", abAddress),
        labelled("Name", abName), labelled("2FA code", abOtp)),
      el("div", { class: "row" }, abGo, el("label", { class: "inline" }, wlOn, " Withdraw only to saved addresses"), wlGo), abOut),
    el("h2", {}, "History"), history,
  );

  let assets: Asset[] = [];
  let networks: Row[] = [];
  let saved: Row[] = [];
  const fail = (out: HTMLElement, error: unknown) => {
    out.textContent = error instanceof ApiError ? error.message : String(error);
    out.className = "form-out down";
  };
  const ok = (out: HTMLElement, text: string) => {
    out.textContent = text;
    out.className = "form-out up";
  };
  const fillNetworks = (assetSelect: HTMLSelectElement, networkSelect: HTMLSelectElement) => {
    const asset = assets.find((a) => a.currency === assetSelect.value);
    const chosen = networkSelect.value;
    networkSelect.replaceChildren(...(asset?.networks ?? []).map((n) => el("option", { value: n.asset }, n.asset.toUpperCase())));
    if (asset?.networks.some((n) => n.asset === chosen)) networkSelect.value = chosen;
    if (networkSelect === wdNetwork) {
      const network = asset?.networks.find((n) => n.asset === networkSelect.value);
      wdFee.textContent = asset && network
        ? `Network fee ${money(network.withdrawalFee, asset.currency)}; minimum ${money(Number((asset as unknown as Row).minWithdrawalAmount ?? 0), asset.currency)}${network.withdrawalEnabled ? "" : " (withdrawals paused)"}`
        : "";
      fillSaved();
    }
  };
  function fillSaved(): void {
    const usable = saved.filter((a) => a.currency === wdAsset.value && (!a.network || a.network === wdNetwork.value));
    wdSaved.replaceChildren(el("option", { value: "" }, "(type an address below)"),
      ...usable.map((a) => el("option", { value: String(a.id) }, `${String(a.name || "unnamed")}: ${String(a.address).slice(0, 12)}…`)));
  }
  depositAsset.addEventListener("change", () => fillNetworks(depositAsset, depositNetwork));
  wdAsset.addEventListener("change", () => fillNetworks(wdAsset, wdNetwork));
  wdNetwork.addEventListener("change", () => fillNetworks(wdAsset, wdNetwork));
  abAsset.addEventListener("change", () => fillNetworks(abAsset, abNetwork));

  depositGo.addEventListener("click", async () => {
    try {
      const address = String(await get<unknown>("/user/depositAddress", { currency: depositAsset.value, network: depositNetwork.value }, true));
      const asset = assets.find((a) => a.currency === depositAsset.value);
      const network = networks.find((n) => n.asset === depositNetwork.value);
      const token = asset?.networks.find((n) => n.asset === depositNetwork.value) as Row | undefined;
      const code = qrcode(0, "M");
      code.addData(address);
      code.make();
      const qr = el("img", { class: "qr", id: "deposit-qr", alt: `QR code of the deposit address ${address}` });
      qr.src = code.createDataURL(4, 2);
      const facts: [string, string][] = [["Address", address]];
      if (asset) facts.push(["Minimum deposit", money(Number((asset as unknown as Row).minDepositAmount ?? 0), asset.currency)]);
      if (network) facts.push(["Credited after", `${String(network.depositConfirmations)} confirmations`]);
      if (token?.tokenAddress) facts.push(["Token contract", String(token.tokenAddress)]);
      depositOut.replaceChildren(el("p", {}, `Send ${depositAsset.selectedOptions[0]?.textContent ?? ""} on ${depositNetwork.value.toUpperCase()} to:`),
        el("code", { class: "secret", id: "deposit-address" }, address), qr,
        el("dl", { class: "spec" }, ...facts.slice(1).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])));
    } catch (error) {
      depositOut.replaceChildren(el("p", { class: "down" }, error instanceof ApiError ? error.message : String(error)));
    }
  });
  wdGo.addEventListener("click", async () => {
    const scale = currencyInfo(wdAsset.value).scale;
    const request: Record<string, unknown> = { currency: wdAsset.value, network: wdNetwork.value, amount: Math.round(Number(wdAmount.value) * 10 ** scale) };
    if (wdSaved.value) request.addressId = Number(wdSaved.value);
    else request.address = wdAddress.value.trim();
    if (wdOtp.value.trim()) request.otpToken = wdOtp.value.trim();
    try {
      const row = await post<Row>("/user/requestWithdrawal", request);
      ok(wdOut, `Withdrawal ${String(row.transactID).slice(0, 8)}… ${String(row.transactStatus)}: confirm it with the token mailed to you.`);
      void loadHistory();
    } catch (error) {
      fail(wdOut, error);
    }
  });
  for (const [button, path, done] of [[wdConfirm, "/user/confirmWithdrawal", "confirmed"], [wdCancel, "/user/cancelWithdrawal", "cancelled"]] as const) {
    button.addEventListener("click", async () => {
      try {
        const row = await post<Row>(path, { token: wdToken.value.trim() });
        ok(wdOut, `Withdrawal ${done}: ${statusText(row)}`);
        void loadHistory();
      } catch (error) {
        fail(wdOut, error);
      }
    });
  }
  abGo.addEventListener("click", async () => {
    try {
      await post("/address", { currency: abAsset.value, network: abNetwork.value, address: abAddress.value.trim(), name: abName.value.trim(), otpToken: abOtp.value.trim() });
      ok(abOut, "Address saved: usable for withdrawals in 24 hours.");
      await loadBook();
    } catch (error) {
      fail(abOut, error);
    }
  });
  wlGo.addEventListener("click", async () => {
    try {
      await post("/address/whitelist", { enabled: wlOn.checked, otpToken: abOtp.value.trim() });
      ok(abOut, wlOn.checked ? "Withdrawals now go only to saved addresses." : "Withdrawals may go to any address.");
    } catch (error) {
      fail(abOut, error);
    }
  });

  async function loadBook(): Promise<void> {
    try {
      saved = await get<Row[]>("/address", undefined, true);
    } catch (error) {
      book.replaceChildren(el("p", { class: "empty" }, error instanceof ApiError ? error.message : String(error)));
      return;
    }
    const head = ["Name", "Asset", "Network", "Address", "Added", "Usable from"];
    book.replaceChildren(saved.length ? el("table", { class: "grid", id: "address-table" },
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...saved.map((a) => el("tr", { "data-address": String(a.id) },
        el("td", {}, String(a.name ?? "")), el("td", {}, currencyInfo(String(a.currency)).major), el("td", {}, String(a.network ?? "").toUpperCase()),
        el("td", { class: "digest" }, String(a.address)), el("td", {}, String(a.created ?? "").replace("T", " ").slice(0, 16)),
        el("td", {}, new Date(new Date(String(a.created)).getTime() + ADDRESS_LOCK_MS).toISOString().replace("T", " ").slice(0, 16)))))) : el("p", { class: "empty", id: "address-table" }, "No saved addresses."));
    fillSaved();
  }

  function renderBalances(): void {
    const hideSmall = loadPreferences().hideSmallBalances === true; // the account's preference
    const rows = app.rt.table("margin").rows.filter((r) => {
      if (!hideSmall) return true;
      const c = String(r.currency);
      return Math.abs(Number(r.walletBalance ?? 0)) / 10 ** currencyInfo(c).scale >= SMALL_BALANCE_MAJOR;
    });
    if (!rows.length) {
      balances.replaceChildren(el("p", { class: "empty" }, app.rt.authenticated ? "No balances." : "Sign in or load an API key to see your balances."));
      return;
    }
    const head = ["Currency", "Wallet balance", "Unrealised PnL", "Margin balance", "Position margin", "Order margin", "Available"];
    balances.replaceChildren(el("table", { class: "grid", id: "balances-table" },
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...rows.map((r) => {
        const c = String(r.currency);
        return el("tr", { "data-currency": c },
          el("td", {}, currencyInfo(c).major || c),
          ...[r.walletBalance, r.unrealisedPnl, r.marginBalance, r.maintMargin, r.initMargin, r.availableMargin]
            .map((v) => el("td", { class: "num" }, money(Number(v ?? 0), c))));
      }))));
  }

  async function loadHistory(): Promise<void> {
    try {
      const rows = await get<Row[]>("/user/walletHistory", { currency: "all", count: HISTORY_ROWS_MAX, reverse: true }, true);
      const head = ["Time", "Type", "Currency", "Network", "Amount", "Fee", "Status", "Address / text", "Transaction"];
      history.replaceChildren(rows.length ? el("table", { class: "grid", id: "history-table" },
        el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...rows.map((r) => el("tr", { "data-transact": String(r.transactID ?? ""), "data-type": String(r.transactType ?? "") },
          el("td", {}, String(r.transactTime ?? r.timestamp ?? "").replace("T", " ").slice(0, 19)),
          el("td", {}, String(r.transactType)),
          el("td", {}, currencyInfo(String(r.currency)).major),
          el("td", {}, String(r.network ?? "").toUpperCase()),
          el("td", { class: "num" }, money(Number(r.amount), String(r.currency))),
          el("td", { class: "num" }, money(Number(r.fee ?? 0), String(r.currency))),
          el("td", { "data-field": "status", "data-state": String(r.state ?? "") }, statusText(r)),
          el("td", { class: "muted" }, String(r.address || r.text || "")),
          el("td", { class: "digest" }, r.tx ? `${String(r.tx).slice(0, 14)}…` : ""))))) : el("p", { class: "empty" }, "No wallet history."));
      // a deposit or withdrawal still on its way: follow its status until it settles
      window.clearTimeout(historyPoll);
      // (slower while the only ones moving wait for an operator: that can take hours)
      const moving = rows.filter((r) => r.transactStatus === "Pending" || r.transactStatus === "Confirmed");
      if (moving.length) {
        const waitingOnly = moving.every((r) => r.state === "Approval");
        historyPoll = window.setTimeout(() => {
          if (!document.getElementById("page-wallet")!.hidden) void loadHistory();
        }, waitingOnly ? HISTORY_APPROVAL_POLL_MS : HISTORY_POLL_MS);
      }
    } catch (error) {
      history.replaceChildren(el("p", { class: "empty" }, error instanceof ApiError ? error.message : String(error)));
    }
  }

  async function loadAssets(): Promise<void> {
    if (assets.length) return;
    try {
      [assets, networks] = await Promise.all([get<Asset[]>("/wallet/assets"), get<Row[]>("/wallet/networks")]);
    } catch {
      return;
    }
    for (const select of [depositAsset, wdAsset, abAsset]) {
      select.replaceChildren(...assets.map((a) => el("option", { value: a.currency }, `${a.majorCurrency} (${a.name})`)));
    }
    fillNetworks(depositAsset, depositNetwork);
    fillNetworks(wdAsset, wdNetwork);
    fillNetworks(abAsset, abNetwork);
  }

  app.rt.on("margin", () => {
    if (!document.getElementById("page-wallet")!.hidden) renderBalances();
  });
  // a deposit credited, a withdrawal confirmed, signed or completed: the history follows
  let historyDue = false;
  let historyPoll = 0;
  app.rt.on("wallet", () => {
    if (document.getElementById("page-wallet")!.hidden || historyDue) return;
    historyDue = true; // one reload for a burst of updates
    window.setTimeout(() => {
      historyDue = false;
      void loadHistory();
    }, HISTORY_RELOAD_DELAY_MS);
  });
  return {
    show() {
      renderBalances();
      void loadAssets();
      if (hasIdentity()) {
        void loadHistory();
        void loadBook();
      }
    },
  };
}
