import { LicenseNetwork, expect, test } from './server';

test('a failover network shows three servers, one the coordinator, and a killed member unreachable', async ({
  page,
  vendor,
}, testInfo) => {
  const network = await LicenseNetwork.start(vendor, 3, ['7:0:Runner:2:0']);
  try {
    const [first] = network.members;
    await page.goto(first.statusPage);
    const rows = page.getByRole('table', { name: 'Servers' }).locator('tbody tr');
    await expect(rows).toHaveCount(3);
    // Every member running, exactly one of them marked as the coordinator.
    await expect(rows.locator('td:nth-child(2)', { hasText: /^running\*/ })).toHaveCount(1);
    await expect(rows.locator('td:nth-child(2)', { hasText: /^running$/ })).toHaveCount(2);
    // The license installed on the first member counts on every member.
    await expect(page.getByRole('table', { name: 'Cartridges' }).locator('tbody tr')).toHaveCount(1);
    await page.screenshot({ path: testInfo.outputPath('network-three-servers.png'), fullPage: true });

    // A member that is not the one this page asks is killed: its row says so.
    const gone = network.members[2];
    await gone.kill();
    const goneRow = rows.filter({ has: page.locator('td:nth-child(4)', { hasText: String(gone.licensePort) }) });
    await expect(goneRow.locator('td:nth-child(2)')).toHaveText(/^unreachable/, { timeout: 20_000 });
    // The two left still have a coordinator (one running*), and the page still works.
    await expect(rows.locator('td:nth-child(2)', { hasText: /^running\*/ })).toHaveCount(1, { timeout: 20_000 });
    await page.screenshot({ path: testInfo.outputPath('network-member-unreachable.png'), fullPage: true });
  } finally {
    await network.stop();
  }
});
