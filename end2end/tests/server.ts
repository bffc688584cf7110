// Starts the real license-server binary for a test: free ports, a temporary data directory,
// JSON logs parsed for the "ready" event that announces the bound addresses.

import { Page, TestInfo, test as base, expect } from '@playwright/test';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

export const BINARY =
  process.env.LICENSE_SERVER_BIN ?? path.resolve(__dirname, '../../target/release/license-server');

export interface StartOptions {
  dataDir?: string;
  port?: number;
  apiPort?: number;
  /** A vendor public key (PEM file) the server trusts license files from. */
  vendorPublicKey?: string;
  /** The vendor licensing service (`--vendor-url`). */
  vendorUrl?: string;
  /** More `serve` options, e.g. `['--session-idle-timeout', '2']`. */
  extraArgs?: string[];
  /** More environment variables, e.g. a development build's switches. */
  env?: Record<string, string>;
}

/** The vendor's tools, next to the server binary (customers never get this one). */
export const VENDOR_BINARY =
  process.env.LICENSE_VENDOR_BIN ?? path.join(path.dirname(BINARY), 'license-vendor');

/** Runs a `license-server` subcommand to completion; throws with its stderr if it fails. */
export function cli(args: string[], input?: string): string {
  return run(BINARY, args, input);
}

/** Runs a `license-vendor` subcommand to completion. */
export function vendorCli(args: string[]): string {
  return run(VENDOR_BINARY, args);
}

function run(binary: string, args: string[], input?: string): string {
  return execFileSync(binary, args, {
    encoding: 'utf8',
    input,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
}

/** Spawns the binary and resolves with the first JSON log event that has `field` (an address). */
export async function spawnUntil(
  binary: string,
  args: string[],
  field: string,
): Promise<{ child: ChildProcess; event: Record<string, string>; log: string[] }> {
  const child = spawn(binary, ['--log-format', 'json', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, RUST_LOG: 'info' },
  });
  const log: string[] = [];
  const event = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready within 30 s:\n${log.join('\n')}`)), 30_000);
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      log.push(line);
      try {
        const parsed = JSON.parse(line);
        if (typeof parsed[field] === 'string') {
          clearTimeout(timer);
          resolve(parsed);
        }
      } catch {
        // Not JSON: kept in the log for the error message.
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${binary}: ${e.message} (run \`make build\` first)`));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code} before it was ready:\n${log.join('\n')}`));
    });
  });
  return { child, event, log };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
}

/** The vendor licensing service (`license-vendor serve`) with the sample catalog (account `demo`, secret
 * `demo-secret`), signing with `vendor`'s key. */
export class VendorService {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    private readonly dataDir: string,
  ) {}

  static async start(vendor: Vendor): Promise<VendorService> {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'vendor-service-e2e-'));
    const catalog = path.resolve(__dirname, '../../examples/catalog.toml');
    const { child, event } = await spawnUntil(
      VENDOR_BINARY,
      ['serve', '--key', vendor.privateKey, '--catalog', catalog, '--bind', '127.0.0.1',
        '--port', '0', '--data-dir', dataDir],
      'addr',
    );
    return new VendorService(child, `http://${event.addr}`, dataDir);
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** A vendor with its own keypair (`license-vendor keygen`), issuing license files with `license-vendor issue`. */
export class Vendor {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'license-vendor-e2e-'));
  readonly privateKey = path.join(this.dir, 'vendor.key');
  readonly publicKey = path.join(this.dir, 'vendor.pub');
  private issued = 0;

  constructor() {
    vendorCli(['keygen', '--out-dir', this.dir]);
  }

  /** Issues a license file for `serverId` and returns its path. */
  issue(serverId: string, args: string[]): string {
    const out = path.join(this.dir, `license-${++this.issued}.lic`);
    vendorCli(['issue', '--key', this.privateKey, '--server-id', serverId, '--out', out, ...args]);
    return out;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export class LicenseServer {
  readonly apiUrl: string;
  readonly statusPage: string;
  /** Passwords and tokens this test used: none of them may appear in the server's log. */
  readonly secrets: string[] = [];

  constructor(
    private readonly child: ChildProcess,
    readonly dataDir: string,
    readonly licensePort: number,
    readonly apiPort: number,
    readonly serverId: string,
    private readonly log: string[],
    private readonly vendorPublicKey?: string,
  ) {
    this.apiUrl = `http://127.0.0.1:${apiPort}`;
    this.statusPage = `${this.apiUrl}/status/index.html`;
  }

  /** Starts a server; by default on free ports with a new temporary data directory. */
  static async start(options: StartOptions = {}): Promise<LicenseServer> {
    const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'license-server-e2e-'));
    const args = ['--log-format', 'json', 'serve', '--bind', '127.0.0.1', '--data-dir', dataDir];
    args.push('--port', String(options.port ?? 0));
    if (options.apiPort !== undefined) args.push('--api-port', String(options.apiPort));
    if (options.vendorPublicKey !== undefined) args.push('--vendor-public-key', options.vendorPublicKey);
    if (options.vendorUrl !== undefined) args.push('--vendor-url', options.vendorUrl);
    args.push(...(options.extraArgs ?? []));
    const child = spawn(BINARY, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, RUST_LOG: 'info', ...options.env },
    });
    const log: string[] = [];
    const ready = await new Promise<Record<string, string>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready within 30 s:\n${log.join('\n')}`)), 30_000);
      readline.createInterface({ input: child.stderr! }).on('line', (line) => {
        log.push(line);
        try {
          const event = JSON.parse(line);
          if (typeof event.api_addr === 'string') {
            clearTimeout(timer);
            resolve(event);
          }
        } catch {
          // Not JSON: kept in the log for the error message.
        }
      });
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`cannot start ${BINARY}: ${e.message} (run \`make build\` first)`));
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`license-server exited with ${code} before it was ready:\n${log.join('\n')}`));
      });
    });
    const port = (addr: string) => Number(addr.slice(addr.lastIndexOf(':') + 1));
    return new LicenseServer(
      child, dataDir, port(ready.license_addr), port(ready.api_addr), ready.server_id, log, options.vendorPublicKey,
    );
  }

  /** Stops the server with SIGTERM, as a service manager would, and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = once(this.child, 'exit');
      this.child.kill('SIGTERM');
      await exited;
    }
  }

  /** Kills the server (SIGKILL): a crash, as far as anyone can tell. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = once(this.child, 'exit');
      this.child.kill('SIGKILL');
      await exited;
    }
  }

  /** Starts a new server process on the same ports and data directory. */
  restart(): Promise<LicenseServer> {
    return LicenseServer.start({
      dataDir: this.dataDir,
      port: this.licensePort,
      apiPort: this.apiPort,
      vendorPublicKey: this.vendorPublicKey,
    });
  }

  /** `license-server license install FILE` on this server's data directory, as an administrator
   * would type it while the server runs. */
  install(file: string): string {
    const trust = this.vendorPublicKey ? ['--vendor-public-key', this.vendorPublicKey] : [];
    return cli(['license', 'install', file, '--data-dir', this.dataDir, ...trust]);
  }

  /** Waits until the running server counts `count` cartridges in the default pool (it picks up
   * an install within half a second). */
  async waitForCartridges(count: number): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const data = await (await fetch(`${this.apiUrl}/status/data.json?sessions=false`)).json();
      if (data.cartridges.length >= count) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the server did not show ${count} cartridges within 10 s`);
  }

  /** `license-server cartridge assign SERIAL POOL`. */
  assign(serial: number, pool: string): string {
    return cli(['cartridge', 'assign', String(serial), pool, '--data-dir', this.dataDir]);
  }

  logText(): string {
    return this.log.join('\n');
  }

  /** The password the first start gave `admin`. */
  adminPassword(): string {
    const password = readFileSync(path.join(this.dataDir, 'initial-admin-password'), 'utf8').trim();
    this.secrets.push(password);
    return password;
  }

  /** Fails if any of the test's secrets is in the log. */
  expectNoSecretsInLog(): void {
    const log = this.logText();
    for (const secret of this.secrets) {
      expect(log.includes(secret), `a password or token of this test is in the server's log`).toBe(false);
    }
  }

  /** `license-server user add`: another administrator, e.g. a viewer. */
  addUser(principal: string, password: string, role: 'admin' | 'viewer'): void {
    this.secrets.push(password);
    cli(['user', 'add', '--principal', principal, '--role', role, '--data-dir', this.dataDir], `${password}\n`);
  }
}

/** A free TCP port of 127.0.0.1 (bound, then released). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A failover network of `count` members on 127.0.0.1 (`network identity`, `network init`), with
 * one license for the network of `productSpecs` installed on the first member. */
export class LicenseNetwork {
  private constructor(
    readonly members: LicenseServer[],
    readonly networkId: string,
  ) {}

  static async start(vendor: Vendor, count: number, productSpecs: string[]): Promise<LicenseNetwork> {
    const dirs = Array.from({ length: count }, () => mkdtempSync(path.join(tmpdir(), 'license-member-e2e-')));
    const tokens = dirs.map((dir) => cli(['network', 'identity', '--data-dir', dir]).trim());
    const ports: number[] = [];
    for (let i = 0; i < count; i++) ports.push(await freePort());
    const list = ports.flatMap((port, i) => ['--member', `127.0.0.1:${port}=${tokens[i]}`]);
    let networkId = '';
    for (const dir of dirs) {
      const said = cli(['network', 'init', ...list, '--data-dir', dir]);
      networkId = /network id: ([0-9A-F]+)/.exec(said)![1];
    }
    const license = vendor.issue(networkId, productSpecs.flatMap((spec) => ['--product-spec', spec]));
    cli(['license', 'install', license, '--data-dir', dirs[0], '--vendor-public-key', vendor.publicKey]);
    const members = await Promise.all(
      dirs.map((dataDir, i) => LicenseServer.start({ dataDir, port: ports[i], vendorPublicKey: vendor.publicKey })),
    );
    return new LicenseNetwork(members, networkId);
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
    for (const member of this.members) rmSync(member.dataDir, { recursive: true, force: true });
  }
}

/** `vendor`: a vendor keypair of the test's own. `server`: a license server of the test's own that
 * trusts that vendor, stopped and removed when the test ends. */
/** A session opened on the license port: its id, and the token its calls carry. */
export interface Opened {
  id: number;
  token: string;
}

/** Opens a session on the license port, optionally for a licensed user, and takes a license. */
export async function openSession(
  server: LicenseServer,
  body: Record<string, unknown>,
  product?: [number, number],
): Promise<Opened> {
  const base = `http://127.0.0.1:${server.licensePort}/v1/sessions`;
  const opened = await fetch(base, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(opened.status, await opened.clone().text()).toBe(201);
  const { session_id, session_token } = await opened.json();
  if (product) {
    const granted = await fetch(`${base}/${session_id}/licenses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${session_token}` },
      body: JSON.stringify({ request_id: 'r1', product_id: product[0], major_version: product[1] }),
    });
    expect(granted.status, await granted.clone().text()).toBe(200);
  }
  server.secrets.push(session_token);
  return { id: session_id, token: session_token };
}

/** A full-page screenshot, kept with the test's results. */
export async function screenshot(page: Page, testInfo: TestInfo, name: string): Promise<void> {
  const file = testInfo.outputPath(`${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  await testInfo.attach(name, { path: file, contentType: 'image/png' });
}

/** Logs in on the login form the page shows (the first administrator by default). */
export async function logIn(page: Page, server: LicenseServer, principal = 'admin', password?: string): Promise<void> {
  await page.getByLabel('User name').fill(principal);
  await page.getByLabel('Password').fill(password ?? server.adminPassword());
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/server/auth') && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Log in' }).click(),
  ]);
  // The admin token the page got must not show in the log either.
  if (answer.ok()) server.secrets.push((await answer.json()).token);
}

export const test = base.extend<{ vendor: Vendor; server: LicenseServer }>({
  vendor: async ({}, use) => {
    const vendor = new Vendor();
    await use(vendor);
    vendor.remove();
  },
  server: async ({ vendor }, use, testInfo) => {
    const server = await LicenseServer.start({ vendorPublicKey: vendor.publicKey });
    await use(server);
    await server.stop();
    if (testInfo.status !== testInfo.expectedStatus) {
      await testInfo.attach('license-server.log', { body: server.logText(), contentType: 'text/plain' });
    }
    server.expectNoSecretsInLog();
    rmSync(server.dataDir, { recursive: true, force: true });
  },
});

export { expect } from '@playwright/test';
