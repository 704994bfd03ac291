// @ts-check
// A real venue for the browser tests: `perpetua demo` as a subprocess (sequencer, journal,
// read models, gateway, index feeds and market-making bots) on a free port and a temporary
// data dir, its funded API key read from the banner; and Chromium driven by playwright-core.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
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
export const MARKETS = "XBTUSD,XBTUSDT,ETHUSD,ETHUSDT";
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
  /** @param {number} port @param {string} dataDir */
  constructor(port, dataDir) {
    this.port = port;
    this.dataDir = dataDir;
    this.url = `http://127.0.0.1:${port}`;
    this.key = "";
    this.secret = "";
    /** @type {import("node:child_process").ChildProcess | null} */
    this.process = null;
    this.output = "";
  }

  static async start() {
    const dataDir = mkdtempSync(join(tmpdir(), "perpetua-e2e-"));
    const venue = new Venue(await freePort(), dataDir);
    await venue.launch();
    return venue;
  }

  async launch() {
    const python = process.env.PERPETUA_PYTHON || join(REPO, ".venv", "bin", "python");
    const child = spawn(python, ["-m", "perpetua.cli", "demo", "--data-dir", this.dataDir, "--port", String(this.port),
      "--markets", MARKETS, "--seed", "7", "--status-interval", "60"], {
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
