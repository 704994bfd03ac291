// The Account page, over the venue's account routes (a browser session: an HttpOnly cookie and
// its CSRF token). Signed out: sign in (with a 2FA code when enabled), create an account, confirm
// the mailed token, reset a forgotten password. Signed in: profile and anti-phishing phrase,
// trading from this browser as the session itself (REST with the cookie and CSRF token, the
// WebSocket's authSession; no API key is made for it), preferences and email change, API keys, two-factor enrolment with its QR code and
// recovery codes, password change, sessions (revoke), the audit log, sign out.
import { ApiError, sessionDelete, sessionGet, sessionPost, sessionUpload } from "./api";
import type { App } from "./app";
import { loadCredentials, loadCsrf, onCredentials, saveCredentials, saveCsrf, savePreferences } from "./credentials";
import { el, money } from "./format";
import { createCredential, getAssertion, passkeysAvailable } from "./passkey";
import type { Row } from "./tables";

export const AUDIT_ROWS_SHOWN = 30;
// what /user/kyc/document takes (services.documents.KINDS): JPEG, PNG or PDF up to 5 MB
const KYC_DOCUMENT_KINDS: [string, string][] = [
  ["id_front", "Identity document, front"], ["id_back", "Identity document, back"], ["selfie", "Selfie holding the document"],
  ["proof_of_address", "Proof of address"], ["source_of_funds", "Source of funds"], ["incorporation", "Certificate of incorporation (business)"],
];

type Form = { node: HTMLFormElement; inputs: Record<string, HTMLInputElement> };

/** A labelled form; `fields` are [name, label, type, autocomplete]. */
function form(id: string, title: string, fields: [string, string, string, string][], submit: string, onSubmit: (values: Record<string, string>, f: Form) => Promise<void>): Form {
  const inputs: Record<string, HTMLInputElement> = {};
  const node = el("form", { id, class: "card", "aria-label": title });
  node.append(el("h2", {}, title));
  for (const [name, label, type, autocomplete] of fields) {
    const input = el("input", { id: `${id}-${name}`, name, type, autocomplete, spellcheck: "false" });
    inputs[name] = input;
    node.append(el("div", { class: "field" }, el("label", { for: input.id }, label), input));
  }
  const out = el("p", { class: "muted form-out", "aria-live": "polite", id: `${id}-out` });
  node.append(el("button", { type: "submit", class: "btn primary" }, submit), out);
  const f = { node, inputs };
  node.addEventListener("submit", async (event) => {
    event.preventDefault();
    out.textContent = "";
    const values = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.value.trim()]));
    try {
      await onSubmit(values, f);
    } catch (error) {
      out.textContent = error instanceof ApiError ? error.message : String(error);
      out.className = "form-out down";
    }
  });
  return f;
}

function say(f: Form, text: string): void {
  const out = f.node.querySelector(".form-out")!;
  out.textContent = text;
  out.className = "form-out up";
}

function detailText(detail: unknown): string {
  if (detail === null || detail === undefined) return "";
  if (typeof detail !== "object") return String(detail);
  return Object.entries(detail as Record<string, unknown>).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`).join(", ");
}

function grid(head: string[], rows: HTMLTableRowElement[], empty: string, id: string): HTMLElement {
  if (!rows.length) return el("p", { class: "empty", id }, empty);
  return el("table", { class: "grid", id }, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, ...rows));
}

export function mountIdentity(app: App): { show(): void } {
  const root = document.getElementById("account-body")!;
  const signedOut = el("div", { id: "signed-out" });
  const signedIn = el("div", { id: "signed-in" });
  root.append(signedOut, signedIn);
  let user: Row | null = null;

  const signIn = form("sign-in", "Sign in", [["email", "Email", "email", "username"], ["password", "Password", "password", "current-password"], ["otpToken", "2FA code (if enabled)", "text", "one-time-code"]], "Sign in", async (v) => {
    const body: Record<string, string> = { email: v.email, password: v.password };
    if (v.otpToken) body.otpToken = v.otpToken;
    const answer = await sessionPost<Row>("/user/login", body);
    saveCsrf(String(answer.csrfToken));
    signIn.inputs.password.value = "";
    await refresh();
  });
  // The second factor as a security key (WebAuthn): the password first, then the key.
  const passkeyIn = el("button", { type: "button", class: "btn", id: "sign-in-passkey" }, "Sign in with a security key");
  signIn.node.querySelector("button[type=submit]")!.after(passkeyIn);
  passkeyIn.addEventListener("click", async () => {
    const out = signIn.node.querySelector(".form-out")!;
    out.textContent = "";
    const email = signIn.inputs.email.value.trim();
    const secret = signIn.inputs.password.value;
    try {
      if (!passkeysAvailable()) throw new Error("This browser or address offers no security keys (WebAuthn needs https or localhost).");
      const options = await sessionPost<Record<string, unknown>>("/user/webauthn/loginOptions", { email, password: secret });
      out.textContent = "Touch your security key…";
      out.className = "form-out muted";
      const assertion = await getAssertion(options);
      const answer = await sessionPost<Row>("/user/login", { email, password: secret, webauthn: assertion });
      saveCsrf(String(answer.csrfToken));
      signIn.inputs.password.value = "";
      out.textContent = "";
      await refresh();
    } catch (error) {
      out.textContent = error instanceof Error ? error.message : String(error);
      out.className = "form-out down";
    }
  });
  const register = form("register", "Create an account", [["email", "Email", "email", "email"], ["password", "Password (12 characters or more)", "password", "new-password"]], "Create account", async (v, f) => {
    const answer = await sessionPost<Row>("/user/register", v);
    say(f, `${String(answer.message ?? "Check your mail")}: paste the token below to confirm.`);
  });
  const confirm = form("confirm", "Confirm your email", [["token", "Token from the mail", "text", "off"]], "Confirm", async (v, f) => {
    await sessionPost("/user/confirmEmail", v);
    say(f, "Email confirmed: you can sign in.");
  });
  const forgot = form("forgot", "Forgot your password", [["email", "Email", "email", "email"]], "Mail me a reset token", async (v, f) => {
    const answer = await sessionPost<Row>("/user/requestPasswordReset", v);
    say(f, String(answer.message ?? "Check your mail"));
  });
  const reset = form("reset", "Reset your password", [["token", "Token from the mail", "text", "off"], ["password", "New password", "password", "new-password"]], "Set password", async (v, f) => {
    await sessionPost("/user/resetPassword", v);
    say(f, "Password changed: sign in with it.");
  });
  signedOut.append(el("div", { class: "columns" }, signIn.node, register.node), el("div", { class: "columns three" }, confirm.node, forgot.node, reset.node));

  // --- signed in ---
  const profileBox = el("dl", { class: "spec", id: "profile" });
  const keyCard = el("section", { class: "card", "aria-labelledby": "h-trading-key" });
  const tradingAs = el("p", { class: "muted", id: "trading-as", "aria-live": "polite" });
  keyCard.append(el("h2", { id: "h-trading-key" }, "Trading from this browser"), tradingAs);
  const renderTradingAs = () => {
    const key = loadCredentials()?.key;
    tradingAs.textContent = key
      ? `This tab trades with the API key ${key} you loaded (top right); forget it there to trade as this session.`
      : "This tab trades as your signed-in session: orders, positions and the live private feed use it directly, with no API key. Withdrawals ask for your second factor.";
  };
  onCredentials(renderTradingAs);
  const keysBox = el("div", { id: "api-keys" });
  const kycBox = el("dl", { class: "spec", id: "kyc" });
  const sessionsBox = el("div", { id: "sessions" });
  const auditBox = el("div", { id: "audit" });
  const tfaBox = el("div", { id: "tfa" });
  const keyName = el("input", { id: "passkey-name", type: "text", autocomplete: "off", value: "security key", maxlength: "64" });
  const addPasskey = el("button", { type: "button", class: "btn primary", id: "passkey-add" }, "Add a security key");
  const passkeyOut = el("div", { id: "passkey-out", "aria-live": "polite" });
  const passkeysBox = el("div", { id: "passkeys" });
  const passkeyCard = el("section", { class: "card", "aria-labelledby": "h-passkeys" },
    el("h2", { id: "h-passkeys" }, "Security keys"),
    el("p", { class: "muted" }, "A security key or passkey (WebAuthn) as a second factor: sign-in asks for it after the password. Your first second factor comes with recovery codes."),
    passkeysBox, el("div", { class: "field" }, el("label", { for: "passkey-name" }, "Name of the key"), keyName), addPasskey, passkeyOut);
  addPasskey.addEventListener("click", async () => {
    passkeyOut.replaceChildren();
    try {
      if (!passkeysAvailable()) throw new Error("This browser or address offers no security keys (WebAuthn needs https or localhost).");
      const options = await sessionPost<Record<string, unknown>>("/user/webauthn/registerOptions", {});
      const credential = await createCredential(options);
      const answer = await sessionPost<Row>("/user/webauthn/register", { credential, name: keyName.value.trim() });
      saveCsrf(String(answer.csrfToken)); // the session was rotated
      await refresh();
      const codes = (answer.recoveryCodes as string[] | undefined) ?? [];
      passkeyOut.replaceChildren(el("p", { class: "up" }, `Security key "${keyName.value.trim() || "security key"}" added: sign-in now asks for it.`));
      if (codes.length) {
        passkeyOut.append(el("p", {}, "Recovery codes (each works once; keep them offline):"), el("pre", { class: "codes", id: "passkey-recovery-codes" }, codes.join("\n")));
      }
    } catch (error) {
      passkeyOut.replaceChildren(el("p", { class: "down" }, error instanceof Error ? error.message : String(error)));
    }
  });
  // A new API key (POST /apiKey, session only): its secret is shown once, here, and never again.
  const permissionBoxes = (["order", "orderCancel", "withdraw"] as const).map((name) =>
    el("input", { type: "checkbox", id: `new-key-perm-${name}`, value: name }));
  const newKeySecret = el("div", { id: "new-key-secret", "aria-live": "polite" });
  const newKey = form("new-key", "Create an API key", [
    ["name", "Name", "text", "off"],
    ["cidr", "Allowed addresses (CIDR, comma-separated; empty: any)", "text", "off"],
    ["token", "2FA code (needed for the withdraw permission)", "text", "one-time-code"],
  ], "Create key", async (v, f) => {
    const permissions = permissionBoxes.filter((b) => b.checked).map((b) => b.value);
    const body: Record<string, unknown> = { name: v.name, permissions };
    if (v.cidr) body.cidr = v.cidr;
    if (v.token) body.token = v.token;
    const created = await sessionPost<Row>("/apiKey", body);
    f.inputs.token.value = "";
    say(f, `Key ${String(created.id)} created (${permissions.join(", ") || "read only"}). Copy the secret now: it is not shown again.`);
    newKeySecret.replaceChildren(el("dl", { class: "spec" },
      el("dt", {}, "API key"), el("dd", { class: "secret", id: "new-key-id" }, String(created.id)),
      el("dt", {}, "Secret"), el("dd", { class: "secret", id: "new-key-value" }, String(created.secret))));
    await loadKeys();
  });
  newKey.node.insertBefore(el("fieldset", { class: "checks" }, el("legend", {}, "Permissions (none: read only)"),
    ...permissionBoxes.map((b) => el("label", {}, b, ` ${b.value}`))), newKey.node.querySelector("button"));
  newKey.node.append(newKeySecret);
  const kycLevel = el("select", { id: "kyc-level", name: "level" }, el("option", { value: "1" }, "Level 1"), el("option", { value: "2" }, "Level 2"));
  const kycApplication = form("kyc-application", "KYC application", [
    ["name", "Full name", "text", "name"], ["dateOfBirth", "Date of birth", "date", "bday"],
    ["residence", "Country of residence (ISO code, e.g. DE)", "text", "country"],
    ["citizenship", "Citizenship (ISO codes, comma-separated)", "text", "off"],
    ["address", "Address", "text", "street-address"], ["occupation", "Occupation", "text", "organization-title"],
    ["sourceOfFunds", "Source of funds (level 2)", "text", "off"],
  ], "Save application", async (v, f) => {
    const body: Record<string, unknown> = { ...v, kind: "individual", level: Number(kycLevel.value),
      citizenship: v.citizenship.split(",").map((c) => c.trim()).filter(Boolean) };
    if (!v.sourceOfFunds) delete body.sourceOfFunds;
    await sessionPost("/user/kyc/application", body);
    say(f, "Application saved: upload the documents, then send it for review.");
    await loadKyc();
  });
  kycApplication.node.insertBefore(el("div", { class: "field" }, el("label", { for: "kyc-level" }, "Level asked for"), kycLevel), kycApplication.node.querySelector("button"));
  const docKind = el("select", { id: "kyc-doc-kind", name: "kind" }, ...KYC_DOCUMENT_KINDS.map(([k, label]) => el("option", { value: k }, label)));
  const docFile = el("input", { id: "kyc-doc-file", name: "file", type: "file", accept: "image/jpeg,image/png,application/pdf" });
  const docUpload = el("button", { type: "button", class: "btn", id: "kyc-doc-upload" }, "Upload");
  const kycSubmit = el("button", { type: "button", class: "btn primary", id: "kyc-submit" }, "Send for review");
  const docOut = el("p", { class: "muted form-out", id: "kyc-doc-out", "aria-live": "polite" });
  const kycDocuments = el("section", { class: "card", id: "kyc-documents", "aria-labelledby": "h-kyc-docs" },
    el("h2", { id: "h-kyc-docs" }, "KYC documents"),
    el("p", { class: "muted" }, "JPEG, PNG or PDF, up to 5 MB each; the venue keeps them encrypted."),
    el("div", { class: "field" }, el("label", { for: "kyc-doc-kind" }, "Document"), docKind),
    el("div", { class: "field" }, el("label", { for: "kyc-doc-file" }, "File"), docFile),
    docUpload, kycSubmit, docOut);
  const kycSay = (text: string, ok: boolean): void => {
    docOut.textContent = text;
    docOut.className = `form-out ${ok ? "up" : "down"}`;
  };
  docUpload.addEventListener("click", async () => {
    const file = docFile.files?.[0];
    if (!file) {
      kycSay("Choose a file first.", false);
      return;
    }
    const body = new FormData();
    body.append("kind", docKind.value);
    body.append("file", file, file.name);
    try {
      const saved = await sessionUpload<Row>("/user/kyc/document", body);
      kycSay(`Uploaded: ${String(saved.kind)} (${String(saved.contentType)}, ${String(saved.size)} bytes).`, true);
      docFile.value = "";
      await loadKyc();
    } catch (error) {
      kycSay(error instanceof Error ? error.message : String(error), false);
    }
  });
  kycSubmit.addEventListener("click", async () => {
    try {
      await sessionPost("/user/kyc/submit", {});
      kycSay("Sent for review: the status below follows the decision.", true);
      await loadKyc();
    } catch (error) {
      kycSay(error instanceof Error ? error.message : String(error), false);
    }
  });
  const signOut = el("button", { type: "button", class: "btn", id: "sign-out" }, "Sign out");
  const phrase = form("phrase", "Anti-phishing phrase", [["antiPhishingPhrase", "Phrase shown at the top of every mail we send you", "text", "off"]], "Save phrase", async (v, f) => {
    await sessionPost("/user/profile", v);
    say(f, "Saved: mails from us now start with it.");
  });
  // Preferences (POST /user/preferences, merged into what GET /user holds): the terminal applies
  // defaultSymbol (the market it opens on) and hideSmallBalances (the Wallet page).
  const prefSymbol = el("select", { id: "pref-symbol", name: "defaultSymbol" });
  const prefSmall = el("input", { type: "checkbox", id: "pref-small", name: "hideSmallBalances" });
  const prefSave = el("button", { type: "button", class: "btn primary", id: "pref-save" }, "Save preferences");
  const prefOut = el("p", { class: "form-out", id: "pref-out", "aria-live": "polite" });
  const prefsCard = el("section", { class: "card", id: "preferences", "aria-labelledby": "h-prefs" },
    el("h2", { id: "h-prefs" }, "Preferences"),
    el("div", { class: "field" }, el("label", { for: "pref-symbol" }, "Market the terminal opens on"), prefSymbol),
    el("label", { class: "inline" }, prefSmall, " Hide balances under 0.0001 on the Wallet page"),
    el("div", { class: "row" }, prefSave), prefOut);
  const fillPreferences = () => {
    const prefs = (user?.preferences ?? {}) as Row;
    const markets = app.markets().map((i) => i.symbol);
    prefSymbol.replaceChildren(el("option", { value: "" }, "(the first market)"), ...markets.map((m) => el("option", { value: m }, m)));
    prefSymbol.value = markets.includes(String(prefs.defaultSymbol ?? "")) ? String(prefs.defaultSymbol) : "";
    prefSmall.checked = prefs.hideSmallBalances === true;
  };
  prefSave.addEventListener("click", async () => {
    try {
      const saved = await sessionPost<Row>("/user/preferences", { prefs: { defaultSymbol: prefSymbol.value || null, hideSmallBalances: prefSmall.checked } });
      user = saved;
      savePreferences((saved.preferences ?? {}) as Record<string, unknown>);
      prefOut.textContent = "Preferences saved.";
      prefOut.className = "form-out up";
    } catch (error) {
      prefOut.textContent = error instanceof Error ? error.message : String(error);
      prefOut.className = "form-out down";
    }
  });
  // Email change: the password, then the token mailed to the new address (POST /user/confirmEmail).
  const emailChange = form("email-change", "Change email", [["email", "New email", "email", "email"], ["password", "Current password", "password", "current-password"]], "Mail me a token", async (v, f) => {
    const answer = await sessionPost<Row>("/user/requestEmailChange", v);
    f.inputs.password.value = "";
    say(f, `${String(answer.message ?? "Check your mail")}: paste it below.`);
  });
  const emailConfirm = form("email-confirm", "Confirm the new email", [["token", "Token from the mail to the new address", "text", "off"]], "Confirm new email", async (v, f) => {
    await sessionPost("/user/confirmEmail", v);
    f.inputs.token.value = "";
    await refresh();
    say(f, `Email changed to ${String(user?.email ?? "")}.`);
  });
  const password = form("password", "Change password", [["oldPassword", "Current password", "password", "current-password"], ["newPassword", "New password", "password", "new-password"]], "Change password", async (v, f) => {
    const answer = await sessionPost<Row>("/user/changePassword", v);
    saveCsrf(String(answer.csrfToken)); // the session was rotated
    say(f, "Password changed.");
  });
  signedIn.append(
    el("div", { class: "panel-head" }, el("h2", {}, "Profile"), signOut), profileBox,
    el("div", { class: "columns" }, keyCard, el("section", { class: "card", "aria-labelledby": "h-tfa" }, el("h2", { id: "h-tfa" }, "Two-factor authentication"), tfaBox)),
    passkeyCard,
    el("section", { class: "card", "aria-labelledby": "h-kyc" }, el("h2", { id: "h-kyc" }, "Verification (KYC)"),
      el("p", { class: "muted" }, "Your verification level sets what you may do and how much you may withdraw a day. To raise it: fill in the application, upload the documents still needed, then send it for review."),
      kycBox),
    el("div", { class: "columns" }, kycApplication.node, kycDocuments),
    el("h2", {}, "API keys"), keysBox, newKey.node,
    el("div", { class: "columns" }, phrase.node, password.node),
    el("div", { class: "columns three" }, prefsCard, emailChange.node, emailConfirm.node),
    el("h2", {}, "Sessions"), sessionsBox,
    el("h2", {}, "Security events"), auditBox,
  );

  const fail = (error: unknown) => app.toast(error instanceof ApiError ? error.message : String(error));

  signOut.addEventListener("click", async () => {
    try {
      await sessionPost("/user/logout", {});
    } catch {
      // an expired session is signed out already
    }
    saveCsrf("");
    await refresh();
  });

  function renderProfile(): void {
    if (!user) return;
    const facts: [string, string][] = [
      ["Email", String(user.email)], ["Account", String(user.id)], ["Two-factor", user.TFAEnabled === "GA" ? "On (authenticator app)" : user.TFAEnabled === "WebAuthn" ? "On (security key)" : "Off"],
      ["Country", String(user.country || "-")], ["Member since", String(user.created ?? "").slice(0, 10)],
    ];
    profileBox.replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  }

  function renderTfa(): void {
    if (!user) return;
    const code = el("input", { id: "tfa-code", inputmode: "numeric", autocomplete: "one-time-code" });
    const field = el("div", { class: "field" }, el("label", { for: "tfa-code" }, "Code from your authenticator app"), code);
    if (user.TFAEnabled === "GA") {
      const off = el("button", { type: "button", class: "btn", id: "tfa-disable" }, "Turn off");
      off.addEventListener("click", async () => {
        try {
          const answer = await sessionPost<Row>("/user/disableTFA", { token: code.value.trim() });
          saveCsrf(String(answer.csrfToken));
          await refresh();
        } catch (error) {
          fail(error);
        }
      });
      tfaBox.replaceChildren(el("p", { class: "up" }, "On: sign-in asks for a code."), field, off);
      return;
    }
    const start = el("button", { type: "button", class: "btn primary", id: "tfa-start" }, "Set up");
    start.addEventListener("click", async () => {
      try {
        const enrol = await sessionPost<Row>("/user/requestEnableTFA", { type: "GA" });
        const qr = el("img", { alt: "QR code of the authenticator secret", class: "qr", id: "tfa-qr" });
        qr.src = String(enrol.qr);
        const confirmButton = el("button", { type: "button", class: "btn primary", id: "tfa-confirm" }, "Turn on");
        confirmButton.addEventListener("click", async () => {
          try {
            const answer = await sessionPost<Row>("/user/confirmEnableTFA", { token: code.value.trim() });
            saveCsrf(String(answer.csrfToken));
            const codes = (answer.recoveryCodes as string[]) ?? [];
            await refresh();
            tfaBox.append(el("p", {}, "Recovery codes (each works once; keep them offline):"),
              el("pre", { class: "codes", id: "recovery-codes" }, codes.join("\n")));
          } catch (error) {
            fail(error);
          }
        });
        tfaBox.replaceChildren(el("p", { class: "muted" }, "Scan with an authenticator app, or enter the secret:"),
          qr, el("code", { class: "secret", id: "tfa-secret" }, String(enrol.secret)), field, confirmButton);
        code.focus();
      } catch (error) {
        fail(error);
      }
    });
    tfaBox.replaceChildren(el("p", { class: "muted" }, "Off. Turn it on to ask for a code from your phone at every sign-in."), start);
  }

  async function loadKeys(): Promise<void> {
    const keys = await sessionGet<Row[]>("/apiKey");
    const current = loadCredentials()?.key;
    keysBox.replaceChildren(grid(["Key", "Name", "Permissions", "Account", "Enabled", ""], keys.map((k) => {
      const remove = el("button", { type: "button", class: "btn small", "data-action": "delete-key" }, "Delete");
      remove.addEventListener("click", async () => {
        try {
          await sessionDelete("/apiKey", { apiKeyID: k.id });
          if (current === k.id) saveCredentials(null);
          await loadKeys();
        } catch (error) {
          fail(error);
        }
      });
      return el("tr", { "data-key": String(k.id) }, el("td", { class: "num" }, `${String(k.id)}${current === k.id ? " (this tab)" : ""}`), el("td", {}, String(k.name ?? "")),
        el("td", {}, (k.permissions as string[] | undefined)?.join(", ") || "read"), el("td", {}, String(k.targetAccountId ?? "")),
        el("td", {}, k.enabled ? "yes" : "no"), el("td", {}, remove));
    }), "No API keys.", "api-keys-table"));
  }

  async function loadPasskeys(): Promise<void> {
    const keys = await sessionGet<Row[]>("/user/webauthn");
    passkeysBox.replaceChildren(grid(["Name", "Added", ""], keys.map((k) => {
      const code = el("input", { class: "tiny", inputmode: "text", autocomplete: "one-time-code", "aria-label": `2FA or recovery code to remove ${String(k.name)}`, placeholder: "code", "data-passkey-code": "" });
      const remove = el("button", { type: "button", class: "btn small", "data-action": "remove-passkey" }, "Remove");
      remove.addEventListener("click", async () => {
        passkeyOut.replaceChildren();
        try {
          const answer = await sessionDelete<Row>("/user/webauthn", { id: k.id, token: code.value.trim() });
          saveCsrf(String(answer.csrfToken)); // the session was rotated
          passkeyOut.replaceChildren(el("p", { class: "up" }, `Security key "${String(k.name)}" removed.`));
          await refresh();
        } catch (error) {
          passkeyOut.replaceChildren(el("p", { class: "down" }, error instanceof Error ? error.message : String(error)));
        }
      });
      return el("tr", { "data-passkey": String(k.id) }, el("td", {}, String(k.name)), el("td", {}, String(k.created ?? "").slice(0, 10)), el("td", { class: "actions" }, code, remove));
    }), "No security keys.", "passkeys-table"));
  }

  async function loadKyc(): Promise<void> {
    let kyc: Row;
    try {
      kyc = await sessionGet<Row>("/user/kyc");
    } catch (error) {
      kycBox.replaceChildren(el("dt", {}, "Status"), el("dd", {}, error instanceof Error ? error.message : String(error)));
      return;
    }
    const allow = (kyc.allowances ?? {}) as Record<string, unknown>;
    const limits = Object.entries((allow.dailyWithdrawalLimit ?? {}) as Record<string, unknown>).map(([c, v]) => `${money(Number(v), c)}`).join(", ");
    const facts: [string, string, string][] = [
      ["Level", String(kyc.level), "level"],
      ["Application", `${String(kyc.status)}${kyc.requestedLevel ? ` (for level ${String(kyc.requestedLevel)})` : ""}`, "status"],
      ["Documents", ((kyc.documents as Row[] | undefined) ?? []).map((d) => String(d.kind)).join(", ") || "none", "documents"],
      ["Still needed", ((kyc.missingDocuments as string[] | undefined) ?? []).join(", ") || "nothing", "missing"],
      ["Allowed", ["trade", "deposit", "withdraw"].filter((k) => allow[k]).join(", ") || "nothing yet", "allowed"],
      ["Daily withdrawal limit", limits || "none", "limits"],
    ];
    kycBox.replaceChildren(...facts.flatMap(([k, v, key]) => [el("dt", {}, k), el("dd", { "data-kyc": key }, v)]));
    const missing = (kyc.missingDocuments as string[] | undefined) ?? [];
    if (missing.length && KYC_DOCUMENT_KINDS.some(([k]) => k === missing[0])) docKind.value = missing[0];
  }

  async function loadSessions(): Promise<void> {
    const sessions = await sessionGet<Row[]>("/user/sessions");
    sessionsBox.replaceChildren(grid(["Started", "Last seen", "Address", "Browser", ""], sessions.map((s) => {
      const revoke = el("button", { type: "button", class: "btn small", "data-action": "revoke" }, s.current ? "Sign out" : "Revoke");
      revoke.addEventListener("click", async () => {
        try {
          await sessionDelete("/user/sessions", { sessionId: s.id });
          await refresh();
        } catch (error) {
          fail(error);
        }
      });
      return el("tr", {}, el("td", {}, String(s.created).replace("T", " ").slice(0, 19)), el("td", {}, String(s.lastSeen).replace("T", " ").slice(0, 19)),
        el("td", {}, String(s.ip)), el("td", { class: "muted ua" }, `${s.current ? "(this one) " : ""}${String(s.userAgent).slice(0, 60)}`), el("td", {}, revoke));
    }), "No sessions.", "sessions-table"));
  }

  async function loadAudit(): Promise<void> {
    const rows = await sessionGet<Row[]>("/user/auditLog", { count: AUDIT_ROWS_SHOWN });
    auditBox.replaceChildren(grid(["Time", "Event", "By", "Address", "Detail"], rows.map((r) => el("tr", {},
      el("td", {}, String(r.timestamp).replace("T", " ").slice(0, 19)), el("td", {}, String(r.action)), el("td", {}, String(r.actor)),
      el("td", {}, String(r.ip)), el("td", { class: "muted" }, detailText(r.detail)))), "No events.", "audit-table"));
  }

  async function refresh(): Promise<void> {
    user = null;
    if (loadCsrf()) {
      try {
        user = await sessionGet<Row>("/user");
      } catch {
        saveCsrf(""); // the session ended (expired, revoked or signed out elsewhere)
      }
    }
    signedOut.hidden = user !== null;
    signedIn.hidden = user === null;
    document.getElementById("account-link")!.textContent = user ? String(user.email) : "Sign in";
    if (!user) return;
    renderProfile();
    renderTfa();
    renderTradingAs();
    fillPreferences();
    savePreferences((user.preferences ?? {}) as Record<string, unknown>);
    await Promise.all([loadKeys(), loadSessions(), loadAudit(), loadPasskeys(), loadKyc()]).catch(fail);
  }

  void refresh();
  return { show: () => void refresh() };
}
