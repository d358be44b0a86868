// "Notify me" on a scheduled room's page (/e/ID) in real headless Chromium: the page's script
// registers the service worker and asks the browser's push service for a subscription with
// the server's VAPID key. Headless Chromium here has no reachable push service (its is
// Google's, and these machines are offline), so the subscription itself cannot succeed: the
// test checks that the page says so plainly (no crash, nothing posted), and then drives the
// service worker's push handling through the DevTools protocol with the server's real
// Notification JSON: a notification with the right title, text and a same-site link.
// The server side of the subscription (and real encrypted delivery) is tested in
// tests/tests/social.rs (browser_notify_me_…).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OUTPUT, startServer, signup, http, until, launchChromium } from './lib.mjs';

const cleanup = [];
let server;
let event;
let browser;

before(async () => {
  server = await startServer();
  cleanup.push(() => server.stop());
  const host = await signup(server, server.invite, 'nightowl', 'Nia Owl');
  const at = new Date(Date.now() + 2 * 3600 * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  event = await http(server, 'POST', '/v1/events', host, { title: 'Night owls', starts_at: at });
  browser = await launchChromium();
  cleanup.push(() => browser.close());
});

after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
});

test('Notify me: the service worker registers, an unreachable push service is said plainly, pushes show', async () => {
  const context = await browser.newContext();
  await context.grantPermissions(['notifications'], { origin: server.url });
  const page = await context.newPage();
  const violations = [];
  page.on('console', (m) => { if (/Content Security Policy|Refused to/.test(m.text())) violations.push(m.text()); });
  const posted = [];
  page.on('request', (r) => { if (r.url().includes('/web-push')) posted.push(r.method()); });

  const resp = await page.goto(`${server.url}/e/${event.id}`);
  assert.equal(resp.status(), 200);
  await until('the Notify me button', () => page.evaluate(() => {
    const b = document.getElementById('notify');
    return b && !b.hidden && b.textContent === 'Notify me';
  }));
  await page.click('#notify');
  const said = await until('the page says how it went', () => page.evaluate(() => {
    const t = document.getElementById('notify-status').textContent;
    return t && t !== 'Asking your browser…' ? t : null;
  }), 30000);
  await page.screenshot({ path: join(OUTPUT, 'event-notify-me.png'), fullPage: true });
  if (said.startsWith("We'll notify you")) {
    // A push service was reachable after all: the server must have the subscription.
    assert.deepEqual(posted, ['POST']);
    assert.equal(await page.textContent('#notify'), 'Notifying you ✓');
  } else {
    assert.match(said, /push service could not be reached/);
    assert.deepEqual(posted, [], 'nothing sent to the server without a subscription');
    assert.equal(await page.textContent('#notify'), 'Notify me');
  }
  assert.deepEqual(violations, []);

  // The service worker is there (scope /web/) and shows what the server pushes.
  const cdp = await context.newCDPSession(page);
  const regs = new Map();
  cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => {
    for (const r of registrations) if (!r.isDeleted) regs.set(r.scopeURL, r.registrationId);
  });
  await cdp.send('ServiceWorker.enable');
  const registrationId = await until('the /web/ registration', () => regs.get(`${server.url}/web/`));
  const push = (data) => cdp.send('ServiceWorker.deliverPushMessage', { origin: server.url, registrationId, data });
  const shown = () => page.evaluate(async () => {
    const reg = await navigator.serviceWorker.getRegistration('/web/');
    return (await reg.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, link: n.data && n.data.link }));
  });
  const n = {
    id: 'n1', kind: 'event_started', actor: { id: 'u1', handle: 'nightowl', name: 'Nia Owl' },
    room_id: 'r1', event_id: event.id, text: '“Night owls” is live now',
    link: `${server.url}/r/r1`, created_at: Date.now(), read: false,
  };
  // A push delivered while the worker is still activating can be lost (a CI run saw it):
  // deliver again until it shows. The same tag replaces, so nothing shows twice.
  const pushUntilShown = (what, message) => until(what, async () => {
    const got = (await shown()).find((x) => x.tag === message.id);
    if (!got) await push(JSON.stringify(message));
    return got;
  });
  const first = await pushUntilShown('the notification', n);
  assert.deepEqual(first, { title: 'Live now', body: '“Night owls” is live now', tag: 'n1', link: `${server.url}/r/r1` });
  // A link to another site is never opened; junk shows nothing.
  const second = await pushUntilShown('the second notification',
    { ...n, id: 'n2', kind: 'event_cancelled', text: '“Night owls” was cancelled', link: 'https://evil.example/x' });
  assert.equal(second.title, 'Scheduled room cancelled');
  assert.equal(second.link, `${server.url}/`);
  await push('not json at all');
  await push(JSON.stringify({ kind: 'event_started' }));
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await shown()).length, 2);
  await context.close();
});

test("an unknown event's page offers no Notify me", async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/e/nosuchevent`);
  assert.equal(await page.$('#notify'), null);
  await page.close();
});
