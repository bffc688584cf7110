// Live push: the status page and the admin Sessions screen follow /status/events (Server-Sent
// Events). A grant shows without a reload and without a poll; when the stream is blocked, the
// pages poll as before.

import { Page, Request } from '@playwright/test';
import { LicenseServer, expect, openSession, screenshot, test } from './server';

const TOOLBOX = '1000:10:callas pdfToolbox CLI:4:0';
/** The pages' poll interval (app/src/poll.rs): a wait longer than this would have seen a poll. */
const POLL_MS = 3_000;

/** The status documents and pages of sessions the page fetched, as they happen. */
function fetched(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (request: Request) => {
    const path = new URL(request.url()).pathname;
    if (path === '/status/data.json' || path === '/status/sessions.json') urls.push(path);
  });
  return urls;
}

/** Opens a session on the license port and takes one license of pdfToolbox 10. */
async function grant(server: LicenseServer, host: string): Promise<void> {
  await openSession(server, { host, message: 'live' }, [1000, 10]);
}

/** Milliseconds (browser clock) at which `selector`'s text first matches `text` from now on. */
async function watchText(page: Page, selector: string, text: string): Promise<void> {
  await page.evaluate(
    ([selector, text]) => {
      const w = window as unknown as { seenAt?: number };
      delete w.seenAt;
      const observer = new MutationObserver(() => {
        if (document.querySelector(selector)?.textContent?.trim() === text) {
          w.seenAt = Date.now();
          observer.disconnect();
        }
      });
      observer.observe(document.body, { subtree: true, childList: true, characterData: true });
    },
    [selector, text],
  );
}

async function seenAt(page: Page): Promise<number> {
  return page.evaluate(() => (window as unknown as { seenAt: number }).seenAt);
}

test('the status page shows a grant pushed by the server, without a reload and without polling', async ({
  page,
  server,
  vendor,
}, testInfo) => {
  server.install(vendor.issue(server.serverId, ['--product-spec', TOOLBOX]));
  await server.waitForCartridges(1);
  const urls = fetched(page);
  await page.goto(server.statusPage);
  const cartridge = page.getByRole('table', { name: 'Cartridges' }).locator('tbody tr').first();
  await expect(cartridge.locator('td').nth(1)).toHaveText('0 / 4');
  await expect(page.locator('.topbar .live-mark')).toHaveText('live');

  // While the stream is open, the page asks for nothing: longer than a poll interval, no fetch.
  const before = urls.length;
  await page.waitForTimeout(POLL_MS + 1_000);
  expect(urls.slice(before), 'fetched while the stream was open').toEqual([]);

  await watchText(page, '#cartridges tbody tr td:nth-child(2)', '1 / 4');
  const sent = Date.now();
  await grant(server, 'live-host');
  const acknowledged = Date.now();
  await expect(cartridge.locator('td').nth(1)).toHaveText('1 / 4');
  const session = page.getByRole('table', { name: 'Sessions' }).locator('tbody tr').first();
  await expect(session.locator('td').nth(3).locator('.host')).toHaveText('live-host');
  await expect(session.locator('td').nth(2)).toHaveText('running');
  // The cartridges came in the pushed document (no data.json); the sessions table fetched its
  // page because the push said the sessions changed.
  expect(urls.slice(before)).not.toContain('/status/data.json');
  expect(urls.slice(before)).toContain('/status/sessions.json');
  const shownAfter = (await seenAt(page)) - acknowledged;
  testInfo.annotations.push({
    type: 'latency',
    description: `cartridge shown ${shownAfter} ms after the grant was acknowledged (${acknowledged - sent} ms to grant)`,
  });
  console.log(`status page: the grant showed ${shownAfter} ms after its acknowledgement`);
  // Far below a poll interval: it can only have been pushed.
  expect(shownAfter).toBeLessThan(POLL_MS);
  await screenshot(page, testInfo, 'status-live');
});

test('the admin Sessions screen shows a new session pushed by the server', async ({ page, server, vendor }, testInfo) => {
  server.install(vendor.issue(server.serverId, ['--product-spec', TOOLBOX]));
  await server.waitForCartridges(1);
  await page.goto(`${server.apiUrl}/admin/sessions`);
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill(server.adminPassword());
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/admin\/sessions$/);
  await expect(page.locator('#sessions .live-mark')).toHaveText('live');
  const rows = page.getByRole('table', { name: 'Sessions' }).locator('tbody tr');
  await expect(rows.first()).toHaveText(/No sessions/);

  const urls = fetched(page);
  await page.waitForTimeout(POLL_MS + 1_000);
  expect(urls, 'fetched while the stream was open').toEqual([]);

  await grant(server, 'pushed-host');
  await expect(rows.first().locator('td').nth(3).locator('.host')).toHaveText('pushed-host');
  await expect(rows.first().getByRole('button', { name: 'Release' })).toBeVisible();
  expect(urls).toEqual(['/status/sessions.json']);
  await screenshot(page, testInfo, 'admin-sessions-live');
});

test('with the stream blocked, the status page polls and still shows a grant', async ({ page, server, vendor }) => {
  server.install(vendor.issue(server.serverId, ['--product-spec', TOOLBOX]));
  await server.waitForCartridges(1);
  await page.route(/\/status\/events/, (route) => route.abort());
  const urls = fetched(page);
  await page.goto(server.statusPage);
  const cartridge = page.getByRole('table', { name: 'Cartridges' }).locator('tbody tr').first();
  await expect(cartridge.locator('td').nth(1)).toHaveText('0 / 4');
  await grant(server, 'polled-host');
  await expect(cartridge.locator('td').nth(1)).toHaveText('1 / 4');
  await expect(page.getByRole('table', { name: 'Sessions' }).locator('tbody tr').first().locator('td').nth(3).locator('.host')).toHaveText(
    'polled-host',
  );
  await expect(page.locator('.live-mark')).toHaveCount(0);
  await expect(page.getByRole('alert')).toHaveCount(0);
  // Polled: more than the first load's one document.
  expect(urls.filter((u) => u === '/status/data.json').length).toBeGreaterThan(1);
});
