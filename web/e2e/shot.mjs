// Manual look: node e2e/shot.mjs URL KEY SECRET OUT.png [width height]
import { chromium } from "playwright-core";
const [url, key, secret, out, width = "1600", height = "900"] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.PERPETUA_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
const page = await browser.newPage({ viewport: { width: Number(width), height: Number(height) } });
page.on("console", (m) => console.log("console", m.type(), m.text()));
page.on("pageerror", (e) => console.log("pageerror", e.message));
await page.goto(url);
if (key) {
  await page.click("#key-button");
  await page.fill("#key-id", key);
  await page.fill("#key-secret", secret);
  await page.click("#key-save");
}
await page.waitForTimeout(4000);
await page.screenshot({ path: out, fullPage: false });
await browser.close();
