// Benchmark (prints a table, asserts nothing): edit in tab A → visible in tab B of the same browser
// for a notebook that is NOT synced (no worker traffic): A's edit is durable in IndexedDB, A
// broadcasts it with its bytes, B imports and renders in the message handler. Both clocks are
// performance.timeOrigin-based wall time of two pages of one browser. Compare with the synced row
// of sync-latency.mjs, where the worker's pushes, acknowledgements and live echoes share the cores.
import { startServer, profile, noteNamed, addNote, enterTitle } from '../tests/helpers.mjs';
const server = await startServer();
const a = await profile();
try {
  await a.page.goto(server.url + '/');
  await a.page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
  await addNote(a.page, 'bench');
  const tab = await a.ctx.newPage();
  await tab.goto(server.url + '/');
  await noteNamed(tab, 'bench').waitFor({ timeout: 30_000 });
  await tab.evaluate(() => {
    window.log = [];
    const seen = new Set([...document.querySelectorAll('[data-testid=note]')].map((e) => e.textContent));
    new MutationObserver(() => {
      for (const e of document.querySelectorAll('[data-testid=note]')) {
        if (!seen.has(e.textContent)) { seen.add(e.textContent); window.log.push(['dom', performance.timeOrigin + performance.now(), e.textContent]); }
      }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  const starts = [];
  for (let i = 0; i < 30; i++) {
    const t = await a.page.evaluate(enterTitle, `T${i}`);
    starts.push(t);
    await noteNamed(tab, `T${i}`).waitFor();
    await tab.waitForTimeout(50);
  }
  const log = await tab.evaluate(() => window.log);
  const total = starts.map((s, i) => log.find((l) => l[0] === 'dom' && l[2] === `T${i}`)[1] - s);
  const pct = (xs, p) => { const v = [...xs].sort((a, b) => a - b); return v[Math.min(v.length - 1, Math.round((v.length - 1) * p))].toFixed(1); };
  console.log(`tab → tab, one browser, notebook not synced (${starts.length} notes created in tab A)`);
  console.log('| measure | p50 ms | p95 ms |');
  console.log('|---|---:|---:|');
  console.log(`| edit in A → note in B's DOM | ${pct(total, 0.5)} | ${pct(total, 0.95)} |`);
} finally {
  await a.ctx.close();
  server.stop();
}
