// Drives Debian's chromium (headless, through playwright-core) against a running
// `bmbackup console`, as an admin would use it. Run by tests/console_browser.rs, which made
// the store and checks the results on disk; this script prints one JSON line of what it saw.
// Usage: node console.mjs '<json config>' (url, password, chromium, host, part, dirs,
// file, download_to, user, screenshots).
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2]);
const out = { errors: [] };
const fail = (msg) => { throw new Error(msg); };
// A function, not a string: the console's CSP forbids evaluating strings, even the test's.
const finished = (sel) => ['complete', 'partial', 'failed'].includes(document.querySelector(sel).textContent);

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on('pageerror', (e) => out.errors.push(String(e)));
  // A CSP violation (an inline script or style) shows as a console error; the answers the
  // test provokes on purpose (401 wrong password, 429 backoff) only as failed loads.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) out.errors.push(m.text());
  });

  // A wrong password is refused, and nothing behind the login shows.
  await page.goto(cfg.url);
  await page.fill('#password', 'not the password');
  await page.click('#login-button');
  await page.waitForFunction(() => document.querySelector('#login-error').textContent.length > 0);
  out.refused = await page.textContent('#login-error');
  out.nav_hidden_after_refusal = await page.isHidden('#nav');

  // The right one, once the per-client wait after a failure is over.
  for (let i = 0; ; i++) {
    await page.fill('#password', cfg.password);
    await page.click('#login-button');
    try {
      await page.waitForSelector('#page-overview:not([hidden])', { timeout: 2500 });
      break;
    } catch (e) {
      out.login_retries = i + 1;
      if (i > 8) fail('login with the right password failed: ' + await page.textContent('#login-error'));
      await page.waitForTimeout(1000);
    }
  }
  await page.waitForSelector('#overview tbody tr');
  await page.waitForFunction(() => !document.querySelector('#ov-store').textContent.includes('computed'), null, { timeout: 30000 }).catch(() => {});
  out.overview = await page.textContent('#overview tbody');
  await page.screenshot({ path: cfg.screenshots + '/overview.png', fullPage: true });

  // Browse: last night's snapshot of the part, down to the file, download it.
  await page.click('button[data-page=timeline]');
  await page.waitForSelector('#timeline .row');
  out.timeline_days = await page.locator('#timeline .day.complete').count();
  await page.click('button[data-page=browse]');
  await page.waitForSelector('#browse-list tbody tr');
  // A part, then its newest date (the default).
  await page.selectOption('#browse-part', cfg.host + '/' + cfg.part);
  await page.waitForSelector('#browse-list tbody tr');
  out.snapshot_label = await page.$eval('#browse-snapshot', (s) => s.options[s.selectedIndex].textContent);
  out.date_options = await page.locator('#browse-snapshot option').count();
  out.owner_cell = await page.textContent('#browse-list tbody tr td:nth-child(4)');
  for (const dir of cfg.dirs) {
    await page.click(`#browse-list tr[data-name="${dir}"] button.open`);
    await page.waitForSelector(`#browse-crumbs button:text-is("${dir} /")`);
  }
  const row = `#browse-list tr[data-name="${cfg.file}"]`;
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(`${row} button.download`)]);
  await download.saveAs(cfg.download_to);
  out.download_name = download.suggestedFilename();
  out.download_failure = await download.failure();
  await page.waitForSelector('#downloads li.dl-done');
  out.download_line = await page.textContent('#downloads li');
  await page.click(`${row} button.history`);
  await page.waitForSelector('#history:not([hidden]) tbody tr');
  out.history_rows = await page.locator('#history tbody tr').count();
  await page.screenshot({ path: cfg.screenshots + '/browse.png', fullPage: true });

  // The restore wizard: a user's mailbox, found by searching, at the newest date (after
  // trying the D-7 shortcut), into a new Restored- folder; then the next step is shown.
  await page.click('button[data-page=restore]');
  await page.check('input[name=kind][value=user]');
  await page.waitForSelector('#wiz-objects button.object');
  await page.fill('#wiz-search', cfg.user.split('@')[0]);
  await page.click(`#wiz-objects button.object[data-name="${cfg.user}"]`);
  await page.waitForSelector('#wiz-date option', { state: 'attached' });
  out.dates = await page.$$eval('#wiz-date option', (os) => os.map((o) => o.textContent));
  await page.click('button.shortcut[data-days="7"]');
  out.d7 = await page.$eval('#wiz-date', (s) => s.options[s.selectedIndex].textContent);
  await page.selectOption('#wiz-date', { index: 0 });
  await page.click('#wiz-plan');
  await page.waitForSelector('#wiz-plan-out p');
  out.plan = await page.textContent('#wiz-plan-out');
  await page.click('#wiz-run');
  await page.waitForFunction(finished, '#wiz-status', { timeout: 120000 });
  out.restore = await page.textContent('#wiz-status');
  out.restore_progress = await page.$eval('#wiz-progress', (p) => p.value);
  out.restore_log = await page.textContent('#wiz-log');
  out.restore_figures = await page.textContent('#wiz-figures');
  await page.waitForSelector('#wiz-next:not([hidden])');
  out.next_commands = await page.textContent('#wiz-commands');
  out.copy_button = await page.isVisible('#wiz-copy');
  await page.screenshot({ path: cfg.screenshots + '/wizard.png', fullPage: true });

  // Past runs, and a check of the store from the console.
  await page.click('button[data-page=runs]');
  await page.waitForSelector('#runs tbody tr');
  out.runs_rows = await page.locator('#runs tbody tr').count();
  await page.click('#check-run');
  await page.waitForFunction(() => ['no damage', 'DAMAGE FOUND'].includes(document.querySelector('#check-status').textContent), null, { timeout: 120000 });
  out.check = await page.textContent('#check-status');
  await page.waitForFunction(() => document.querySelector('#check-last').textContent.includes('passed'));
  out.check_last = await page.textContent('#check-last');
  await page.screenshot({ path: cfg.screenshots + '/runs.png', fullPage: true });
  out.favicon = (await page.request.get(cfg.url + 'favicon.svg')).status();

  // Back up now, and watch it finish.
  await page.click('button[data-page=backup]');
  await page.waitForSelector('#policy table');
  await page.click('#backup-run');
  await page.waitForFunction(finished, '#backup-status', { timeout: 300000 });
  out.backup = await page.textContent('#backup-status');
  out.backup_log = await page.textContent('#backup-log');
  await page.screenshot({ path: cfg.screenshots + '/backup.png', fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
