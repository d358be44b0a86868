// "Notify me" on a scheduled room's page (/e/ID), without an account: a Web Push
// subscription (service worker + PushManager, the server's VAPID key) tied to this event.
// The server pushes (RFC 8291, encrypted for this browser) when it starts soon, starts,
// changes or is cancelled (docs/protocol.md §10.6). Everything is optional: a browser
// without push support, a refused permission or an unreachable push service says so.
'use strict';
(() => {
  const root = document.getElementById('event');
  const button = document.getElementById('notify');
  const status = document.getElementById('notify-status');
  if (!root || !button || !status) return;
  const id = root.dataset.event;
  const stored = 'ruang-notify-' + id;
  const say = (text) => { status.textContent = text; };

  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) {
    say('This browser cannot notify you. The Ruang app can.');
    return;
  }

  const key = (b64) => {
    const s = atob(b64.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
  };
  const on = () => localStorage.getItem(stored) !== null;
  const paint = () => {
    button.textContent = on() ? 'Notifying you ✓' : 'Notify me';
    button.setAttribute('aria-pressed', on() ? 'true' : 'false');
  };
  const api = (method, body) => fetch(`../v1/events/${encodeURIComponent(id)}/web-push`, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });

  // The worker only has to exist with an active state for PushManager to accept it.
  const worker = async () => {
    const reg = await navigator.serviceWorker.register('../web/sw.js', { scope: '../web/' });
    const w = reg.installing || reg.waiting || reg.active;
    if (w && w.state !== 'activated') {
      await new Promise((done) => {
        w.addEventListener('statechange', () => { if (w.state === 'activated') done(); });
      });
    }
    return reg;
  };

  const subscribe = async () => {
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') {
      say('Notifications are blocked for this site. Allow them in the browser settings to be told.');
      return;
    }
    say('Asking your browser…');
    const reg = await worker();
    const k = await (await fetch('../v1/push/key')).json();
    let sub;
    try {
      sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key(k.vapid_public_key) });
    } catch (e) {
      say("Your browser's push service could not be reached, so it cannot notify you. The Ruang app can.");
      return;
    }
    const r = await api('POST', sub.toJSON());
    if (r.status === 201) {
      localStorage.setItem(stored, sub.endpoint);
      say("We'll notify you here when it starts.");
    } else {
      const body = await r.json().catch(() => ({}));
      say((body.error && body.error.message) || 'That did not work. Try again later.');
    }
  };

  const unsubscribe = async () => {
    const endpoint = localStorage.getItem(stored);
    localStorage.removeItem(stored);
    if (endpoint) await api('DELETE', { endpoint }).catch(() => {});
    say('You will not be notified.');
  };

  button.hidden = false;
  paint();
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      if (on()) await unsubscribe(); else await subscribe();
    } catch (e) {
      say('That did not work. Try again later.');
    } finally {
      button.disabled = false;
      paint();
    }
  });
})();
