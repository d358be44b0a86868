// The room page in situations real phones meet: a closed room reached by its full link,
// a browser that blocks autoplay (the page must offer "Tap to listen", reachable and
// usable with the keyboard), and a closed room's link without its key.
//
// Chromium always lets WebRTC (MediaStream) audio autoplay, whatever --autoplay-policy
// says, so the autoplay test gives the page the rule of Safari on iOS: play() is refused
// until the user has pressed a key or tapped (trusted input events). (Not
// navigator.userActivation: playwright's evaluate() grants activation.)
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { REPO, OUTPUT, startServer, signup, http, run, until, launchChromium, audioStats } from './lib.mjs';

const cleanup = [];
let server;
let host;
let room;
let browser;

before(async () => {
  server = await startServer();
  cleanup.push(() => server.stop());
  host = await signup(server, server.invite, 'closer', 'Closed Carla');
  room = await http(server, 'POST', '/v1/rooms', host, { title: 'Members and friends', kind: 'closed' });
  const bot = run(['bot', 'speak', '--server', server.url, '--token', host, '--room', room.id,
    '--wav', join(REPO, 'assets', 'demo-speaker-b.wav'), '--loop', '--seconds', '90']);
  cleanup.push(async () => { bot.kill('SIGTERM'); await bot.done; });
  await until('the bot streaming', () => bot.out.includes('streaming') || (bot.exitCode !== null && Promise.reject(new Error(bot.out))));
  browser = await launchChromium();
  cleanup.push(() => browser.close());
});

after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
});

test('a closed room link without its key shows the not-available page', async () => {
  const page = await browser.newPage();
  const resp = await page.goto(`${server.url}/r/${room.id}`);
  assert.equal(resp.status(), 404);
  assert.match(await page.textContent('h1'), /isn't available/);
  assert.equal(await page.$('#listen'), null);
  await page.close();
});

test('blocked autoplay: "Tap to listen", reached with the keyboard, starts the sound', async () => {
  const context = await browser.newContext();
  await context.addInitScript(() => {
    let gesture = false;
    const mark = (e) => { if (e.isTrusted) gesture = true; };
    window.addEventListener('keydown', mark, true);
    window.addEventListener('pointerdown', mark, true);
    const play = HTMLMediaElement.prototype.play;
    HTMLMediaElement.prototype.play = function () {
      if (gesture) return play.call(this);
      return Promise.reject(new DOMException('play() needs a user gesture', 'NotAllowedError'));
    };
  });
  const page = await context.newPage();
  try {
    // The whole shared link (with its key) and listen=1, as a "listen now" link.
    const resp = await page.goto(`${room.link}&listen=1`);
    assert.equal(resp.status(), 200);
    // Audio arrives, but the browser refuses to play it without a gesture.
    await until('inbound audio', async () => (await audioStats(page)).inboundPackets > 50);
    await until('"Tap to listen"', () => page.evaluate(() => {
      const b = document.getElementById('listen');
      return !b.hidden && b.textContent === 'Tap to listen';
    }));
    assert.match(await page.textContent('#status'), /needs a tap/);
    const paused = await page.$$eval('audio', (as) => as.filter((a) => a.paused).length);
    assert.ok(paused > 0, 'the browser did block playback');
    await page.screenshot({ path: join(OUTPUT, 'tap-to-listen.png'), fullPage: true });

    // Keyboard only: Tab to the button, press Enter.
    let focused = '';
    for (let i = 0; i < 10 && focused !== 'listen'; i += 1) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
    }
    assert.equal(focused, 'listen', 'the button is reachable with Tab');
    await page.keyboard.press('Enter');
    await until('every stream playing', async () =>
      page.$$eval('audio', (as) => as.length > 0 && as.every((a) => !a.paused)));
    assert.equal(await page.isHidden('#listen'), true);
    // Played out now: the receiver reports a level.
    await until('an audio level', async () => (await audioStats(page)).maxAudioLevel > 0.01);
    await until('listener count 1', async () => (await page.textContent('#listeners')) === '1');
  } finally {
    await page.screenshot({ path: join(OUTPUT, 'closed-room-listening.png'), fullPage: true });
    await context.close();
  }
});

test('a stale saved session falls back to listening as a guest', async () => {
  const context = await browser.newContext();
  await context.addInitScript(() => {
    if (!sessionStorage.getItem('seeded')) {
      sessionStorage.setItem('seeded', '1');
      localStorage.setItem('ruang.token', 'f'.repeat(64));
    }
  });
  const page = await context.newPage();
  try {
    await page.goto(`${room.link}&listen=1`);
    await until('guest audio', async () => {
      const s = await audioStats(page);
      return s.inboundPackets > 50 && s.maxAudioLevel > 0.01;
    });
    assert.equal(await page.evaluate(() => localStorage.getItem('ruang.token')), null);
    assert.equal(await page.isHidden('#mute'), true);
  } finally {
    await context.close();
  }
});

test('the invite page renders in Chromium without a single CSP violation', async () => {
  const code = (await http(server, 'GET', '/v1/invites', host))[0].code;
  const page = await browser.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(e.message));
  try {
    const resp = await page.goto(`${server.url}/i/${code}`);
    assert.equal(resp.status(), 200);
    assert.equal(await page.textContent('h1'), 'Closed Carla invited you to Ruang');
    assert.equal(await page.textContent('code'), code);
    // The stylesheet applied (a CSP block would leave the default link colour/box).
    const radius = await page.$eval('a.button', (a) => getComputedStyle(a).borderRadius);
    assert.notEqual(radius, '0px');
    await page.screenshot({ path: join(OUTPUT, 'invite.png'), fullPage: true });
    const bad = await page.goto(`${server.url}/i/not-a-real-code`);
    assert.equal(bad.status(), 404);
    assert.match(await page.textContent('h1'), /can't be used/);
    assert.deepEqual(problems.filter((p) => !/404/.test(p)), []);
  } finally {
    await page.close();
  }
});
