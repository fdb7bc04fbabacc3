import { startServer, profile, status, noteNamed, ownerWithLink } from '../tests/helpers.mjs';
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.round((s.length - 1) * p))]; };
const server = await startServer();
const a = await profile();
const b = await profile();
const watch = (page) => page.evaluate(() => {
  window.seenAt = {};
  const seen = new Set([...document.querySelectorAll('[data-testid=note]')].map((e) => e.textContent));
  new MutationObserver(() => {
    for (const e of document.querySelectorAll('[data-testid=note]')) {
      if (!seen.has(e.textContent)) { seen.add(e.textContent); window.seenAt[e.textContent] = performance.timeOrigin + performance.now(); }
    }
  }).observe(document.body, { childList: true, subtree: true, characterData: true });
});
try {
  const link = await ownerWithLink(a.page, server.url, 'bench');
  await b.page.goto(link);
  await noteNamed(b.page, 'bench').waitFor({ timeout: 30_000 });
  await watch(b.page);
  const out = {};
  for (const withTab of [false, true, false, true]) {
    let tab = null;
    if (withTab) { tab = await a.ctx.newPage(); await tab.goto(server.url + '/'); await noteNamed(tab, 'bench').waitFor({ timeout: 30_000 }); }
    const lat = [];
    for (let i = 0; i < 25; i++) {
      await status(a.page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
      await a.page.getByTestId('sync-status').filter({ hasNotText: 'not yet on the server' }).waitFor({ timeout: 30_000 });
      await new Promise((r) => setTimeout(r, 50));
      const title = `X${withTab}${i}${Math.random().toString(36).slice(2, 6)}`;
      const at = await a.page.evaluate((title) => {
        const el = document.querySelector('[data-testid=new-title]');
        el.value = title; el.dispatchEvent(new Event('input', { bubbles: true }));
        const at = performance.timeOrigin + performance.now(); el.form.requestSubmit(); return at;
      }, title);
      await b.page.waitForFunction((t) => window.seenAt[t], title, { timeout: 10_000 });
      lat.push((await b.page.evaluate((t) => window.seenAt[t], title)) - at);
    }
    (out[withTab] ??= []).push(pct(lat, 0.5).toFixed(1));
    if (tab) await tab.close();
  }
  console.log('isolated A→B p50: without a second tab', out[false].join(' / '), '| with', out[true].join(' / '));
} catch (e) { console.log('ERR', e); } finally {
  await server.stop?.(); process.exit(0);
}
