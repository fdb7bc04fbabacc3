// Benchmark (prints a table, asserts nothing): edit on A → visible on B over loopback with the live
// channel, against a plain fetch of /healthz from the same page (the floor); and bytes sent per
// edit against Loro's raw update size.
import { startServer, profile, status, noteNamed, ownerWithLink, parsePull } from '../tests/helpers.mjs';
import { Buffer } from 'node:buffer';

const N = Number(process.env.HEARTH_BENCH_EDITS ?? 200);
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.round((s.length - 1) * p))]; };

const server = await startServer();
const a = await profile();
const b = await profile();
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
  const lat = [];
  for (let i = 0; i < N; i++) {
    const title = `L${i}`;
    const t0 = await a.page.evaluate((title) => {
      const el = document.querySelector('[data-testid=new-title]');
      el.value = title;
      el.dispatchEvent(new Event('input', { bubbles: true }));
      const t = performance.timeOrigin + performance.now();
      el.form.requestSubmit();
      return t;
    }, title);
    const t1 = await b.page.evaluate((title) => new Promise((resolve) => {
      const seen = () => [...document.querySelectorAll('[data-testid=note]')].some((e) => e.textContent === title);
      if (seen()) return resolve(performance.timeOrigin + performance.now());
      const obs = new MutationObserver(() => {
        if (seen()) { obs.disconnect(); resolve(performance.timeOrigin + performance.now()); }
      });
      obs.observe(document.body, { childList: true, subtree: true, characterData: true });
    }), title);
    lat.push(t1 - t0);
  }
  const token = decodeURIComponent(link.split('?t=')[1]);
  const ws = link.match(/join\/([0-9a-f-]{36})/)[1];
  const res = await fetch(`${server.url}/v1/workspaces/${ws}/updates?after=0`, { headers: { Authorization: `Bearer ${token}` } });
  const records = parsePull(Buffer.from(await res.arrayBuffer())).filter((r) => r.kind === 0);
  const raw = records.reduce((s, r) => s + r.bytes.length, 0) / records.length;
  const keyLen = 31; // "{ms:013}-{n:04}-{12 hex}"
  const framed = raw + 1 + keyLen + 4;
  console.log(`sync latency: ${N} edits (a note created on A, seen in B's DOM), loopback, live channel (SSE)`);
  console.log('| measure | p50 ms | p95 ms | p99 ms |');
  console.log('|---|---:|---:|---:|');
  console.log(`| fetch /healthz from the page (floor) | ${pct(floor, 0.5).toFixed(1)} | ${pct(floor, 0.95).toFixed(1)} | ${pct(floor, 0.99).toFixed(1)} |`);
  console.log(`| edit on A → visible on B | ${pct(lat, 0.5).toFixed(1)} | ${pct(lat, 0.95).toFixed(1)} | ${pct(lat, 0.99).toFixed(1)} |`);
  console.log(`| ratio p50 (edit ÷ floor) | ${(pct(lat, 0.5) / pct(floor, 0.5)).toFixed(1)} | | |`);
  console.log('');
  console.log('| bytes per edit | value |');
  console.log('|---|---:|');
  console.log(`| Loro update (raw, mean over ${records.length}) | ${raw.toFixed(0)} |`);
  console.log(`| push frame record (update + key + header) | ${framed.toFixed(0)} |`);
  console.log(`| frame ÷ raw | ${(framed / raw).toFixed(2)} |`);
} finally {
  await a.ctx.close();
  await b.ctx.close();
  server.stop();
}
