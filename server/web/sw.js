// Ruang's service worker: shows the pushes the server sends to browsers that asked to be
// notified about a scheduled room (the payload is the server's Notification JSON, already
// decrypted by the browser), and opens its link when tapped. Links outside this site are
// never opened.
'use strict';
const TITLES = {
  event_starting: 'Starting soon',
  event_started: 'Live now',
  event_changed: 'Scheduled room changed',
  event_cancelled: 'Scheduled room cancelled',
};

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

const sameSite = (link) => {
  try {
    const u = new URL(link, self.location.origin);
    return u.origin === self.location.origin ? u.href : self.location.origin + '/';
  } catch (e) {
    return self.location.origin + '/';
  }
};

self.addEventListener('push', (event) => {
  let n = {};
  try { n = event.data ? event.data.json() : {}; } catch (e) { n = {}; }
  const text = typeof n.text === 'string' ? n.text.slice(0, 300) : '';
  if (!text) return;
  event.waitUntil(self.registration.showNotification(TITLES[n.kind] || 'Ruang', {
    body: text,
    tag: typeof n.id === 'string' ? n.id : undefined,
    data: { link: sameSite(n.link) },
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const link = (event.notification.data && event.notification.data.link) || self.location.origin + '/';
  event.waitUntil(self.clients.openWindow(link));
});
