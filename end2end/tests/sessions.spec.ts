import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { BINARY, expect, test } from './server';

test('a job run with `client run` shows as a running session holding its license, then as finished', async ({
  page,
  server,
  vendor,
}) => {
  server.install(vendor.issue(server.serverId, ['--product-spec', '1000:10:callas pdfToolbox CLI:2:0']));
  await page.goto(server.statusPage);
  const cartridge = page.getByRole('table', { name: 'Cartridges' }).locator('tbody tr').first();
  await expect(cartridge.locator('td').nth(1)).toHaveText('0 / 2');

  const job = spawn(
    BINARY,
    [
      'client', 'run', '--server', `127.0.0.1:${server.licensePort}`,
      '--product-id', '1000', '--major-version', '10', '--message', 'e2e job', '--', 'sleep', '4',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let jobLog = '';
  job.stderr!.on('data', (chunk) => (jobLog += chunk));
  const exited = once(job, 'exit');

  const session = page.getByRole('table', { name: 'Sessions' }).locator('tbody tr').first();
  await expect(session.locator('td').nth(2)).toHaveText('running');
  await expect(session.locator('td').nth(3).locator('.message')).toHaveText('e2e job');
  await expect(session.locator('td').nth(4)).toHaveText('callas pdfToolbox CLI 10');
  await expect(session.locator('td').nth(5)).toHaveText('runcount');
  await expect(session.locator('td').nth(7)).toHaveText('—');
  await expect(cartridge.locator('td').nth(1)).toHaveText('1 / 2');
  await expect(cartridge.locator('td').nth(3)).toHaveText('1');

  const [code] = await exited;
  expect(code, jobLog).toBe(0);
  await expect(session.locator('td').nth(2)).toHaveText('finished');
  // An ended session keeps what it used, dimmed, with when it ended and how long it ran.
  await expect(session.locator('td').nth(1)).toHaveText('1000');
  await expect(session.locator('td').nth(4)).toHaveText('callas pdfToolbox CLI 10');
  await expect(session.locator('td').nth(4)).toHaveClass(/past/);
  await expect(session.locator('td').nth(5)).toHaveText('runcount');
  await expect(session.locator('td').nth(7)).toHaveText(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  await expect(session.locator('td').nth(8)).toHaveText(/^[4-9] s$/);
  await expect(session.locator('td').nth(9)).toHaveText('—');
  // The search looks at what the table shows: the job's message finds it, its address does not.
  const search = page.getByRole('searchbox', { name: 'Search' });
  await search.fill('e2e job');
  await expect(session.locator('td').nth(0)).not.toHaveText('');
  await expect(page.getByRole('table', { name: 'Sessions' }).locator('tbody tr')).toHaveCount(1);
  await search.fill('127.0.0.1');
  await expect(page.getByText('No session matches these filters.')).toBeVisible();
  await expect(cartridge.locator('td').nth(1)).toHaveText('0 / 2');

  // Filters and sort are in the address: a reload (or a shared link) shows the same view.
  await search.fill('e2e');
  await page.getByLabel('Status').selectOption('finished');
  await page.getByRole('button', { name: /^Host/ }).click();
  await expect(page).toHaveURL(/[?&]q=e2e/);
  await expect(page).toHaveURL(/[?&]status=finished/);
  await expect(page).toHaveURL(/[?&]sort=host/);
  await page.reload();
  await expect(page.getByRole('searchbox', { name: 'Search' })).toHaveValue('e2e');
  await expect(page.getByLabel('Status')).toHaveValue('finished');
  await expect(page.getByRole('table', { name: 'Sessions' }).getByRole('columnheader', { name: /^Host/ })).toHaveAttribute('aria-sort', 'ascending');
  await expect(page.getByRole('table', { name: 'Sessions' }).locator('tbody tr')).toHaveCount(1);
});
