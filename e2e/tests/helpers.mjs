// Shared helpers of the end-to-end tests: start a real hearth-server, launch Debian's Chromium.
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Buffer } from 'node:buffer';

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--disable-quic',
];

export const SCREENSHOTS = process.env.HEARTH_SCREENSHOTS ?? 'target/e2e';
mkdirSync(SCREENSHOTS, { recursive: true });

/**
 * Starts hearth-server on a free port; resolves to { url, proc, port, dataDir, stop }. The database
 * is the real Postgres of scripts/test.sh (HEARTH_TEST_PG_URL) when set, else SQLite in a temp dir.
 */
export async function startServer({ databaseUrl = process.env.HEARTH_TEST_PG_URL || undefined, extraArgs = [], port = 0, dataDir, staticDir, env = {}, captureLogs = false } = {}) {
  const bin = process.env.HEARTH_SERVER_BIN;
  if (!bin) throw new Error('HEARTH_SERVER_BIN is not set: run through scripts/test.sh');
  dataDir ??= mkdtempSync(join(tmpdir(), 'hearth-e2e-'));
  const args = ['--bind', `127.0.0.1:${port}`, '--data-dir', dataDir, '--static-dir', staticDir ?? process.env.HEARTH_DIST ?? 'dist', ...extraArgs];
  if (databaseUrl) args.push('--database-url', databaseUrl);
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', captureLogs ? 'pipe' : 'inherit'], env: { RUST_LOG: 'warn', ...process.env, ...env } });
  // Everything the server printed, when asked for (`captureLogs`).
  const logs = [];
  if (captureLogs) proc.stderr.on('data', (chunk) => logs.push(String(chunk)));
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60_000);
    proc.stdout.on('data', (chunk) => {
      if (captureLogs) logs.push(String(chunk));
      out += chunk;
      const m = out.match(/ready at (http:\/\/\S+?)\/?\s/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}: ${out}`)); });
  });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  return {
    url, proc, dataDir, port: Number(new URL(url).port), logs,
    stop: () => proc.kill('SIGTERM'),
    /** Stops the server and resolves once it has exited. */
    stopped: () => { proc.kill('SIGTERM'); return exited; },
  };
}

// Every page of every test is watched: an uncaught error in any of them fails the test (checked
// after each test, in addition to any test's own assertions on `errors`).
const pageErrors = [];
const WATCHED = Symbol('watched');
function watch(page, errors) {
  if (page[WATCHED]) return;
  page[WATCHED] = true;
  page.on('pageerror', (e) => {
    const line = `${page.url()}: ${String(e)}`;
    errors?.push(String(e));
    pageErrors.push(line);
  });
}
// Registered only in test files (not when a benchmark imports these helpers).
if (process.env.NODE_TEST_CONTEXT || /\.test\.mjs$/.test(process.argv[1] ?? '')) {
  afterEach(() => {
    const seen = pageErrors.splice(0);
    assert.deepEqual(seen, [], 'no uncaught errors in any page');
  });
}

/** Watches a page opened outside `profile()`/`launch()` for uncaught errors. */
export function watchPage(page) {
  watch(page);
}

/** A browser profile of its own (persistent context: its own IndexedDB and service worker). */
export async function profile() {
  const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'hearth-profile-')), {
    executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true,
  });
  const errors = [];
  const page = ctx.pages()[0] ?? await ctx.newPage();
  watch(page, errors);
  ctx.on('page', (p) => watch(p, errors));
  return { ctx, page, errors };
}

/**
 * Calls `onPush(bytes)` for every push a page or its workers send: the body of a
 * `POST …/updates`, or a request on the push socket (its batch, without the 4-byte request id).
 */
export function watchPushes(page, onPush) {
  page.on('request', (r) => {
    if (r.method() === 'POST' && /\/updates$/.test(new URL(r.url()).pathname)) onPush(r.postDataBuffer()?.length ?? 0);
  });
  page.on('websocket', (ws) => {
    if (!/\/socket$/.test(new URL(ws.url()).pathname)) return;
    ws.on('framesent', (f) => onPush(Math.max(0, (typeof f.payload === 'string' ? Buffer.byteLength(f.payload) : f.payload.length) - 4)));
  });
}

/**
 * A TCP proxy in front of a server that can lose a push's reply: once `arm()`ed, the next
 * response to a `POST …/updates`, or reply on a push socket, is swallowed, `onLostReply()` runs (e.g. kills the server) and
 * the browser's connection is cut — the push reached the server, its answer never came back.
 * `lostOn()` says where ('http' or 'socket'). `arm({ hang: true })` drops the reply but leaves the
 * connection open and the server running. `retarget(port)` points new connections at another
 * server. Resolves { url, arm, lost, lostOn, retarget, close }.
 */
export async function replyLosingProxy(targetPort, onLostReply) {
  let target = targetPort;
  let armed = false;
  let lost = 0;
  let lostOn = null;
  let hang = false;
  const conns = new Set();
  const srv = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    conns.add(client).add(upstream);
    let lastWasPush = false;
    // A push socket's connection: after the upgrade, every binary frame from the server (first
    // byte 0x82: final, binary, unmasked) is a push's reply.
    let socket = false;
    client.on('data', (d) => {
      const head = d.subarray(0, 200).toString('latin1');
      const m = socket ? null : head.match(/^(GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH) (\S+)/);
      if (m) lastWasPush = m[1] === 'POST' && /\/v1\/workspaces\/[^/]+\/updates/.test(m[2]);
      if (m && m[1] === 'GET' && /\/v1\/workspaces\/[^/]+\/socket$/.test(m[2])) socket = true;
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (armed && (lastWasPush || (socket && d[0] === 0x82))) {
        armed = false;
        lost++;
        lostOn = socket ? 'socket' : 'http';
        // Hanging: the reply is dropped and the connection stays open, as a server that stopped
        // answering would leave it.
        if (hang) return;
        client.destroy();
        upstream.destroy();
        onLostReply();
        return;
      }
      client.write(d);
    });
    const end = () => { client.destroy(); upstream.destroy(); conns.delete(client); conns.delete(upstream); };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    arm: ({ hang: h = false } = {}) => { armed = true; hang = h; },
    lost: () => lost,
    lostOn: () => lostOn,
    retarget: (port) => { target = port; },
    close: () => { for (const c of conns) c.destroy(); srv.close(); },
  };
}

/**
 * An HTTP proxy in front of the server that counts pulls (`GET …/updates`) and can rewrite the
 * live channel's events: `onEvent(json)` returns the event's JSON to forward, or null to drop it.
 * `inline()` counts the events forwarded with a record.
 */
export async function liveProxy(targetPort) {
  let pulls = 0;
  let inline = 0;
  let onEvent = (e) => e;
  const srv = http.createServer((req, res) => {
    if (req.method === 'GET' && /\/v1\/workspaces\/[^/]+\/updates/.test(req.url)) pulls++;
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers, agent: false }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      if (!/\/live$/.test(req.url.split('?')[0])) { r.pipe(res); return; }
      let text = '';
      r.on('data', (d) => {
        text += d.toString('utf8');
        let end;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const ev = text.slice(0, end + 2);
          text = text.slice(end + 2);
          if (!ev.startsWith('data: ')) { res.write(ev); continue; }
          const out = onEvent(ev.slice(6).trim());
          if (out === null) continue;
          if (JSON.parse(out).record) inline++;
          res.write(`data: ${out}\n\n`);
        }
      });
      r.on('end', () => res.end());
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
    res.on('close', () => up.destroy());
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    pulls: () => pulls,
    inline: () => inline,
    setOnEvent: (f) => { onEvent = f; },
    close: () => { srv.closeAllConnections?.(); srv.close(); },
  };
}

/** A copy of an inline record with one byte of its update flipped (chain left as it was). */
export function tamperRecord(base64) {
  const rec = Buffer.from(base64, 'base64');
  rec[rec.length - 1] ^= 1;
  return rec.toString('base64');
}

export const status = (page) => page.getByTestId('sync-status');
export const noteNamed = (page, title) => page.getByTestId('note').filter({ hasText: title });

/**
 * Runs in a page (`page.evaluate(enterTitle, title)`): puts `title` in the new-note field and
 * presses Enter as a keyboard does — a `keydown` that the app handles itself. A build that left
 * Enter to the form (before 2026-12-04) is submitted with `requestSubmit`, what the key's default
 * action would do (an event made by a script has none). Returns the page clock (`timeOrigin +
 * now`) just before the key: where the benchmarks start counting.
 */
export function enterTitle(title) {
  const el = document.querySelector('[data-testid=new-title]');
  el.value = title;
  el.dispatchEvent(new Event('input', { bubbles: true }));
  const at = performance.timeOrigin + performance.now();
  const key = new KeyboardEvent('keydown', { key: 'Enter', code: 'Enter', keyCode: 13, bubbles: true, cancelable: true });
  if (el.dispatchEvent(key)) el.form.requestSubmit();
  return at;
}

export async function addNote(page, title) {
  await page.getByTestId('new-title').fill(title);
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await noteNamed(page, title).waitFor();
}

/** Opens the app on a fresh profile, adds a note, registers on the server; returns the share link. */
export async function ownerWithLink(page, url, title, role = 'write') {
  await page.goto(url + '/');
  await page.getByTestId('workspace-name').filter({ hasText: 'My notebook' }).waitFor();
  await addNote(page, title);
  await page.getByTestId('connect').click();
  return shareLink(page, role);
}

/** The token this browser keeps for workspace `ws` (the owner's: its master token). */
export async function masterToken(page, ws) {
  return page.evaluate(async (id) => {
    const db = await new Promise((res, rej) => { const r = indexedDB.open('hearth'); r.onsuccess = () => res(r.result); r.onerror = rej; });
    return new Promise((res) => { const r = db.transaction('workspaces').objectStore('workspaces').get(id); r.onsuccess = () => res(JSON.parse(r.result).token); });
  }, ws);
}

/** The parts of a share link: `{ ws, token, key }` (`key` is the notebook's key for the link, `&k=`). */
export function linkParts(link) {
  const m = link.match(/#\/join\/([0-9a-f-]{36})\?t=([^&]+)(?:&k=([A-Za-z0-9_-]+))?/);
  if (!m) throw new Error(`not a share link: ${link}`);
  return { ws: m[1], token: decodeURIComponent(m[2]), key: m[3] ?? null };
}

/** Opens the Share dialog, makes a link of `role`, closes the dialog; returns the link. */
export async function shareLink(page, role = 'write') {
  await page.getByTestId('share').click();
  await page.getByTestId(`share-${role}`).click();
  const link = page.getByTestId('share-link');
  await link.waitFor();
  const value = await link.inputValue();
  await page.getByTestId('share-close').click();
  return value;
}

/** Every record the server holds for `ws`, following `Hearth-More`. */
export async function storedRecords(url, ws, token) {
  const out = [];
  for (let after = 0; ;) {
    const res = await fetch(`${url}/v1/workspaces/${ws}/updates?after=${after}`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const page = parsePull(Buffer.from(await res.arrayBuffer()));
    out.push(...page);
    if (!res.headers.get('hearth-more') || page.length === 0) return out;
    after = page[page.length - 1].seq;
  }
}

/** Parses a pull stream (`kind u8 | seq u64 | chain[32] | len u32 | bytes`). */
export function parsePull(buf) {
  const out = [];
  let i = 0;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  while (i < buf.length) {
    const kind = view.getUint8(i);
    const seq = Number(view.getBigUint64(i + 1));
    const len = view.getUint32(i + 41);
    out.push({ kind, seq, bytes: Buffer.from(buf.subarray(i + 45, i + 45 + len)) });
    i += 45 + len;
  }
  return out;
}

/** A browser without a profile; every page it opens is watched for uncaught errors. */
export async function launch() {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (...args) => {
    const ctx = await newContext(...args);
    ctx.on('page', (p) => watch(p));
    return ctx;
  };
  const newPage = browser.newPage.bind(browser);
  browser.newPage = async (...args) => {
    const page = await newPage(...args);
    watch(page);
    return page;
  };
  return browser;
}
