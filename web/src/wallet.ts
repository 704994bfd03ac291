// The Wallet page: balances per currency (live from the margin table), deposit address and
// withdrawal request per asset and network (the venue says when those are not offered yet),
// and the wallet history with statuses.
import { ApiError, get, post } from "./api";
import type { App } from "./app";
import { currencyInfo } from "./contracts";
import { el, money } from "./format";
import type { Row } from "./tables";

export const HISTORY_ROWS_MAX = 100;

interface Asset {
  asset: string;
  currency: string;
  majorCurrency: string;
  name: string;
  scale: number;
  networks: { asset: string; withdrawalFee: number; depositEnabled: boolean; withdrawalEnabled: boolean }[];
}

export function mountWallet(app: App): { show(): void } {
  const body = document.getElementById("wallet-body")!;
  const balances = el("div", { id: "balances" });
  const history = el("div", { id: "wallet-history" });
  const depositAsset = el("select", { id: "deposit-asset" });
  const depositNetwork = el("select", { id: "deposit-network" });
  const depositGo = el("button", { type: "button", class: "btn", id: "deposit-go" }, "Show address");
  const depositOut = el("p", { id: "deposit-out", class: "muted", "aria-live": "polite" });
  const wdAsset = el("select", { id: "withdraw-asset" });
  const wdNetwork = el("select", { id: "withdraw-network" });
  const wdAddress = el("input", { id: "withdraw-address", autocomplete: "off", spellcheck: "false" });
  const wdAmount = el("input", { id: "withdraw-amount", type: "number", step: "any", min: "0" });
  const wdFee = el("span", { class: "muted", id: "withdraw-fee" });
  const wdGo = el("button", { type: "button", class: "btn primary", id: "withdraw-go" }, "Request withdrawal");
  const labelled = (text: string, input: HTMLElement) => el("div", { class: "field" }, el("label", { for: input.id }, text), input);

  body.append(
    el("h2", {}, "Balances"), balances,
    el("div", { class: "columns" },
      el("section", { class: "card", "aria-label": "Deposit" }, el("h2", {}, "Deposit"),
        labelled("Asset", depositAsset), labelled("Network", depositNetwork), depositGo, depositOut),
      el("section", { class: "card", "aria-label": "Withdraw" }, el("h2", {}, "Withdraw"),
        labelled("Asset", wdAsset), labelled("Network", wdNetwork), labelled("Address", wdAddress),
        labelled("Amount", wdAmount), wdFee, wdGo)),
    el("h2", {}, "History"), history,
  );

  let assets: Asset[] = [];
  const fillNetworks = (assetSelect: HTMLSelectElement, networkSelect: HTMLSelectElement) => {
    const asset = assets.find((a) => a.currency === assetSelect.value);
    networkSelect.replaceChildren(...(asset?.networks ?? []).map((n) => el("option", { value: n.asset }, n.asset.toUpperCase())));
    if (networkSelect === wdNetwork) {
      const network = asset?.networks.find((n) => n.asset === networkSelect.value);
      wdFee.textContent = asset && network ? `Network fee ${money(network.withdrawalFee, asset.currency)}` : "";
    }
  };
  depositAsset.addEventListener("change", () => fillNetworks(depositAsset, depositNetwork));
  wdAsset.addEventListener("change", () => fillNetworks(wdAsset, wdNetwork));
  wdNetwork.addEventListener("change", () => fillNetworks(wdAsset, wdNetwork));

  depositGo.addEventListener("click", async () => {
    try {
      const address = await get<unknown>("/user/depositAddress", { currency: depositAsset.value, network: depositNetwork.value }, true);
      depositOut.textContent = `Send ${depositAsset.selectedOptions[0]?.textContent ?? ""} to ${String(address)}`;
    } catch (error) {
      depositOut.textContent = error instanceof ApiError ? error.message : String(error);
    }
  });
  wdGo.addEventListener("click", async () => {
    const scale = currencyInfo(wdAsset.value).scale;
    try {
      await post("/user/requestWithdrawal", { currency: wdAsset.value, network: wdNetwork.value, address: wdAddress.value, amount: Math.round(Number(wdAmount.value) * 10 ** scale) });
      app.toast("Withdrawal requested", "info");
      void loadHistory();
    } catch (error) {
      app.toast(error instanceof ApiError ? error.message : String(error));
    }
  });

  function renderBalances(): void {
    const rows = app.rt.table("margin").rows;
    if (!rows.length) {
      balances.replaceChildren(el("p", { class: "empty" }, app.rt.authenticated ? "No balances." : "Load an API key to see your balances."));
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
      const head = ["Time", "Type", "Currency", "Amount", "Fee", "Status", "Address / text"];
      history.replaceChildren(rows.length ? el("table", { class: "grid", id: "history-table" },
        el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...rows.map((r) => el("tr", {},
          el("td", {}, String(r.transactTime ?? r.timestamp ?? "").replace("T", " ").slice(0, 19)),
          el("td", {}, String(r.transactType)),
          el("td", {}, currencyInfo(String(r.currency)).major),
          el("td", { class: "num" }, money(Number(r.amount), String(r.currency))),
          el("td", { class: "num" }, money(Number(r.fee ?? 0), String(r.currency))),
          el("td", {}, String(r.transactStatus ?? "")),
          el("td", { class: "muted" }, String(r.address || r.text || "")))))) : el("p", { class: "empty" }, "No wallet history."));
    } catch (error) {
      history.replaceChildren(el("p", { class: "empty" }, error instanceof ApiError ? error.message : String(error)));
    }
  }

  async function loadAssets(): Promise<void> {
    if (assets.length) return;
    try {
      assets = await get<Asset[]>("/wallet/assets");
    } catch {
      return;
    }
    for (const select of [depositAsset, wdAsset]) {
      select.replaceChildren(...assets.map((a) => el("option", { value: a.currency }, `${a.majorCurrency} (${a.name})`)));
    }
    fillNetworks(depositAsset, depositNetwork);
    fillNetworks(wdAsset, wdNetwork);
  }

  app.rt.on("margin", () => {
    if (!document.getElementById("page-wallet")!.hidden) renderBalances();
  });
  return {
    show() {
      renderBalances();
      void loadAssets();
      if (app.rt.authenticated || sessionStorage.length) void loadHistory();
    },
  };
}
