// make docs-check: the /docs page of `make up` in Debian's headless Chromium (playwright-core,
// no browser of its own). It checks that the page lists every operation of /openapi.json, loads
// nothing from another origin, and that a sign-in made from the page authorises the calls that
// follow: POST /api/auth/login with "Try it out", then GET /api/matches answers 200. Saves a
// screenshot to docs/api-docs.png. Exit status non-zero on any failure.
import { chromium } from "playwright-core";
import { fileURLToPath } from "node:url";
import path from "node:path";

const base = process.env.BASE_URL || "http://127.0.0.1:9000";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const shot = process.env.SCREENSHOT || path.join(root, "docs/api-docs.png");
const results = [];
const check = (name, ok, detail = "") => {
  results.push(ok);
  console.log(`[docs-check] ${ok ? "ok  " : "FAIL"} ${name}${detail ? ": " + detail : ""}`);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const origin = new URL(base).origin;
  const foreign = [];
  const errors = [];
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith("data:") && new URL(u).origin !== origin) foreign.push(u);
  });
  page.on("pageerror", (e) => errors.push(String(e)));

  const response = await page.goto(`${base}/docs`, { waitUntil: "networkidle" });
  check("GET /docs answers 200 with HTML", response.status() === 200, `${response.status()}`);
  await page.waitForSelector(".opblock", { timeout: 30000 });

  // Every operation of the document is on the page.
  const spec = await (await fetch(`${base}/openapi.json`)).json();
  const expected = Object.entries(spec.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`));
  const listed = await page.$$eval(".opblock", (blocks) =>
    blocks.map((b) => {
      const method = b.querySelector(".opblock-summary-method")?.textContent.trim();
      const el = b.querySelector(".opblock-summary-path");
      const p = (el?.getAttribute("data-path") || el?.textContent || "").replace(/\u200b/g, "").trim();
      return `${method} ${p}`;
    }),
  );
  const missing = expected.filter((op) => !listed.includes(op));
  check(`the page lists every operation (${expected.length})`, missing.length === 0 && listed.length === expected.length,
    missing.length ? `missing ${missing.join(", ")}` : `${listed.length} listed`);

  const operation = (method, p) =>
    page.locator(`.opblock-${method}`, { has: page.locator(`.opblock-summary-path[data-path="${p}"]`) });

  // Sign in from the page.
  const login = operation("post", "/api/auth/login");
  await login.locator(".opblock-summary").first().click();
  const body = login.locator("textarea.body-param__text");
  await body.waitFor({ timeout: 10000 });
  await body.fill(JSON.stringify({ username: process.env.DOCS_USER || "test_user", password: process.env.DOCS_PASSWORD || "test_password" }));
  await login.locator("button.execute").click();
  const loginStatus = login.locator(".live-responses-table tbody .response-col_status").first();
  await loginStatus.waitFor({ timeout: 30000 });
  const loginCode = (await loginStatus.textContent()).trim();
  check("POST /api/auth/login from the page", loginCode.startsWith("200"), loginCode);
  await login.locator(".opblock-summary").first().click(); // fold it again

  // The sign-in authorised the page: GET /api/matches answers 200.
  const matches = operation("get", "/api/matches");
  await matches.locator(".opblock-summary").first().click();
  const limit = matches.locator('tr[data-param-name="limit"] input');
  if (await limit.count()) await limit.first().fill("5");
  await matches.locator("button.execute").click();
  const status = matches.locator(".live-responses-table tbody .response-col_status").first();
  await status.waitFor({ timeout: 30000 });
  const code = (await status.textContent()).trim();
  const curl = (await matches.locator(".curl-command").first().textContent().catch(() => "")) || "";
  check("GET /api/matches from the page, authorised by that sign-in", code.startsWith("200") && /authorization: Bearer /i.test(curl), code);
  const text = (await matches.locator(".live-responses-table .response-col_description pre").first().textContent()) || "";
  check("the answer is a page of matches", text.includes('"items"') && text.includes("match_"), text.slice(0, 80).replace(/\s+/g, " "));

  check("nothing loaded from another origin", foreign.length === 0, foreign.join(", "));
  check("no script error on the page", errors.length === 0, errors.join(" | "));

  await matches.scrollIntoViewIfNeeded();
  await page.evaluate(() => window.scrollBy(0, -120));
  await page.screenshot({ path: shot });
  console.log(`[docs-check] screenshot: ${path.relative(root, shot)}`);
} finally {
  await browser.close();
}
const failed = results.filter((ok) => !ok).length;
console.log(`docs-check: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
