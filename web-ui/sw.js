// Hearth service worker: keeps the app shell (HTML, JS, wasm, CSS, worker) so that after one
// visit the app opens with the network off. Network first (so a new version is picked up at once),
// cache as fallback. The sync API (/v1/…) and health/metrics are never cached.
// scripts/build-web.sh replaces the build id with a hash of the built files, so every release is a
// new service worker and open pages are offered a reload.
const CACHE = 'hearth-shell-__HEARTH_BUILD__';

self.addEventListener('install', (event) => {
  // Static routes (Chromium 123+): the sync API, its live channel and health checks go straight to
  // the network without starting or waiting for this worker (its fetch handler would only pass
  // them on; dispatching to it cost each push ~1–2 ms). Other browsers use the handler below.
  if (event.addRoutes) {
    event.addRoutes([
      { condition: { urlPattern: { pathname: '/v1/*' } }, source: 'network' },
      { condition: { urlPattern: { pathname: '/healthz' } }, source: 'network' },
      { condition: { urlPattern: { pathname: '/metrics' } }, source: 'network' },
    ]).catch(() => {});
  }
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(['/', '/manifest.webmanifest'])).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/v1/') || url.pathname === '/healthz' || url.pathname === '/metrics') return;
  const isPage = event.request.mode === 'navigate';
  event.respondWith(
    fetch(event.request)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          caches.open(CACHE).then((c) => c.put(isPage ? '/' : event.request, copy));
        }
        return res;
      })
      .catch(() => caches.match(isPage ? '/' : event.request).then((hit) => hit ?? Response.error())),
  );
});
