// The admin screens, against a real license server (and, for vendor activation, a real vendor
// service) started by the suite. Each screen: its success path and at least one error path, with
// a screenshot kept as a test artifact.

import { writeFileSync } from 'node:fs';
import { LicenseServer, Vendor, VendorService, expect, logIn, openSession, screenshot, test } from './server';

const TOOLBOX = '1000:10:callas pdfToolbox CLI:4:0';

test('log in: a wrong password is refused next to the form, the right one opens the licenses; log out', async ({
  page,
  server,
}, testInfo) => {
  await page.goto(`${server.apiUrl}/admin`);
  await expect(page).toHaveURL(/\/admin\/login\?next=/);
  // A first-time administrator learns where the first password is.
  await expect(page.locator('#first-login')).toContainText('initial-admin-password');
  // The note, the fields and the button line up on one left edge.
  const left = async (locator: ReturnType<typeof page.locator>) => (await locator.boundingBox())!.x;
  const edge = await left(page.getByLabel('Password'));
  expect(Math.abs((await left(page.getByRole('button', { name: 'Log in' }))) - edge)).toBeLessThanOrEqual(1);
  expect(Math.abs((await left(page.locator('#first-login'))) - edge)).toBeLessThanOrEqual(1);
  await logIn(page, server, 'admin', 'not-the-password');
  await expect(page.getByRole('alert')).toContainText('LOGIN_DENIED');
  await expect(page.getByLabel('Password')).toBeFocused({ timeout: 1 }).catch(() => undefined);
  await screenshot(page, testInfo, 'login-error');

  // Keyboard only: Enter submits.
  await page.getByLabel('Password').fill(server.adminPassword());
  await page.getByLabel('Password').press('Enter');
  await expect(page).toHaveURL(/\/admin\/licenses$/);
  await expect(page.getByRole('heading', { name: 'Licenses', level: 2 })).toBeVisible();
  await expect(page.getByText('No license is installed')).toBeVisible();
  await expect(page.locator('.who .role')).toHaveText('administrator');
  await expect(page.locator('.topbar .zone')).toHaveText(/^Times in UTC/);

  // A reload keeps the login (the tab's session storage)…
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Licenses', level: 2 })).toBeVisible();
  // …and logging out ends it on the server too.
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('license-server.login')!).token);
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('status')).toHaveText('You are logged out.');
  const after = await fetch(`${server.apiUrl}/server/manage/licenses`, { headers: { 'X-Ak-Session-Id': token } });
  expect(after.status).toBe(401);
});

test('licenses: install by pasting, by file, a tampered file refused inline, rules expand, offline request downloads', async ({
  page,
  server,
  vendor,
}, testInfo) => {
  await page.goto(`${server.apiUrl}/admin/licenses`);
  await logIn(page, server);
  await expect(page.getByText('No license is installed')).toBeVisible();

  // Paste a good one.
  const soon = new Date(Date.now() + 10 * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const good = vendor.issue(server.serverId, ['--license-key', 'E2E-PASTED', '--product-spec', TOOLBOX,
    '--max-users', '5', '--expires', soon]).toString();
  const { readFileSync } = await import('node:fs');
  await page.getByLabel('…or paste its text').fill(readFileSync(good, 'utf8'));
  await page.getByRole('button', { name: 'Install' }).click();
  await expect(page.locator('#install-form').getByRole('status')).toContainText('Installed license E2E-PASTED');
  const row = page.locator('#licenses tbody tr[data-key="E2E-PASTED"]');
  const rows = page.locator('#licenses tbody tr');
  // The same file again: nothing changes, and the page says so.
  await page.getByLabel('…or paste its text').fill(readFileSync(good, 'utf8'));
  await page.getByRole('button', { name: 'Install' }).click();
  await expect(page.locator('#install-form').getByRole('status')).toHaveText(
    'License E2E-PASTED is already installed; nothing changed.',
  );
  await expect(rows).toHaveCount(1);
  await expect(row.locator('.badge')).toHaveText(['active', 'new']);
  // A picture chosen by mistake is named as no license, never dumped into the text box, and the
  // earlier success message goes.
  const picture = testInfo.outputPath('screenshot.png');
  writeFileSync(picture, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52]));
  await page.getByLabel('License file').setInputFiles(picture);
  await expect(page.locator('#install-form').getByRole('alert')).toHaveText(
    'screenshot.png is not a license file (expected a JSON document starting with {).',
  );
  await expect(page.getByLabel('…or paste its text')).toHaveValue('');
  await expect(page.locator('#install-form').getByRole('status')).toHaveCount(0);
  // Pasted text that is no license either.
  await page.getByLabel('…or paste its text').fill('-----BEGIN CERTIFICATE-----');
  await page.getByRole('button', { name: 'Install' }).click();
  await expect(page.locator('#install-form').getByRole('alert')).toHaveText(
    'The text you pasted is not a license file (expected a JSON document starting with {).',
  );
  await page.getByLabel('…or paste its text').fill('');
  await expect(row).toContainText('active');
  await expect(row).toContainText('callas pdfToolbox CLI 10');
  await expect(row).toContainText('4 seats');
  await expect(row).toContainText('0 of 5');
  await expect(row.locator('td.warn')).toContainText(/in \d+ days/);
  // The drawer: the rules, the JSON, and where it came from; Escape closes it.
  await row.getByRole('button', { name: 'Details of license E2E-PASTED' }).click();
  const drawer = page.getByRole('dialog', { name: 'License E2E-PASTED' });
  await expect(drawer).toBeFocused();
  await expect(drawer.locator('tbody tr').first()).toContainText('1000');
  await expect(drawer).toContainText(server.serverId);
  await expect(drawer).toContainText(/Installed.*by admin@local/);
  await drawer.getByText('JSON').click();
  await expect(drawer.locator('pre.rules')).toContainText('"max_users": 5');
  await expect(page).toHaveURL(/[?&]show=[0-9a-f]{64}/);
  await screenshot(page, testInfo, 'license-drawer');
  await page.keyboard.press('Escape');
  await expect(drawer).toHaveCount(0);
  await expect(page).not.toHaveURL(/show=/);

  // A tampered file, chosen with the file picker: refused with the server's reason, nothing new.
  const second = vendor.issue(server.serverId, ['--license-key', 'E2E-FILE', '--product-spec', '2000:0:Cruncher:0:500']);
  const tampered = testInfo.outputPath('tampered.lic');
  writeFileSync(tampered, readFileSync(second, 'utf8').replace('"credits": 500', '"credits": 50000'));
  await page.getByLabel('License file').setInputFiles(tampered);
  await expect(page.getByLabel('…or paste its text')).toHaveValue(/50000/);
  await page.getByRole('button', { name: 'Install' }).click();
  await expect(page.locator('#install-form').getByRole('alert')).toContainText('LICENSE_BAD_SIGNATURE');
  await expect(rows).toHaveCount(1);
  await screenshot(page, testInfo, 'install-refused');

  // The genuine file installs.
  await page.getByLabel('License file').setInputFiles(second);
  await page.getByRole('button', { name: 'Install' }).click();
  await expect(page.locator('tr[data-key="E2E-FILE"]')).toBeVisible();
  await expect(rows).toHaveCount(2);
  // The active license (installed last) first; sorting by serial is kept in the address.
  await expect(rows.first()).toHaveAttribute('data-key', 'E2E-FILE');
  await page.getByRole('button', { name: /^Key/ }).click();
  await expect(page).toHaveURL(/sort=key/);
  await expect(rows.first()).toHaveAttribute('data-key', 'E2E-FILE');
  await page.getByRole('button', { name: /^Key/ }).click();
  await expect(page).toHaveURL(/sort=key&order=desc/);
  await expect(rows.first()).toHaveAttribute('data-key', 'E2E-PASTED');
  await page.getByLabel('Filter licenses').fill('crunch');
  await expect(rows).toHaveCount(1);
  await expect(page.locator('#licenses .count')).toHaveText('1 of 2 licenses');
  await page.reload();
  await expect(page.getByLabel('Filter licenses')).toHaveValue('crunch');
  await expect(rows).toHaveCount(1);
  await expect(page.getByRole('columnheader', { name: /^Key/ })).toHaveAttribute('aria-sort', 'descending');
  await page.getByLabel('Filter licenses').fill('');

  // The offline activation request downloads as a file signed for this server.
  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download activation request' }).click();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/^activation-request-.*\.json$/);
  const saved = testInfo.outputPath('request.json');
  await file.saveAs(saved);
  expect(readFileSync(saved, 'utf8')).toContain(server.serverId);
  await screenshot(page, testInfo, 'licenses');
});

test.describe('with a vendor service', () => {
  let service: VendorService;
  let serviceVendor: Vendor;
  let server: LicenseServer;

  test.beforeEach(async () => {
    serviceVendor = new Vendor();
    service = await VendorService.start(serviceVendor);
    server = await LicenseServer.start({ vendorPublicKey: serviceVendor.publicKey, vendorUrl: service.url });
  });

  test.afterEach(async () => {
    await server.stop();
    server.expectNoSecretsInLog();
    await service.stop();
    serviceVendor.remove();
  });

  test('vendor activation: a denied vendor login, then list, activate with a click, see it installed, log out', async ({
    page,
  }, testInfo) => {
    await page.goto(`${server.apiUrl}/admin/vendor`);
    await logIn(page, server);
    await expect(page).toHaveURL(/\/admin\/vendor$/);

    await page.getByLabel('Account').fill('demo');
    await page.getByLabel('Secret').fill('wrong-secret');
    await page.getByRole('button', { name: 'Log in to the vendor' }).click();
    await expect(page.locator('#vendor-login').getByRole('alert')).toContainText('LOGIN_DENIED');
    await screenshot(page, testInfo, 'vendor-login-denied');

    await page.getByLabel('Secret').fill('demo-secret');
    await page.getByRole('button', { name: 'Log in to the vendor' }).click();
    const row = page.locator('tr[data-key="DEMO-PDFTOOLBOX-10"]');
    await expect(row.locator('.state')).toContainText('available');
    await row.getByRole('button', { name: 'Activate DEMO-PDFTOOLBOX-10' }).click();
    await expect(page.getByRole('status')).toContainText('Activated and installed DEMO-PDFTOOLBOX-10');
    await expect(row.locator('.state')).toHaveText('installed here');
    await expect(row.getByRole('button', { name: /^Activate/ })).toHaveCount(0);
    await expect(row.locator('ul.activations li')).toHaveCount(1);
    await expect(row.locator('ul.activations li')).toContainText('(this server)');
    await screenshot(page, testInfo, 'vendor');

    await page.getByRole('link', { name: 'See it under Licenses.' }).click();
    await expect(page.locator('tr[data-key="DEMO-PDFTOOLBOX-10"]')).toContainText('active');

    // A transfer: deactivate it for this server, which gives it back and removes it here.
    await page.getByRole('link', { name: 'Vendor activation' }).click();
    page.on('dialog', (dialog) => dialog.accept());
    await row.getByRole('button', { name: `Deactivate DEMO-PDFTOOLBOX-10 for server ${server.serverId}` }).click();
    await expect(page.getByRole('status')).toContainText('Deactivated DEMO-PDFTOOLBOX-10');
    await expect(page.getByRole('status')).toContainText('removed here too');
    await expect(row.locator('.state')).toContainText('available');
    await expect(row.locator('ul.activations')).toHaveCount(0);
    await page.getByRole('link', { name: 'Licenses', exact: true }).click();
    await expect(page.locator('tr[data-key="DEMO-PDFTOOLBOX-10"]')).toHaveAttribute('data-status', 'removed');

    await page.getByRole('link', { name: 'Vendor activation' }).click();
    await page.getByRole('button', { name: 'Log out of the vendor' }).click();
    await expect(page.getByRole('button', { name: 'Log in to the vendor' })).toBeVisible();
  });
});

test('licenses: Remove with confirmation stops the cartridges; a second file with an installed serial is refused', async ({
  page,
  server,
  vendor,
}, testInfo) => {
  server.install(vendor.issue(server.serverId, ['--license-key', 'E2E-KEEP', '--serial', '101', '--product-spec', TOOLBOX]));
  server.install(vendor.issue(server.serverId, ['--license-key', 'E2E-GONE', '--serial', '102', '--product-spec', '2000:0:Cruncher:0:500']));
  await server.waitForCartridges(2);
  await page.goto(`${server.apiUrl}/admin/licenses`);
  await logIn(page, server);
  const active = page.locator('#licenses tbody tr[data-status="active"]');
  await expect(active).toHaveCount(2);

  page.on('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: 'Details of license E2E-GONE' }).click();
  await page.getByRole('button', { name: 'Remove license E2E-GONE' }).click();
  await expect(page.locator('#licenses').getByRole('status')).toContainText('Removed license E2E-GONE');
  await expect(active).toHaveCount(1);
  await expect(active).toHaveAttribute('data-key', 'E2E-KEEP');
  // It stays in the table as removed, after the active one, and its drawer says who removed it.
  const gone = page.locator('#licenses tbody tr').nth(1);
  await expect(gone).toHaveAttribute('data-key', 'E2E-GONE');
  await expect(gone).toHaveAttribute('data-status', 'removed');
  const drawer = page.getByRole('dialog', { name: 'License E2E-GONE' });
  await expect(drawer).toContainText(/Removed.*by admin@local/);
  await expect(drawer.getByRole('button', { name: /^Remove/ })).toHaveCount(0);
  const data = await (await fetch(`${server.apiUrl}/status/data.json?sessions=false`)).json();
  expect(data.cartridges.map((c: { product_id: number }) => c.product_id)).toEqual([1000]);
  await screenshot(page, testInfo, 'license-removed');

  // Same serial as E2E-KEEP under another key: refused, nothing added.
  const twin = vendor.issue(server.serverId, ['--license-key', 'E2E-TWIN', '--serial', '101', '--product-spec', TOOLBOX]);
  const { readFileSync } = await import('node:fs');
  await page.getByLabel('…or paste its text').fill(readFileSync(twin, 'utf8'));
  await page.getByRole('button', { name: 'Install' }).click();
  await expect(page.locator('#install-form').getByRole('alert')).toContainText('DUPLICATE_SERIAL');
  await expect(active).toHaveCount(1);
});

test('licensed users: count against the limit, clear one, a user another tab cleared, clear all', async ({
  page,
  context,
  server,
  vendor,
}, testInfo) => {
  server.install(vendor.issue(server.serverId, ['--product-spec', TOOLBOX, '--max-users', '10']));
  await server.waitForCartridges(1);
  for (const who of ['ana', 'ben', 'cy']) {
    await openSession(server, { host: 'ws', user: { realm: 'ldap', principal: who } });
  }
  await page.goto(`${server.apiUrl}/admin/users`);
  await logIn(page, server);
  // ana, ben and cy; the administrator who just logged in is not a licensed user.
  await expect(page.locator('#users-count')).toHaveText('3 of 10 places taken');
  const rows = page.locator('table tbody tr');
  await expect(rows).toHaveCount(3);
  await expect(rows.filter({ hasText: 'admin' })).toHaveCount(0);
  await screenshot(page, testInfo, 'users');

  page.on('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: 'Clear ana' }).click();
  await expect(page.getByRole('status')).toHaveText('Cleared ana.');
  await expect(page.locator('#users-count')).toHaveText('2 of 10 places taken');

  // Another tab (another administrator's, or the same one logged in twice) clears ben first.
  const other = await context.newPage();
  await other.goto(`${server.apiUrl}/admin/users`);
  await logIn(other, server);
  other.on('dialog', (dialog) => dialog.accept());
  await other.getByRole('button', { name: 'Clear ben' }).click();
  await expect(other.getByRole('status')).toHaveText('Cleared ben.');
  await page.getByRole('button', { name: 'Clear ben' }).click();
  await expect(page.getByRole('alert')).toContainText('LICENSE_USER_NOT_FOUND');
  await expect(page.locator('#users-count')).toHaveText('1 of 10 places taken');
  await screenshot(page, testInfo, 'users-already-cleared');

  // A declined confirmation changes nothing.
  page.removeAllListeners('dialog');
  page.once('dialog', (dialog) => dialog.dismiss());
  await page.getByRole('button', { name: 'Clear all users' }).click();
  await expect(page.locator('#users-count')).toHaveText('1 of 10 places taken');
  page.once('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: 'Clear all users' }).click();
  await expect(page.locator('#users-count')).toHaveText('0 of 10 places taken');
});

test('sessions: force-release with confirmation; a session that ended meanwhile is reported', async ({
  page,
  server,
  vendor,
}, testInfo) => {
  server.install(vendor.issue(server.serverId, ['--product-spec', TOOLBOX]));
  await server.waitForCartridges(1);
  const stuck = (await openSession(server, { host: 'render-stuck', message: 'hangs' }, [1000, 10])).id;
  const gone = await openSession(server, { host: 'render-gone' }, [1000, 10]);
  await page.goto(`${server.apiUrl}/admin/sessions`);
  await logIn(page, server);
  const table = page.getByRole('table', { name: 'Sessions' });
  await expect(table.locator('tbody tr')).toHaveCount(2);
  await screenshot(page, testInfo, 'sessions-admin');

  page.on('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: `Release session ${stuck}` }).click();
  await expect(page.getByRole('status')).toHaveText(`Session ${stuck} was released.`);
  await expect(table.locator('tbody tr')).toHaveCount(1);

  // The client closes its session while the page still shows it running (its refreshes held
  // back, so that the click surely comes before the next one).
  await expect(table.locator('tbody tr')).toContainText('render-gone');
  await page.route(/\/status\/sessions\.json/, (route) => route.abort());
  const closed = await fetch(`http://127.0.0.1:${server.licensePort}/v1/sessions/${gone.id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${gone.token}` },
  });
  expect(closed.status).toBe(200);
  await page.getByRole('button', { name: `Release session ${gone.id}` }).click();
  await expect(page.getByRole('alert')).toContainText('SESSION_ENDED');
  await page.unroute(/\/status\/sessions\.json/);
  await expect(table.locator('tbody tr.placeholder')).toHaveText('No session matches these filters.');
});

test('an expired token returns to the login form with a message, then to where the user was', async ({
  page,
  vendor,
}, testInfo) => {
  const server = await LicenseServer.start({
    vendorPublicKey: vendor.publicKey,
    extraArgs: ['--session-idle-timeout', '2'],
  });
  try {
    await page.goto(`${server.apiUrl}/admin/sessions`);
    await logIn(page, server);
    await expect(page).toHaveURL(/\/admin\/sessions$/);
    await page.waitForTimeout(3_000);
    await page.getByRole('link', { name: 'Licensed users' }).click();
    await expect(page.getByRole('status')).toContainText('Your session has ended');
    await expect(page).toHaveURL(/\/admin\/login\?next=%2Fadmin%2Fusers/);
    await screenshot(page, testInfo, 'session-expired');
    await logIn(page, server);
    await expect(page).toHaveURL(/\/admin\/users$/);
  } finally {
    await server.stop();
  }
  server.expectNoSecretsInLog();
});

test('a viewer sees every screen without the buttons that change anything', async ({ page, server, vendor }, testInfo) => {
  server.install(vendor.issue(server.serverId, ['--product-spec', TOOLBOX, '--max-users', '10']));
  await server.waitForCartridges(1);
  await openSession(server, { host: 'ws', user: { realm: 'ldap', principal: 'ana' } }, [1000, 10]);
  server.addUser('vera', 'viewer-password-1', 'viewer');
  await page.goto(`${server.apiUrl}/admin/licenses`);
  await logIn(page, server, 'vera', 'viewer-password-1');
  await expect(page.locator('.who .role')).toHaveText('viewer');
  await expect(page.locator('#licenses tbody tr')).toHaveCount(1);
  await expect(page.getByRole('button', { name: 'Install' })).toHaveCount(0);
  await page.getByRole('button', { name: /^Details of license/ }).click();
  await expect(page.getByRole('dialog')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Download activation request' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: /^Remove/ })).toHaveCount(0);
  await screenshot(page, testInfo, 'viewer-licenses');

  // The viewer's own login is not a licensed user: only ana, who named herself in a session.
  await page.getByRole('link', { name: 'Licensed users' }).click();
  await expect(page.locator('table tbody tr')).toHaveCount(1);
  await expect(page.locator('table tbody tr')).toContainText('ana');
  await expect(page.getByRole('button', { name: /^Clear/ })).toHaveCount(0);

  await page.getByRole('link', { name: 'Sessions' }).click();
  await expect(page.getByRole('table', { name: 'Sessions' }).locator('tbody tr')).toHaveCount(1);
  await expect(page.getByRole('button', { name: /^Release/ })).toHaveCount(0);

  // This server has no --vendor-url: the Vendor screen says so at once, with no login form.
  await page.getByRole('link', { name: 'Vendor activation' }).click();
  await expect(page.locator('#no-vendor')).toContainText('--vendor-url URL');
  await expect(page.getByRole('button', { name: 'Log in to the vendor' })).toHaveCount(0);
  await screenshot(page, testInfo, 'no-vendor');
});

test('on a 390 px phone the screens fit the width', async ({ page, server, vendor }, testInfo) => {
  server.install(vendor.issue(server.serverId, ['--product-spec', TOOLBOX, '--max-users', '10']));
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${server.apiUrl}/admin/licenses`);
  await logIn(page, server);
  for (const [link, name] of [['Licenses', 'phone-licenses'], ['Licensed users', 'phone-users'], ['Sessions', 'phone-sessions'], ['Status page', 'phone-status']]) {
    await page.getByRole('link', { name: link, exact: true }).click();
    await page.waitForLoadState('networkidle');
    // Tables scroll inside their own box; the page itself never scrolls sideways.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${link} is wider than the phone`).toBeLessThanOrEqual(0);
    await screenshot(page, testInfo, name);
    if (link === 'Status page') break;
  }
});
