// A damaged file downloaded from the console in chromium: the browser must see a failed
// download (not a complete file), and the page must say so. Run by tests/console_browser.rs
// with '<json config>' (url, password, chromium, dirs, file); prints one JSON line.
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2]);
const out = { errors: [] };
const browser = await chromium.launch({
  executablePath: cfg.chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on('pageerror', (e) => out.errors.push(String(e)));
  await page.goto(cfg.url);
  await page.fill('#password', cfg.password);
  await page.click('#login-button');
  await page.waitForSelector('#page-overview:not([hidden])');
  // No cookie at all: the session lives in this tab only.
  out.cookies = (await context.cookies()).length;
  await page.click('button[data-page=browse]');
  await page.waitForSelector('#browse-list tbody tr');
  for (const dir of cfg.dirs) {
    await page.click(`#browse-list tr[data-name="${dir}"] button.open`);
    await page.waitForSelector(`#browse-crumbs button:text-is("${dir} /")`);
  }
  const row = `#browse-list tr[data-name="${cfg.file}"]`;
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(`${row} button.download`)]);
  out.failure = await download.failure();
  await page.waitForSelector('#downloads li.dl-failed');
  out.line = await page.textContent('#downloads li.dl-failed');
  // A second tab of the same browser is not logged in: nothing to steal from a shared jar.
  const other = await context.newPage();
  await other.goto(cfg.url);
  await other.waitForSelector('#page-login:not([hidden])');
  out.second_tab_logged_out = true;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
