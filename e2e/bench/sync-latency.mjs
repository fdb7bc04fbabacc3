// Benchmark (prints a table, asserts nothing): edit on A → visible on B over loopback with the live
// channel, against a plain fetch of /healthz from the same page (the floor); and bytes sent per
// edit (push bodies A's worker really sent) against Loro's raw update size. The first table uses
// the pages' clocks (performance.timeOrigin + now; one machine, so comparable): when A's page
// submits, and when the note appears in the other page's DOM — what a user sees. The second gives
// the same runs on this Node process's clock (before A is told to submit, and when B's page reports
// through a binding), which adds Playwright's round trip; "driver round trip" is that alone.
// Two ways to space edits: back to back (the next edit as soon as the previous one is seen, so its
// push, acknowledgement and echo overlap the next — latency under continuous load), and isolated
// (the next edit only once A says everything is on the server, plus 50 ms — the latency of one
// edit, as ../shared/bench-peers measures it: each edit after the previous one's acknowledgement).
import { startServer, profile, status, noteNamed, ownerWithLink, parsePull, watchPushes, enterTitle } from '../tests/helpers.mjs';
import { Buffer } from 'node:buffer';

// Notes the first time each title shows in a page's list (`window.seenAt`, page clock) and calls
// the page's binding `name`. Only what each mutation added or changed is looked at: the list
// grows by one note per edit, and a scan of every note on every mutation would be work on the
// same two cores as the app it measures, growing with the list.
const watchNotes = (page, name) => page.evaluate((name) => {
  const NOTE = '[data-testid=note]';
  const seen = new Set([...document.querySelectorAll(NOTE)].map((e) => e.textContent));
  const check = (e) => {
    if (e && !seen.has(e.textContent)) {
      seen.add(e.textContent);
      (window.seenAt ??= {})[e.textContent] = performance.timeOrigin + performance.now();
      window[name]();
    }
  };
  new MutationObserver((records) => {
    for (const r of records) {
      const at = r.target.nodeType === Node.ELEMENT_NODE ? r.target : r.target.parentElement;
      check(at?.closest(NOTE));
      for (const n of r.addedNodes) {
        if (n.nodeType !== Node.ELEMENT_NODE) continue;
        if (n.matches(NOTE)) check(n);
        for (const e of n.querySelectorAll(NOTE)) check(e);
      }
    }
  }).observe(document.body, { childList: true, subtree: true, characterData: true });
}, name);

const N = Number(process.env.HEARTH_BENCH_EDITS ?? 200);
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.round((s.length - 1) * p))]; };

const server = await startServer();
const a = await profile();
const b = await profile();
// What A's worker really sends: every push body (watched from the start: the push socket opens
// at the first push).
const pushed = { bytes: 0, bodies: 0 };
watchPushes(a.page, (n) => {
  pushed.bytes += n;
  pushed.bodies++;
});
try {
  const link = await ownerWithLink(a.page, server.url, 'bench');
  await b.page.goto(link);
  await noteNamed(b.page, 'bench').waitFor({ timeout: 30_000 });
  await status(b.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
  const floor = await a.page.evaluate(async (n) => {
    const out = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await (await fetch('/healthz', { cache: 'no-store' })).text();
      out.push(performance.now() - t);
    }
    return out;
  }, N);
  let arrived = null;
  await b.page.exposeBinding('hearthSeen', () => { const t = performance.now(); if (arrived) arrived(t); });
  await watchNotes(b.page, 'hearthSeen');
  const driver = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    await a.page.evaluate(() => 0);
    driver.push(performance.now() - t);
  }
  // Local: the edit is durable in A's IndexedDB and rendered in A's own page.
  let localArrived = null;
  await a.page.exposeBinding('hearthLocalSeen', () => { const t = performance.now(); if (localArrived) localArrived(t); });
  await watchNotes(a.page, 'hearthLocalSeen');
  const local = [];
  const lat = [];
  const starts = [];
  const startBytes = pushed.bytes;
  const startBodies = pushed.bodies;
  for (let i = 0; i < N; i++) {
    const title = `L${i}`;
    const seen = new Promise((resolve) => { arrived = resolve; });
    const mine = new Promise((resolve) => { localArrived = resolve; });
    const t0 = performance.now();
    starts.push(await a.page.evaluate(enterTitle, title));
    local.push((await mine) - t0);
    const t1 = await seen;
    lat.push(t1 - t0);
  }
  await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
  await a.page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 30_000 });
  const token = decodeURIComponent(link.match(/\?t=([^&]+)/)[1]);
  const ws = link.match(/join\/([0-9a-f-]{36})/)[1];
  const res = await fetch(`${server.url}/v1/workspaces/${ws}/updates?after=0`, { headers: { Authorization: `Bearer ${token}` } });
  const records = parsePull(Buffer.from(await res.arrayBuffer())).filter((r) => r.kind === 0);
  const raw = records.reduce((s, r) => s + r.bytes.length, 0) / records.length;
  const sent = (pushed.bytes - startBytes) / N;
  const sentBodies = pushed.bodies - startBodies;
  // Tab → tab in one browser: a second tab of A's profile sees A's edits through IndexedDB and
  // the BroadcastChannel (no server in between).
  const tab = await a.ctx.newPage();
  await tab.goto(server.url + '/');
  await noteNamed(tab, 'bench').waitFor({ timeout: 30_000 });
  let tabArrived = null;
  await tab.exposeBinding('hearthTabSeen', () => { const t = performance.now(); if (tabArrived) tabArrived(t); });
  await watchNotes(tab, 'hearthTabSeen');
  const tabLat = [];
  const tabStarts = [];
  const M = Math.min(N, 100);
  for (let i = 0; i < M; i++) {
    const seen = new Promise((resolve) => { tabArrived = resolve; });
    const t0 = performance.now();
    tabStarts.push(await a.page.evaluate(enterTitle, `T${i}`));
    tabLat.push((await seen) - t0);
    localArrived = null;
  }
  // Isolated edits: each after A says the previous one is on the server, and a 50 ms pause.
  const submit = (title) => a.page.evaluate(enterTitle, title);
  const settled = async () => {
    await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    await a.page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 30_000 });
    await new Promise((r) => setTimeout(r, 50));
  };
  const K = Math.min(N, 60);
  const isoStarts = [];
  const isoTabStarts = [];
  for (const [prefix, starts2, wait] of [['I', isoStarts, () => new Promise((resolve) => { arrived = resolve; })], ['U', isoTabStarts, () => new Promise((resolve) => { tabArrived = resolve; })]]) {
    for (let i = 0; i < K; i++) {
      await settled();
      const seen = wait();
      starts2.push(await submit(`${prefix}${i}`));
      await seen;
    }
  }
  // The page clocks (performance.timeOrigin + now, one machine): from the submit in A's page to
  // the note in the other page's DOM, without the driver's IPC on either end.
  const seenAt = async (page) => page.evaluate(() => window.seenAt ?? {});
  const [onA, onB, onTab] = [await seenAt(a.page), await seenAt(b.page), await seenAt(tab)];
  const since = (at, starts, prefix) => starts.map((s, i) => at[`${prefix}${i}`] - s).filter((x) => Number.isFinite(x));
  const pLocal = since(onA, starts, 'L');
  const pLat = since(onB, starts, 'L');
  const pTab = since(onTab, tabStarts, 'T');
  const pIso = since(onB, isoStarts, 'I');
  const pIsoTab = since(onTab, isoTabStarts, 'U');
  const row = (name, xs) => console.log(`| ${name} | ${pct(xs, 0.5).toFixed(1)} | ${pct(xs, 0.95).toFixed(1)} | ${pct(xs, 0.99).toFixed(1)} |`);
  console.log(`sync latency: ${N} edits back to back (a note created on A, seen in B's DOM), then ${K} isolated ones, loopback, live channel (SSE), release server; page clocks (submit in A's page → the note in the other page's DOM)`);
  console.log('| measure | p50 ms | p95 ms | p99 ms |');
  console.log('|---|---:|---:|---:|');
  row('fetch /healthz from the page (floor)', floor);
  row('edit on A → durable and visible on A itself', pLocal);
  row('edit on A → visible on B', pLat);
  console.log(`| ratio p50 (edit ÷ floor) | ${(pct(pLat, 0.5) / pct(floor, 0.5)).toFixed(1)} | | |`);
  row(`edit in tab A → visible in tab B, same browser (${M} edits)`, pTab);
  row(`isolated: edit on A → visible on B (${K} edits, each after the previous one's acknowledgement)`, pIso);
  console.log(`| isolated: ratio p50 (edit ÷ floor) | ${(pct(pIso, 0.5) / pct(floor, 0.5)).toFixed(1)} | | |`);
  row(`isolated: edit in tab A → visible in tab B, same browser (${K} edits)`, pIsoTab);
  console.log('');
  console.log(`the same runs on the driver's clock (Playwright's round trip into A and the binding call out of B included)`);
  console.log('| measure | p50 ms | p95 ms | p99 ms |');
  console.log('|---|---:|---:|---:|');
  console.log(`| fetch /healthz from the page (floor) | ${pct(floor, 0.5).toFixed(1)} | ${pct(floor, 0.95).toFixed(1)} | ${pct(floor, 0.99).toFixed(1)} |`);
  console.log(`| driver round trip to a page (included once in the next row) | ${pct(driver, 0.5).toFixed(1)} | ${pct(driver, 0.95).toFixed(1)} | ${pct(driver, 0.99).toFixed(1)} |`);
  console.log(`| edit on A → durable and visible on A itself | ${pct(local, 0.5).toFixed(1)} | ${pct(local, 0.95).toFixed(1)} | ${pct(local, 0.99).toFixed(1)} |`);
  console.log(`| edit on A → visible on B | ${pct(lat, 0.5).toFixed(1)} | ${pct(lat, 0.95).toFixed(1)} | ${pct(lat, 0.99).toFixed(1)} |`);
  console.log(`| edit in tab A → visible in tab B, same browser (${M} edits) | ${pct(tabLat, 0.5).toFixed(1)} | ${pct(tabLat, 0.95).toFixed(1)} | ${pct(tabLat, 0.99).toFixed(1)} |`);
  console.log('');
  console.log('| bytes per edit | value |');
  console.log('|---|---:|');
  console.log(`| Loro update (raw, mean over ${records.length} stored updates) | ${raw.toFixed(0)} |`);
  console.log(`| push bodies A's worker sent, per edit (${sentBodies} pushes: POST bodies, or push-socket requests without their 4-byte id; HTTP and WebSocket frame headers not counted) | ${sent.toFixed(0)} |`);
  console.log(`| sent ÷ raw | ${(sent / raw).toFixed(2)} |`);
} finally {
  await a.ctx.close();
  await b.ctx.close();
  server.stop();
}
