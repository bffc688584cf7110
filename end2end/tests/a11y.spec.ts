// Accessibility: axe-core on every screen (the status page, the login form, each admin screen),
// light and dark, at 1280 px and on a 390 px phone, with data on them: no violation at all.

import AxeBuilder from '@axe-core/playwright';
import { Page } from '@playwright/test';
import { expect, logIn, openSession, screenshot, test } from './server';

const TOOLBOX = '1000:10:callas pdfToolbox CLI:2:0';

/** The violations axe finds on the page as it is now, one line each (rule, impact, where). */
async function violations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations.flatMap((v) =>
    v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(' ')} — ${n.failureSummary?.split('\n')[1]?.trim() ?? ''}`),
  );
}

for (const scheme of ['light', 'dark'] as const) {
  for (const width of [1280, 390]) {
    test(`no accessibility violations on any screen, ${scheme}, ${width} px`, async ({ page, server, vendor }, testInfo) => {
      await page.emulateMedia({ colorScheme: scheme });
      await page.setViewportSize({ width, height: 900 });
      server.install(vendor.issue(server.serverId, ['--product-spec', TOOLBOX]));
      await server.waitForCartridges(1);
      await openSession(server, { host: 'ci-1', message: 'nightly', user: { realm: 'corp', principal: 'alice' } }, [1000, 10]);
      const found: string[] = [];
      const scan = async (name: string, ready: () => Promise<void>) => {
        await ready();
        for (const v of await violations(page)) found.push(`${name}: ${v}`);
        await screenshot(page, testInfo, `${name}-${scheme}-${width}`);
      };

      await page.goto(server.statusPage);
      await scan('status', () => expect(page.getByRole('table', { name: 'Sessions' }).locator('tbody tr')).toHaveCount(1));
      await page.goto(`${server.apiUrl}/admin/licenses`);
      await scan('login', () => expect(page.getByRole('button', { name: 'Log in' })).toBeVisible());
      await logIn(page, server);
      await scan('licenses', () => expect(page.locator('#licenses tbody tr').first()).toBeVisible());
      await page.getByRole('button', { name: /^Details of license/ }).first().click();
      await scan('license-drawer', () => expect(page.getByRole('dialog')).toBeFocused());
      for (const [path, name, ready] of [
        ['/admin/vendor', 'vendor', 'heading'],
        ['/admin/users', 'users', 'heading'],
        ['/admin/sessions', 'sessions', 'table'],
        ['/admin/usage', 'usage', 'chart'],
      ] as const) {
        await page.goto(`${server.apiUrl}${path}`);
        await scan(name, async () => {
          await expect(page.getByRole('heading', { level: 2 })).toBeVisible();
          if (ready === 'table') await expect(page.getByRole('table', { name: 'Sessions' }).locator('tbody tr')).toHaveCount(1);
          if (ready === 'chart') await expect(page.locator('#chart-in-use')).toBeVisible();
        });
      }
      expect(found, found.join('\n')).toEqual([]);
    });
  }
}
