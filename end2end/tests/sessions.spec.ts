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
  await expect(session.locator('td').nth(4)).toHaveText('callas pdfToolbox CLI 10');
  await expect(session.locator('td').nth(5)).toHaveText('runcount');
  await expect(cartridge.locator('td').nth(1)).toHaveText('1 / 2');
  await expect(cartridge.locator('td').nth(3)).toHaveText('1');

  const [code] = await exited;
  expect(code, jobLog).toBe(0);
  await expect(session.locator('td').nth(2)).toHaveText('finished');
  await expect(session.locator('td').nth(4)).toHaveText('—');
  await expect(cartridge.locator('td').nth(1)).toHaveText('0 / 2');
});
