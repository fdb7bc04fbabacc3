// The Share dialog (product issue, defect 9): one place for links — edit or read-only, expiry in
// hours or days, a label, a sentence saying what the link allows, copy and QR, and every link with
// its state (active, expired, revoked; only an active one can be revoked). The sharing controls
// are on the Notes tab only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, profile, addNote, status, masterToken, SCREENSHOTS } from './helpers.mjs';

test('the share dialog makes a labelled read-only link that expires in hours and lists links by state', async () => {
  const server = await startServer();
  const a = await profile();
  try {
    const page = a.page;
    await page.goto(server.url + '/');
    await page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
    // A first-time user is told what to do.
    await page.getByTestId('empty-state').filter({ hasText: 'No notes yet: type a title above and press Add' }).waitFor();
    await page.screenshot({ path: `${SCREENSHOTS}/empty-state.png` });
    await addNote(page, 'Shared with care');
    assert.equal(await page.getByTestId('empty-state').count(), 0);
    await page.getByTestId('search').fill('zzz');
    await page.getByTestId('empty-state').filter({ hasText: 'No note matches this search' }).waitFor();
    await page.getByTestId('search').fill('');
    assert.equal(await page.getByTestId('share').count(), 0, 'nothing to share before the notebook syncs');
    await page.getByTestId('connect').click();
    await status(page).filter({ hasText: 'up to date' }).waitFor({ timeout: 30_000 });
    const ws = await page.evaluate(async () => {
      const db = await new Promise((res, rej) => { const r = indexedDB.open('hearth'); r.onsuccess = () => res(r.result); r.onerror = rej; });
      return new Promise((res) => { const r = db.transaction('workspaces').objectStore('workspaces').getAllKeys(); r.onsuccess = () => res(String(r.result[0])); });
    });
    // A link that expires at once, made through the API, to show the expired state.
    const master = await masterToken(page, ws);
    const res = await fetch(`${server.url}/v1/workspaces/${ws}/tokens`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${master}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ role: 'write', expires_in: 1, label: 'gone already' }),
    });
    assert.equal(res.status, 201);
    await new Promise((r) => setTimeout(r, 1_500));

    await page.getByTestId('share').click();
    const dialog = page.getByTestId('share-dialog');
    await dialog.waitFor();
    await page.getByTestId('share-role').selectOption('read');
    await page.getByTestId('share-amount').fill('2');
    await page.getByTestId('share-unit').selectOption('hours');
    await page.getByTestId('share-label').fill("Ann's phone");
    const before = Date.now() / 1000;
    await page.getByTestId('share-custom').click();
    await page.getByTestId('share-says').filter({ hasText: 'Anyone with this link can read this notebook until' }).waitFor({ timeout: 15_000 });
    const link = await page.getByTestId('share-link').inputValue();
    const claims = JSON.parse(Buffer.from(new URL(link.replace('#/', '')).searchParams.get('t').split('.')[1], 'base64url'));
    assert.equal(claims.role, 'read');
    assert.ok(Math.abs(claims.exp - (before + 2 * 3600)) < 120, `expires in two hours (exp ${claims.exp}, now ${before})`);
    await page.getByTestId('qr').locator('svg').waitFor();

    // The list: the new link active with its label, the API's link expired (no Revoke).
    const row = (label) => page.getByTestId('link-row').filter({ hasText: label });
    await row("Ann's phone").waitFor({ timeout: 15_000 });
    assert.equal(await row("Ann's phone").getAttribute('data-state'), 'active');
    assert.equal(await row('gone already').getAttribute('data-state'), 'expired');
    assert.equal(await row('gone already').getByTestId('revoke').count(), 0);
    await page.screenshot({ path: `${SCREENSHOTS}/share-dialog.png` });
    await row("Ann's phone").getByTestId('revoke').click();
    await page.locator('[data-testid=link-row][data-state=revoked]').filter({ hasText: "Ann's phone" }).waitFor({ timeout: 15_000 });
    await page.getByTestId('share-close').click();
    await dialog.waitFor({ state: 'hidden' });

    // Sharing lives on the Notes tab only.
    await page.getByTestId('tab-history').click();
    assert.equal(await page.getByTestId('share').count(), 0);
    await page.getByTestId('tab-notes').click();
    await page.getByTestId('share').waitFor();
  } finally {
    await a.ctx.close();
    server.stop();
  }
});
