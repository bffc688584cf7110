import { Page } from '@playwright/test';
import { hostname } from 'node:os';
import { LicenseServer, expect, test } from './server';

/** Fails the test on any console error or uncaught exception: a CSP violation, a 404 asset, a
 * panic in the wasm app all show up here first. */
function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}

async function headers(page: Page, table: string): Promise<string[]> {
  const cells = page.getByRole('table', { name: table }).locator('thead th');
  return (await cells.allTextContents()).map((t) => t.trim());
}

test('shows this server with its hostname, port and coordinator mark, and two empty tables', async ({
  page,
  server,
}) => {
  const errors = watchConsole(page);
  const response = await page.goto(server.statusPage);
  expect(response?.status()).toBe(200);
  expect(response?.headers()['content-security-policy']).toContain("'wasm-unsafe-eval'");

  const servers = page.getByRole('table', { name: 'Servers' });
  await expect(servers.locator('tbody tr')).toHaveCount(1);
  expect(await headers(page, 'Servers')).toEqual(['Version', 'Status', 'Hostname', 'Port', 'S/N', 'Started']);
  const row = servers.locator('tbody tr').first();
  // The test binary is a development build (it trusts run-time vendor keys): the row says so.
  await expect(row.locator('td').nth(0)).toHaveText(/^\d+\.\d+\.\d+ development build$/);
  await expect(row.locator('td').nth(0).locator('.badge.warn')).toHaveAttribute('title', /not for production/i);
  await expect(row.locator('td').nth(1)).toHaveText(/^running\*/);
  await expect(row.locator('td').nth(2)).toHaveText(hostname());
  await expect(row.locator('td').nth(3)).toHaveText(String(server.licensePort));
  await expect(row.locator('td').nth(5)).toHaveText(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);

  // The session statistics under one Sessions header, as in the reference layout.
  expect(await headers(page, 'Cartridges')).toEqual([
    'Product', 'Runcount', 'Credits', 'Sessions', 'Runcount', 'Credits', 'Failures', 'Dropped',
  ]);
  await expect(page.getByRole('table', { name: 'Cartridges' }).locator('th[scope="colgroup"]')).toHaveAttribute('colspan', '4');
  await expect(page.getByRole('table', { name: 'Cartridges' }).locator('tbody')).toHaveText(/No cartridges/);
  expect(await headers(page, 'Sessions')).toEqual([
    'Session ID', 'Product ID', 'Status', 'Host', 'Product', 'Type', 'Started', 'Ended', 'Duration', 'User',
  ]);
  await expect(page.getByRole('table', { name: 'Sessions' }).locator('tbody')).toHaveText('No sessions.');

  await expect(page.getByText(/^Last updated \d\d:\d\d:\d\d$/)).toBeVisible();
  // Times are the browser's; the page says in which zone.
  const zone = await page.evaluate(() => -new Date().getTimezoneOffset());
  await expect(page.locator('.topbar .zone')).toHaveText(zone === 0 ? 'Times in UTC' : /^Times in UTC[+−]\d+(:\d\d)?$/);
  await expect(page.getByRole('alert')).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('the root and /status/ lead to the status page', async ({ page, server }) => {
  for (const path of ['/', '/status/']) {
    await page.goto(server.apiUrl + path);
    await expect(page).toHaveURL(server.statusPage);
    await expect(page.getByRole('heading', { name: 'Servers' })).toBeVisible();
  }
});

test('the status page loads its own small bundle; Admin and Status page links cross to the other', async ({
  page,
  server,
}) => {
  const errors = watchConsole(page);
  const wasm: { url: string; bytes: number }[] = [];
  page.on('response', async (response) => {
    if (response.url().endsWith('.wasm')) {
      wasm.push({ url: new URL(response.url()).pathname, bytes: Number(response.headers()['content-length'] ?? 0) });
    }
  });
  await page.goto(server.statusPage);
  await expect(page.getByRole('heading', { name: 'Servers' })).toBeVisible();
  expect(wasm.map((w) => w.url)).toEqual([expect.stringMatching(/^\/assets\/status\/status-[0-9a-f]+_bg\.wasm$/)]);

  // The admin screens are another bundle: the link loads their page, not a route of this one.
  await page.getByRole('link', { name: 'Admin' }).click();
  await expect(page.getByRole('button', { name: 'Log in' })).toBeVisible();
  expect(wasm.map((w) => w.url)).toEqual([
    expect.stringMatching(/^\/assets\/status\//),
    expect.stringMatching(/^\/assets\/admin\/admin-[0-9a-f]+_bg\.wasm$/),
  ]);
  const [status, admin] = wasm.map((w) => w.bytes);
  test.info().annotations.push({ type: 'wasm as served (br)', description: `status ${status} bytes, admin ${admin} bytes` });
  console.log(`wasm as served (br): status ${status} bytes, admin ${admin} bytes`);
  expect(status).toBeGreaterThan(0);
  expect(status).toBeLessThan(admin);

  await page.getByRole('link', { name: 'Status page' }).click();
  await expect(page).toHaveURL(server.statusPage);
  await expect(page.getByRole('heading', { name: 'Servers' })).toBeVisible();
  expect(errors).toEqual([]);
});

test('refreshes on its own without re-creating unchanged rows', async ({ page, server }) => {
  await page.goto(server.statusPage);
  const updated = page.getByText(/^Last updated/);
  await expect(updated).toHaveText(/\d\d:\d\d:\d\d$/);
  const row = await page.getByRole('table', { name: 'Servers' }).locator('tbody tr').first().elementHandle();
  const first = await updated.textContent();
  // The next poll changes the time; the server row, unchanged, must be the same DOM node.
  await expect(updated).not.toHaveText(first!, { timeout: 10_000 });
  expect(await row!.evaluate((element) => element.isConnected)).toBe(true);
});

test('says when the server cannot be reached, keeps the last data, and recovers', async ({ page, server }) => {
  await page.goto(server.statusPage);
  const servers = page.getByRole('table', { name: 'Servers' });
  await expect(servers.locator('tbody tr td').nth(2)).toHaveText(hostname());

  await server.stop();
  const alert = page.getByRole('alert');
  await expect(alert).toContainText('The license server cannot be reached');
  await expect(alert).toContainText('retrying');
  await expect(servers.locator('tbody tr td').nth(2)).toHaveText(hostname());

  const again: LicenseServer = await server.restart();
  try {
    await expect(alert).toHaveCount(0);
    await expect(servers.locator('tbody tr td').nth(1)).toHaveText(/^running\*/);
  } finally {
    await again.stop();
  }
});

test('fits a 390 px wide phone: tables scroll inside their panels, not the page', async ({ page, server }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(server.statusPage);
  await expect(page.getByRole('table', { name: 'Servers' }).locator('tbody tr td').nth(2)).toHaveText(hostname());
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
});

test('a data directory copied to another machine says so in a banner naming both server ids', async ({
  page,
  server,
}, testInfo) => {
  const { cpSync, mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  await server.stop();
  const copy = path.join(mkdtempSync(path.join(tmpdir(), 'license-server-copy-')), 'data');
  cpSync(server.dataDir, copy, { recursive: true });
  rmSync(path.join(copy, 'server.lock'), { force: true });
  // A development build's switch: this process pretends to run on another machine.
  const elsewhere = await LicenseServer.start({
    dataDir: copy,
    env: { LICENSE_SERVER_DEV_SIMULATE_HOST: 'another machine' },
  });
  try {
    expect(elsewhere.serverId).not.toBe(server.serverId);
    await page.goto(elsewhere.statusPage);
    const banner = page.locator('#moved-banner');
    await expect(banner).toContainText('moved from another machine');
    await expect(banner).toContainText(server.serverId);
    await expect(banner).toContainText(elsewhere.serverId);
    await expect(banner).toContainText('stop granting at');
    await page.screenshot({ path: testInfo.outputPath('moved-banner.png'), fullPage: true });
  } finally {
    await elsewhere.stop();
    rmSync(path.dirname(copy), { recursive: true, force: true });
  }
});
