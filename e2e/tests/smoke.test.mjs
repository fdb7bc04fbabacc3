// The trunk-built page loads from the running server, renders, reaches the engine and the worker;
// the app's wasm and JavaScript arrive precompressed (brotli, which Chromium offers to localhost;
// gzip to browsers that offer only that), a fraction of their size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, SCREENSHOTS } from './helpers.mjs';

test('the app loads from the server, renders notes from the engine and starts the worker', async () => {
  const server = await startServer();
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const shipped = [];
    page.on('response', (r) => { if (/\.(wasm|js)$/.test(new URL(r.url()).pathname)) shipped.push(r); });
    const health = await (await fetch(`${server.url}/healthz`)).json();
    assert.equal(health.status, 'ok');
    await page.goto(server.url + '/');
    await page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor({ timeout: 30_000 });
    // Status in words; the technical details (the sync worker among them) behind a click.
    await page.getByTestId('sync-status').filter({ hasText: 'On this device only' }).waitFor();
    const wasm = shipped.find((r) => r.url().endsWith('.wasm'));
    assert.ok(wasm, `the app's wasm was fetched: ${shipped.map((r) => r.url())}`);
    // Its name carries the build's hash: a returning browser need not ask for it again.
    assert.equal(await wasm.headerValue('cache-control'), 'public, max-age=31536000, immutable');
    for (const r of shipped.filter((r) => !r.url().endsWith('/sw.js'))) {
      // Chromium offers brotli over https and to localhost: it gets the .br (the server's own test
      // covers each Accept-Encoding).
      assert.equal(await r.headerValue('content-encoding'), 'br', r.url());
      const { responseBodySize } = await r.request().sizes();
      const decoded = (await r.body()).length;
      assert.ok(responseBodySize < decoded * 0.6, `${r.url()}: ${responseBodySize} B on the wire for ${decoded} B`);
    }
    assert.equal(await page.getByTestId('worker-status').count(), 0, 'no internals on screen');
    await page.getByTestId('sync-status').click();
    await page.getByTestId('worker-status').filter({ hasText: 'ready' }).waitFor({ timeout: 30_000 });
    await page.getByTestId('status-details').filter({ hasText: 'Your access: owner' }).waitFor();
    await page.getByTestId('sync-status').click();
    await page.getByTestId('status-details').waitFor({ state: 'detached' });
    await page.getByTestId('new-title').fill('First note from Playwright');
    await page.getByRole('button', { name: 'Add' }).click();
    await page.getByTestId('note-count').filter({ hasText: /^1 note$/ }).waitFor();
    await page.screenshot({ path: `${SCREENSHOTS}/smoke.png`, fullPage: true });
    // The note is in IndexedDB: a reload shows it again.
    await page.reload();
    await page.getByText('First note from Playwright').waitFor({ timeout: 30_000 });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    server.stop();
  }
});
