// Benchmark (prints a table, asserts nothing): an edit made in browser A reaches, over the live
// channel of one release server on loopback, (1) browser B — the note in its DOM — and (2) a
// `hearth sync --watch` process — its "received" line, the record verified and durable in its
// SQLite file. Both are timed on this Node process's clock from just before A is told to submit,
// so the driver's round trip is in both figures alike; the ratio is the comparison. Edits are
// isolated: the next one only after both have it and A says everything is on the server.
import { startServer, profile, status, noteNamed, ownerWithLink, enterTitle } from '../tests/helpers.mjs';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const CLI = process.env.HEARTH_CLI_BIN;
if (!CLI) throw new Error('set HEARTH_CLI_BIN to a release build of hearth');
const N = Number(process.env.HEARTH_BENCH_EDITS ?? 100);
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.round((s.length - 1) * p))]; };

const server = await startServer();
const a = await profile();
const b = await profile();
const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-'));
const data = join(dir, 'hearth.db');
let watch;
try {
  const link = await ownerWithLink(a.page, server.url, 'bench');
  await b.page.goto(link);
  await noteNamed(b.page, 'bench').waitFor({ timeout: 30_000 });
  await status(b.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
  execFileSync(CLI, ['--data', data, 'join', link]);
  watch = spawn(CLI, ['--data', data, '--json', 'sync', '--watch']);
  let onLine = null;
  createInterface({ input: watch.stdout }).on('line', (line) => {
    const v = JSON.parse(line);
    if (onLine) onLine(v, performance.now());
  });
  await new Promise((resolve) => { onLine = (v) => v.event === 'synced' && resolve(); });
  let arrived = null;
  await b.page.exposeBinding('hearthSeen', () => { const t = performance.now(); if (arrived) arrived(t); });
  await b.page.evaluate(() => {
    const seen = new Set([...document.querySelectorAll('[data-testid=note]')].map((e) => e.textContent));
    new MutationObserver(() => {
      for (const e of document.querySelectorAll('[data-testid=note]')) {
        if (!seen.has(e.textContent)) { seen.add(e.textContent); window.hearthSeen(); }
      }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  const browser = [];
  const cli = [];
  for (let i = 0; i < N; i++) {
    const inBrowser = new Promise((resolve) => { arrived = resolve; });
    const inCli = new Promise((resolve) => {
      onLine = (v, t) => { if (v.event === 'received' || (v.event === 'synced' && v.pulled > 0)) resolve(t); };
    });
    const t0 = performance.now();
    await a.page.evaluate(enterTitle, `P${i}`);
    const [tb, tc] = await Promise.all([inBrowser, inCli]);
    browser.push(tb - t0);
    cli.push(tc - t0);
    await a.page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 30_000 });
    await new Promise((r) => setTimeout(r, 50));
  }
  const listed = JSON.parse(execFileSync(CLI, ['--data', data, '--json', 'notes', 'list']).toString());
  console.log(`propagation: an edit in browser A → another device, ${N} isolated edits, loopback, release server (Node's clock, driver round trip included in both)`);
  console.log('| receiver | p50 ms | p99 ms | p50 ÷ browser B |');
  console.log('|---|---:|---:|---:|');
  console.log(`| browser B: the note in its DOM (baseline) | ${pct(browser, 0.5).toFixed(1)} | ${pct(browser, 0.99).toFixed(1)} | 1.00 |`);
  console.log(`| hearth sync --watch: the record verified and in its SQLite file | ${pct(cli, 0.5).toFixed(1)} | ${pct(cli, 0.99).toFixed(1)} | ${(pct(cli, 0.5) / pct(browser, 0.5)).toFixed(2)} |`);
  console.log(`(hearth holds ${listed.length} notes after the run; A made ${N + 1})`);
} finally {
  watch?.kill('SIGKILL');
  await a.ctx.close();
  await b.ctx.close();
  server.stop();
  rmSync(dir, { recursive: true, force: true });
}
