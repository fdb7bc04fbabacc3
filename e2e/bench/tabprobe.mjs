import { startServer, profile, noteNamed, addNote } from '../tests/helpers.mjs';
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
    const ch = new BroadcastChannel('hearth-sync');
    ch.onmessage = (e) => window.log.push(['msg', performance.timeOrigin + performance.now(), String(e.data).slice(0, 30)]);
    const seen = new Set([...document.querySelectorAll('[data-testid=note]')].map((e) => e.textContent));
    new MutationObserver(() => {
      for (const e of document.querySelectorAll('[data-testid=note]')) {
        if (!seen.has(e.textContent)) { seen.add(e.textContent); window.log.push(['dom', performance.timeOrigin + performance.now(), e.textContent]); }
      }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  const starts = [];
  for (let i = 0; i < 30; i++) {
    const t = await a.page.evaluate((title) => {
      const el = document.querySelector('[data-testid=new-title]');
      el.value = title;
      el.dispatchEvent(new Event('input', { bubbles: true }));
      const t = performance.timeOrigin + performance.now();
      el.form.requestSubmit();
      return t;
    }, `T${i}`);
    starts.push(t);
    await noteNamed(tab, `T${i}`).waitFor();
    await tab.waitForTimeout(50);
  }
  const log = await tab.evaluate(() => window.log);
  let i = 0;
  for (const s of starts) {
    const dom = log.find((l) => l[0] === 'dom' && l[2] === `T${i}`);
    const msg = log.filter((l) => l[0] === 'msg' && l[1] >= s && l[1] <= dom[1]);
    console.log(`T${i} msg ${msg.map((m) => (m[1] - s).toFixed(1) + ':' + m[2].slice(8, 20)).join(' ')} dom ${(dom[1] - s).toFixed(1)}`);
    i++;
  }
} finally {
  await a.ctx.close();
  server.stop();
}
