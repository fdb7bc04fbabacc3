// Benchmark (prints a table, asserts nothing): a new browser joins a notebook that was edited
// 10,000 times through the app (keystrokes typed into a note's body while online, so the owner's
// worker pushes them and the owner's page compacts and uploads snapshots as it does for users)
// → the first note rendered; against joining a notebook of one short note in the same run.
// Each join is a fresh browser profile opening the share link; the figure is navigation start →
// the note visible in the list, in the driver's clock. Also prints what a joiner pulls: the
// server's snapshot (its `covers`) and the updates after it (the tail the compaction policy keeps
// short).
import { startServer, profile, status, noteNamed, ownerWithLink, parsePull } from '../tests/helpers.mjs';
import { Buffer } from 'node:buffer';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The command line (`hearth`, release build) beside the browser when HEARTH_CLI_BIN is set: a
// cold `hearth join` (a new data file; process start → the notebook stored and read) of the same
// links.
const CLI = process.env.HEARTH_CLI_BIN;

const EDITS = Number(process.env.HEARTH_BENCH_JOIN_EDITS ?? 10_000);
const RUNS = Number(process.env.HEARTH_BENCH_JOIN_RUNS ?? 3);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const server = await startServer();

async function settled(page) {
  await status(page).filter({ hasText: 'up to date' }).waitFor({ timeout: 600_000 });
  await page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 600_000 });
}

async function joinOnce(link, title) {
  const p = await profile();
  try {
    const t0 = performance.now();
    await p.page.goto(link);
    await noteNamed(p.page, title).waitFor({ timeout: 300_000 });
    return performance.now() - t0;
  } finally {
    await p.ctx.close();
  }
}

function hearthJoinOnce(link) {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-'));
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    execFile(CLI, ['--data', join(dir, 'hearth.db'), '--json', 'join', link], (err, stdout, stderr) => {
      const ms = performance.now() - t0;
      rmSync(dir, { recursive: true, force: true });
      if (err) return reject(new Error(`hearth join: ${stderr}`));
      resolve(ms);
    });
  });
}

async function serverLog(link) {
  const token = decodeURIComponent(link.match(/\?t=([^&]+)/)[1]);
  const ws = link.match(/join\/([0-9a-f-]{36})/)[1];
  const res = await fetch(`${server.url}/v1/workspaces/${ws}/updates?after=0`, { headers: { Authorization: `Bearer ${token}` } });
  const records = parsePull(Buffer.from(await res.arrayBuffer()));
  const snap = records.find((r) => r.kind === 1);
  const bytes = records.reduce((s, r) => s + r.bytes.length, 0);
  return { covers: snap?.seq ?? 0, snapshotBytes: snap?.bytes.length ?? 0, tail: records.filter((r) => r.kind === 0).length, bytes };
}

const small = await profile();
const big = await profile();
try {
  const smallLink = await ownerWithLink(small.page, server.url, 'tiny');
  await settled(small.page);
  const bigLink = await ownerWithLink(big.page, server.url, 'typed');
  await noteNamed(big.page, 'typed').click();
  const body = big.page.getByTestId('edit-body');
  await body.click();
  const t0 = performance.now();
  // Typed in chunks so the driver is not the bottleneck; every character is its own input event
  // and its own edit (one Loro commit, durable before the next).
  const words = 'the quick brown fox jumps over the lazy dog ';
  let typed = 0;
  while (typed < EDITS) {
    const n = Math.min(200, EDITS - typed);
    let chunk = '';
    for (let i = 0; i < n; i++) chunk += words[(typed + i) % words.length];
    await big.page.keyboard.type(chunk);
    typed += n;
  }
  await settled(big.page);
  const typingSecs = (performance.now() - t0) / 1000;
  const bodyLen = (await body.inputValue()).length;
  const smallLog = await serverLog(smallLink);
  const bigLog = await serverLog(bigLink);
  const emptyJoins = [];
  const bigJoins = [];
  for (let i = 0; i < RUNS; i++) {
    emptyJoins.push(await joinOnce(smallLink, 'tiny'));
    bigJoins.push(await joinOnce(bigLink, 'typed'));
  }
  const cliEmpty = [];
  const cliBig = [];
  for (let i = 0; CLI && i < RUNS; i++) {
    cliEmpty.push(await hearthJoinOnce(smallLink));
    cliBig.push(await hearthJoinOnce(bigLink));
  }
  const e = median(emptyJoins);
  const b = median(bigJoins);
  console.log(`join: a new browser opens a share link → first note rendered (median of ${RUNS}, fresh profile each, release server)`);
  console.log('| notebook | join → first note ms (median) | all runs ms | server log a joiner pulls |');
  console.log('|---|---:|---|---|');
  console.log(`| one short note (baseline) | ${e.toFixed(0)} | ${emptyJoins.map((x) => x.toFixed(0)).join(', ')} | snapshot covers ${smallLog.covers}, ${smallLog.tail} updates, ${smallLog.bytes} B |`);
  console.log(`| ${EDITS} keystrokes typed through the app (body ${bodyLen} chars, typed in ${typingSecs.toFixed(0)} s) | ${b.toFixed(0)} | ${bigJoins.map((x) => x.toFixed(0)).join(', ')} | snapshot covers ${bigLog.covers} (${bigLog.snapshotBytes} B), ${bigLog.tail} updates after it, ${bigLog.bytes} B |`);
  console.log(`| ratio (typed ÷ baseline) | ${(b / e).toFixed(2)} | | |`);
  if (CLI) {
    const ce = median(cliEmpty);
    const cb = median(cliBig);
    console.log(`\njoin from the command line: \`hearth join\` into a new data file, process start → exit (median of ${RUNS}), beside the browser's join above`);
    console.log('| notebook | hearth join ms (median) | all runs ms | browser join ms (same run) | hearth ÷ browser |');
    console.log('|---|---:|---|---:|---:|');
    console.log(`| one short note | ${ce.toFixed(0)} | ${cliEmpty.map((x) => x.toFixed(0)).join(', ')} | ${e.toFixed(0)} | ${(ce / e).toFixed(2)} |`);
    console.log(`| ${EDITS} keystrokes typed through the app | ${cb.toFixed(0)} | ${cliBig.map((x) => x.toFixed(0)).join(', ')} | ${b.toFixed(0)} | ${(cb / b).toFixed(2)} |`);
  }
} finally {
  await small.ctx.close();
  await big.ctx.close();
  server.stop();
}
