// Benchmark (prints a table, asserts nothing): time to first render of a notebook restored from a
// backup of 10k and 100k typed edits, read from IndexedDB — cold (a new browser process whose profile
// keeps only its IndexedDB: HTTP cache, compiled-code cache and service worker removed), new process
// (same profile, caches kept) and warm (a reload) — against a notebook of one short note in the
// same run; and the size of the shipped bundle. Backup files come from `engine_bench --write-backups DIR` (scripts/bench.sh).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, CHROMIUM_ARGS } from '../tests/helpers.mjs';

const dir = process.argv[2];
const dist = process.env.HEARTH_DIST ?? 'dist';
const server = await startServer({ databaseUrl: undefined });
const launch = (profileDir) => chromium.launchPersistentContext(profileDir, { executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });

async function rendered(page) {
  await page.getByTestId('note').first().waitFor({ timeout: 120_000 });
  return page.evaluate(() => performance.now());
}

async function measure(file) {
  const profileDir = mkdtempSync(join(tmpdir(), 'hearth-render-'));
  let ctx = await launch(profileDir);
  let page = ctx.pages()[0] ?? await ctx.newPage();
  await page.goto(server.url + '/');
  await page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
  if (file) {
    await page.getByTestId('tab-backup').click();
    await page.getByTestId('restore-file').setInputFiles(file);
    await page.getByTestId('notice').filter({ hasText: 'Backup restored' }).waitFor({ timeout: 300_000 });
  } else {
    await page.getByTestId('new-title').fill('one short note');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
  }
  await page.getByTestId('tab-notes').click();
  await page.getByTestId('note').first().waitFor();
  await ctx.close();
  // New process, caches kept.
  ctx = await launch(profileDir);
  page = ctx.pages()[0] ?? await ctx.newPage();
  await page.goto(server.url + '/');
  const process = await rendered(page);
  await page.reload();
  const warm = await rendered(page);
  await ctx.close();
  // Truly cold: new process, and nothing but IndexedDB left in the profile.
  for (const d of ['Cache', 'Code Cache', 'Service Worker', 'GPUCache', 'DawnCache']) {
    rmSync(join(profileDir, 'Default', d), { recursive: true, force: true });
  }
  ctx = await launch(profileDir);
  page = ctx.pages()[0] ?? await ctx.newPage();
  await page.goto(server.url + '/');
  const cold = await rendered(page);
  await ctx.close();
  return { cold, process, warm };
}

try {
  const base = await measure(null);
  console.log('first render of a notebook from IndexedDB (navigation start → first note in the list), release server');
  console.log('| notebook | cold: new process, only IndexedDB kept, ms | new process, caches kept, ms | warm reload ms | cold ÷ one-note baseline | warm ÷ baseline |');
  console.log('|---|---:|---:|---:|---:|---:|');
  console.log(`| one short note (baseline) | ${base.cold.toFixed(0)} | ${base.process.toFixed(0)} | ${base.warm.toFixed(0)} | 1.0 | 1.0 |`);
  for (const n of [10_000, 100_000]) {
    const r = await measure(join(dir, `bench-${n}.hearth`));
    console.log(`| ${n} typed edits | ${r.cold.toFixed(0)} | ${r.process.toFixed(0)} | ${r.warm.toFixed(0)} | ${(r.cold / base.cold).toFixed(2)} | ${(r.warm / base.warm).toFixed(2)} |`);
  }
  console.log('');
  console.log('| shipped file | raw bytes | gzip -9 bytes | sent gzip (the precompressed .gz, zopfli) | sent brotli (the .br, quality 11; browsers offer it over https and to localhost) |');
  console.log('|---|---:|---:|---:|---:|');
  let raw = 0; let gz = 0; let sent = 0; let sentBr = 0;
  const size = (f, ext, bytes) => (existsSync(join(dist, `${f}${ext}`)) ? statSync(join(dist, `${f}${ext}`)).size : bytes.length);
  for (const f of readdirSync(dist).filter((f) => /\.(wasm|js)$/.test(f))) {
    const bytes = readFileSync(join(dist, f));
    const z = gzipSync(bytes, { level: 9 }).length;
    const served = size(f, '.gz', bytes);
    const servedBr = size(f, '.br', bytes);
    raw += bytes.length; gz += z; sent += served; sentBr += servedBr;
    console.log(`| ${f} | ${bytes.length} | ${z} | ${served} | ${servedBr} |`);
  }
  console.log(`| total | ${raw} | ${gz} | ${sent} | ${sentBr} (×${(sentBr / sent).toFixed(2)} of gzip) |`);
} finally {
  server.stop();
}
