// Shared helpers of the end-to-end tests: start a real hearth-server, launch Debian's Chromium.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--disable-quic',
];

export const SCREENSHOTS = process.env.HEARTH_SCREENSHOTS ?? 'target/e2e';
mkdirSync(SCREENSHOTS, { recursive: true });

/** Starts hearth-server on a free port with SQLite in a temp dir; resolves to { url, proc, stop }. */
export async function startServer({ databaseUrl, extraArgs = [] } = {}) {
  const bin = process.env.HEARTH_SERVER_BIN;
  if (!bin) throw new Error('HEARTH_SERVER_BIN is not set: run through scripts/test.sh');
  const dataDir = mkdtempSync(join(tmpdir(), 'hearth-e2e-'));
  const args = ['--bind', '127.0.0.1:0', '--data-dir', dataDir, '--static-dir', process.env.HEARTH_DIST ?? 'dist', ...extraArgs];
  if (databaseUrl) args.push('--database-url', databaseUrl);
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { RUST_LOG: 'warn', ...process.env } });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60_000);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/ready at (http:\/\/\S+?)\/?\s/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}: ${out}`)); });
  });
  return { url, proc, dataDir, stop: () => proc.kill('SIGTERM') };
}

export async function launch() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}
