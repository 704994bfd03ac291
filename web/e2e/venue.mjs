// @ts-check
// A real venue for the browser tests: `perpetua demo` as a subprocess (sequencer, journal,
// read models, gateway, index feeds and market-making bots) on a free port and a temporary
// data dir, its funded API key read from the banner; and Chromium driven by playwright-core.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(HERE, "..", "..");
export const ARTIFACTS = join(HERE, "artifacts");
export const BANNER_TIMEOUT_MS = 60_000;
export const STOP_TIMEOUT_MS = 30_000;
export const MARKETS = "XBTUSD,XBTUSDT,ETHUSD,ETHUSDT,XBT_USDT";
export const CHROMIUM = process.env.PERPETUA_CHROMIUM || "/usr/bin/chromium";
export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? done(address.port) : fail(new Error("no port"))));
    });
  });
}

export class Venue {
  /** @param {number} port @param {string} dataDir @param {string} host @param {string[]} extraArgs */
  constructor(port, dataDir, host = "127.0.0.1", extraArgs = []) {
    this.extraArgs = extraArgs;
    this.port = port;
    this.dataDir = dataDir;
    this.host = host;
    this.url = `http://127.0.0.1:${port}`;
    /** The venue's public address (its WebAuthn relying party): by name, as WebAuthn refuses IPs. */
    this.publicUrl = `http://${host}:${port}`;
    this.key = "";
    this.secret = "";
    /** @type {import("node:child_process").ChildProcess | null} */
    this.process = null;
    this.output = "";
  }

  /** @param {{ host?: string, extraArgs?: string[] }} [options] host "localhost" makes the public URL a name; extraArgs go to `perpetua demo` */
  static async start(options = {}) {
    const dataDir = mkdtempSync(join(tmpdir(), "perpetua-e2e-"));
    const venue = new Venue(await freePort(), dataDir, options.host, options.extraArgs);
    await venue.launch();
    return venue;
  }

  async launch() {
    const python = process.env.PERPETUA_PYTHON || join(REPO, ".venv", "bin", "python");
    const child = spawn(python, ["-m", "perpetua.cli", "demo", "--data-dir", this.dataDir, "--host", this.host, "--port", String(this.port),
      "--markets", MARKETS, "--seed", "7", "--status-interval", "60", ...this.extraArgs], {
      cwd: REPO, env: { ...process.env, PYTHONPATH: join(REPO, "src") }, stdio: ["ignore", "pipe", "pipe"],
    });
    this.process = child;
    child.stdout?.on("data", (chunk) => (this.output += chunk));
    child.stderr?.on("data", (chunk) => (this.output += chunk));
    const deadline = Date.now() + BANNER_TIMEOUT_MS;
    while (!this.output.includes("Ctrl-C stops")) {
      if (child.exitCode !== null || Date.now() > deadline) {
        this.kill();
        throw new Error(`perpetua demo did not start:\n${this.output}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    this.key = /API key\s+(\S+)/.exec(this.output)?.[1] ?? "";
    this.secret = /API secret\s+(\S+)/.exec(this.output)?.[1] ?? "";
    if (!this.key || !this.secret) throw new Error(`no API key in the banner:\n${this.output}`);
  }

  /** Ctrl-C, as an operator would; resolves with the exit code. */
  async stop() {
    const child = this.process;
    if (!child || child.exitCode !== null) return child?.exitCode ?? 0;
    const exited = new Promise((done) => child.once("exit", (code) => done(code)));
    child.kill("SIGINT");
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  kill() {
    if (this.process && this.process.exitCode === null) this.process.kill("SIGKILL");
  }

  async close() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** A signed REST call, exactly as any BitMEX client makes it. @param {string} verb @param {string} path @param {object} [body] */
  async api(verb, path, body) {
    const target = `/api/v1${path}`;
    const text = body ? JSON.stringify(body) : "";
    const expires = Math.floor(Date.now() / 1000) + 60;
    const signature = createHmac("sha256", this.secret).update(verb + target + expires + text).digest("hex");
    const response = await fetch(this.url + target, {
      method: verb, body: text || undefined,
      headers: { "content-type": "application/json", "api-key": this.key, "api-expires": String(expires), "api-signature": signature },
    });
    const json = await response.json();
    if (!response.ok) throw new Error(`${verb} ${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  }
}

export async function launchBrowser() {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/**
 * A page that records console errors and uncaught exceptions (the tests assert none).
 * @param {import("playwright-core").Browser} browser
 * @param {import("playwright-core").BrowserContextOptions} [options]
 */
export async function openPage(browser, options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`${message.text()} ${message.location().url}`.trim());
  });
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  return { context, page, errors };
}

/**
 * Visible text whose contrast with its background is under WCAG AA (4.5:1, or 3:1 for large
 * text), as "page: text colour ratio" lines. Disabled controls are exempt, as WCAG says.
 * @param {import("playwright-core").Page} page @param {string} name
 * @returns {Promise<string[]>}
 */
export function contrastFailures(page, name) {
  return page.evaluate((pageName) => {
    const rgba = (/** @type {string} */ c) => {
      const parts = (/rgba?\(([^)]+)\)/.exec(c)?.[1] ?? "0,0,0,0").split(",").map(Number);
      return { r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1 };
    };
    const channel = (/** @type {number} */ v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    const luminance = (/** @type {{r:number,g:number,b:number}} */ c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
    const background = (/** @type {Element | null} */ node) => {
      for (; node; node = node.parentElement) {
        const c = rgba(getComputedStyle(node).backgroundColor);
        if (c.a >= 0.99) return c;
      }
      return { r: 11, g: 15, b: 20, a: 1 };
    };
    const found = [];
    for (const node of document.querySelectorAll("body *")) {
      const element = /** @type {HTMLElement} */ (node);
      if (!element.getClientRects().length || element.closest("canvas, [hidden], dialog:not([open])")) continue;
      if (/** @type {HTMLButtonElement} */ (element).disabled) continue; // WCAG exempts inactive controls
      const own = [...element.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent?.trim());
      if (!own) continue;
      const style = getComputedStyle(element);
      if (style.visibility === "hidden" || Number(style.opacity) === 0) continue;
      const fg = rgba(style.color);
      const l1 = luminance(fg);
      const l2 = luminance(background(element));
      const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) found.push(`${pageName}: "${element.textContent?.trim().slice(0, 30)}" ${style.color} ratio ${ratio.toFixed(2)}`);
    }
    return found;
  }, name);
}

/** WCAG 2.1 A and AA rules of axe-core (pinned in package.json), the automated part of an audit. */
export const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
const AXE_SOURCE = join(HERE, "..", "node_modules", "axe-core", "axe.min.js");

/**
 * axe-core's WCAG A/AA violations on the page as it is now, as "page: rule (impact) selector:
 * summary" lines. The engine is evaluated through the DevTools protocol (page.evaluate), which
 * the venue's CSP does not govern, so the page is tested under its real policy.
 * @param {import("playwright-core").Page} page @param {string} name
 * @returns {Promise<string[]>}
 */
export async function axeViolations(page, name) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(readFileSync(AXE_SOURCE, "utf8"));
  const found = await page.evaluate(async (tags) => {
    const axe = /** @type {any} */ (window).axe;
    const result = await axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
    return result.violations.flatMap((/** @type {any} */ v) => v.nodes.map((/** @type {any} */ n) =>
      `${v.id} (${v.impact}) ${n.target.join(" ")}: ${String(n.failureSummary).replace(/\s+/g, " ").slice(0, 200)}`));
  }, AXE_TAGS);
  return found.map((line) => `${name}: ${line}`);
}
