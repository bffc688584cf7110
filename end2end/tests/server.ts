// Starts the real license-server binary for a test: free ports, a temporary data directory,
// JSON logs parsed for the "ready" event that announces the bound addresses.

import { test as base } from '@playwright/test';
import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

export const BINARY =
  process.env.LICENSE_SERVER_BIN ?? path.resolve(__dirname, '../../target/release/license-server');

export interface StartOptions {
  dataDir?: string;
  port?: number;
  apiPort?: number;
}

export class LicenseServer {
  readonly apiUrl: string;
  readonly statusPage: string;

  constructor(
    private readonly child: ChildProcess,
    readonly dataDir: string,
    readonly licensePort: number,
    readonly apiPort: number,
    readonly serverId: string,
    private readonly log: string[],
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
    const child = spawn(BINARY, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, RUST_LOG: 'info' },
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
    return new LicenseServer(child, dataDir, port(ready.license_addr), port(ready.api_addr), ready.server_id, log);
  }

  /** Stops the server with SIGTERM, as a service manager would, and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = once(this.child, 'exit');
      this.child.kill('SIGTERM');
      await exited;
    }
  }

  /** Starts a new server process on the same ports and data directory. */
  restart(): Promise<LicenseServer> {
    return LicenseServer.start({ dataDir: this.dataDir, port: this.licensePort, apiPort: this.apiPort });
  }

  logText(): string {
    return this.log.join('\n');
  }
}

/** `server`: a license server of the test's own, stopped and removed when the test ends. */
export const test = base.extend<{ server: LicenseServer }>({
  server: async ({}, use, testInfo) => {
    const server = await LicenseServer.start();
    await use(server);
    await server.stop();
    if (testInfo.status !== testInfo.expectedStatus) {
      await testInfo.attach('license-server.log', { body: server.logText(), contentType: 'text/plain' });
    }
    rmSync(server.dataDir, { recursive: true, force: true });
  },
});

export { expect } from '@playwright/test';
