import { expect, test } from './server';

const THIN = '\u202f';

test('a license installed with the CLI appears in the Cartridges table without a reload', async ({
  page,
  server,
  vendor,
}) => {
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(server.statusPage);
  const table = page.getByRole('table', { name: 'Cartridges' });
  await expect(table.locator('tbody')).toHaveText(/No cartridges/);

  const runcount = vendor.issue(server.serverId, [
    '--product-spec', '1000:10:callas pdfToolbox CLI:8:0', '--serial', '200000512',
  ]);
  expect(server.install(runcount)).toContain('installed');
  const rows = table.locator('tbody tr');
  await expect(rows).toHaveCount(1);
  await expect(rows.first().locator('td')).toHaveText([
    'callas pdfToolbox CLI 10', '0 / 8', '0 / 0', '0', '0', '0', '0',
  ]);

  // A second license for the same product adds up; a credit cartridge gets a row of its own.
  const mixed = vendor.issue(server.serverId, [
    '--product-spec', '1000:10:callas pdfToolbox CLI:2:0',
    '--product-spec', '1000:0:callas pdfToolbox CLI:0:100000:postpay',
    '--serial', '200000556',
  ]);
  server.install(mixed);
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(0).locator('td').nth(2)).toHaveText(`0 / 100${THIN}000 (postpay)`);
  await expect(rows.nth(1).locator('td').nth(1)).toHaveText('0 / 10');
  await expect(rows.nth(1).locator('td').first()).toHaveAttribute(
    'title',
    'serial 200000512: runcount 8, credits 0\nserial 200000556: runcount 2, credits 0',
  );

  // Moving the second cartridge into a pool takes it out of the default view.
  server.assign(200000556, 'farm');
  await expect(rows).toHaveCount(1);
  await expect(rows.first().locator('td').nth(1)).toHaveText('0 / 8');
  expect(errors).toEqual([]);
});

test('the pool field shows one pool, lives in the address, and survives a reload', async ({ page, server, vendor }) => {
  server.install(vendor.issue(server.serverId, ['--product-spec', '1000:10:callas pdfToolbox CLI:8:0', '--serial', '11']));
  server.install(vendor.issue(server.serverId, ['--product-spec', '2000:0:Cruncher:0:500', '--serial', '22']));
  server.assign(22, 'night shift');
  await page.goto(server.statusPage);
  const rows = page.getByRole('table', { name: 'Cartridges' }).locator('tbody tr');
  await expect(rows).toHaveCount(1);
  await expect(rows.first().locator('td').first()).toHaveText('callas pdfToolbox CLI 10');

  const pool = page.getByLabel('Pool');
  await pool.fill('night shift');
  await pool.press('Enter');
  await expect(page).toHaveURL(/\?pool=night%20shift$/);
  await expect(rows).toHaveCount(1);
  await expect(rows.first().locator('td').first()).toHaveText('Cruncher');

  await page.reload();
  await expect(page.getByLabel('Pool')).toHaveValue('night shift');
  await expect(rows.first().locator('td').first()).toHaveText('Cruncher');

  await page.getByLabel('Pool').fill('');
  await page.getByLabel('Pool').press('Enter');
  await expect(page).toHaveURL(server.statusPage);
  await expect(rows.first().locator('td').first()).toHaveText('callas pdfToolbox CLI 10');
});
