// The Usage screen: the server's usage report drawn as charts with axes, a legend and hover
// values, the tables per product, refusal reason, host and user, every choice in the address,
// and the CSV of what is shown.

import { readFileSync } from 'node:fs';
import { expect, logIn, openSession, screenshot, test } from './server';

const TOOLBOX = '1000:10:callas pdfToolbox CLI:2:0';
const SPARE = '2000:1:Spare Tool:5:0';

test('usage: grants, peaks and a refusal per product, the busiest hosts and users, hover values, filters in the address, CSV', async ({
  page,
  server,
  vendor,
}, testInfo) => {
  server.install(vendor.issue(server.serverId, ['--product-spec', TOOLBOX, '--product-spec', SPARE]));
  await server.waitForCartridges(2);
  const user = (principal: string) => ({ realm: 'corp', principal });
  await openSession(server, { host: 'ci-1', message: 'e2e', user: user('alice') }, [1000, 10]);
  await openSession(server, { host: 'ci-2', message: 'e2e', user: user('bob') }, [1000, 10]);
  await openSession(server, { host: 'ci-2', message: 'e2e', user: user('bob') }, [2000, 1]);
  // Both seats are taken: this one is refused.
  const third = await openSession(server, { host: 'ci-3', message: 'e2e' });
  const refused = await fetch(`http://127.0.0.1:${server.licensePort}/v1/sessions/${third.id}/licenses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${third.token}` },
    body: JSON.stringify({ request_id: 'r1', product_id: 1000, major_version: 10, wait_s: 0 }),
  });
  expect(refused.status, await refused.clone().text()).toBe(409);

  await page.goto(`${server.apiUrl}/admin/usage`);
  await logIn(page, server);
  await expect(page.getByRole('heading', { name: 'Usage', level: 2 })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Last 7 days' })).toHaveAttribute('aria-pressed', 'true');
  await expect(page.locator('#usage-title')).toContainText('by the hour');

  const toolbox = page.locator('#usage-cartridges tbody tr', { hasText: 'callas pdfToolbox CLI 10' });
  // Seats licensed, most at once, license time, grants, refusals.
  await expect(toolbox.locator('td').nth(1)).toHaveText('2');
  await expect(toolbox.locator('td').nth(2)).toHaveText('2');
  await expect(toolbox.locator('td').nth(4)).toHaveText('2');
  await expect(toolbox.locator('td').nth(5)).toHaveText('1');
  await expect(page.locator('#usage-refusals tr[data-reason="no_seat_free"] td').nth(1)).toHaveText('1');
  await expect(page.locator('#usage-hosts')).toContainText('ci-1');
  await expect(page.locator('#usage-hosts')).toContainText('ci-2');
  await expect(page.locator('#usage-users')).toContainText('alice (corp)');

  // The chart: both products in the legend, a value axis, time labels, and the last hour's
  // values under the pointer.
  const chart = page.locator('#chart-in-use');
  await expect(chart.locator('.legend')).toContainText('callas pdfToolbox CLI 10');
  await expect(chart.locator('.legend')).toContainText('Spare Tool 1');
  expect(await chart.locator('text.tick').count()).toBeGreaterThan(6);
  const svg = chart.locator('svg');
  await svg.scrollIntoViewIfNeeded();
  const box = (await svg.boundingBox())!;
  // The plot ends 12 of the chart's 720 units before its right edge (usage_chart.rs): 2 units
  // inside it is the last hour, the one now.
  await svg.hover({ position: { x: (box.width * 706) / 720, y: box.height / 2 } });
  await expect(chart.locator('.hover')).toContainText('callas pdfToolbox CLI 10 2');
  await expect(chart.locator('.hover')).toContainText('Spare Tool 1 1');
  await screenshot(page, testInfo, 'usage-week');

  // A month, by the day: in the address.
  await page.getByRole('button', { name: 'Last 30 days' }).click();
  await expect(page).toHaveURL(/range=month/);
  await expect(page.locator('#usage-title')).toContainText('by the day');

  // One host, chosen from the table: its grants only, and (hosts and users being totalled
  // apart) no users.
  await page.locator('#usage-hosts').getByRole('button', { name: 'ci-2' }).click();
  await expect(page).toHaveURL(/host=ci-2/);
  await expect(toolbox.locator('td').nth(3)).toHaveText('1');
  await expect(page.locator('section', { has: page.locator('#usage-users-title') })).toContainText('None in this report');
  // The address alone brings the same view back.
  await page.reload();
  await expect(page.getByRole('button', { name: 'Last 30 days' })).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByRole('textbox', { name: 'Host' })).toHaveValue('ci-2');
  await expect(toolbox.locator('td').nth(3)).toHaveText('1');
  await screenshot(page, testInfo, 'usage-host');

  // The CSV of what is shown: a row per product and day.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download CSV' }).click(),
  ]);
  const csv = readFileSync((await download.path())!, 'utf8').trim().split('\n');
  expect(csv[0]).toBe('start,pool,product_id,major_version,product,most_in_use,average_in_use,grants,refusals,credits_used');
  expect(csv.length - 1).toBe(2 * 30);  // 30 days, today the last
  expect(csv.filter((row) => row.includes(',1000,10,')).map((row) => Number(row.split(',')[7])).reduce((a, b) => a + b)).toBe(1);

  // A custom range with nothing in it says so.
  await page.getByRole('button', { name: 'Clear filters' }).click();
  await page.getByRole('textbox', { name: 'From', exact: true }).fill('2025-01-01');
  await page.getByRole('textbox', { name: 'To (not included)' }).fill('2025-01-08');
  await page.getByRole('button', { name: 'Show range' }).click();
  await expect(page).toHaveURL(/range=custom&from=2025-01-01&to=2025-01-08/);
  await expect(page.getByText('No license was granted or refused in this range.')).toBeVisible();
});
