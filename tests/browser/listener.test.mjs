// A bot speaks a known WAV; Chromium opens the room link with ?listen=1 as a guest (no
// account) and must receive it with its own WebRTC stack: inbound audio packets with a
// non-zero level, the speaker's ring lit from `levels`, and the guest counted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { REPO, OUTPUT, startServer, signup, http, run, until, launchChromium, audioStats } from './lib.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
});

test('a guest listens in Chromium to a bot speaking', async () => {
  const server = await startServer();
  cleanup.push(() => server.stop());
  const host = await signup(server, server.invite, 'host', 'Hosting Hana');
  const room = await http(server, 'POST', '/v1/rooms', host, { title: 'Browser <listening> & co', kind: 'open' });

  const bot = run(['bot', 'speak', '--server', server.url, '--token', host, '--room', room.id,
    '--wav', join(REPO, 'assets', 'demo-speaker-a.wav'), '--loop', '--seconds', '60']);
  cleanup.push(async () => { bot.kill('SIGTERM'); await bot.done; });
  await until('the bot streaming', () => bot.out.includes('streaming') || (bot.exitCode !== null && Promise.reject(new Error(bot.out))));

  const browser = await launchChromium();
  cleanup.push(() => browser.close());
  const page = await browser.newPage();
  const logs = [];
  const problems = [];
  page.on('console', (m) => {
    logs.push(m.text());
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  try {
    const resp = await page.goto(`${server.url}/r/${room.id}?listen=1`);
    assert.equal(resp.status(), 200);
    assert.equal(await page.textContent('h1'), 'Browser <listening> & co');

    const stats = await until('inbound audio with a level', async () => {
      const s = await audioStats(page);
      return s.inboundPackets > 100 && s.maxAudioLevel > 0.01 && s;
    });
    console.log(`browser stats: ${JSON.stringify(stats)}`);
    // The speaking ring comes from the server's `levels` deltas for the bot (the host).
    await page.waitForSelector('#stage li.speaking', { timeout: 15000 });
    assert.match(await page.textContent('#speaking'), /Hosting Hana/);
    // The guest is counted as a listener, on the page and by the server.
    await until('listener count 1 on the page', async () => (await page.textContent('#listeners')) === '1');
    const summary = await http(server, 'GET', `/v1/rooms/${room.id}`, host);
    assert.equal(summary.listener_count, 1);
    assert.equal(await page.isHidden('#mute'), true, 'a guest has no microphone button');
    assert.equal(await page.isHidden('#hand'), true, 'nor a hand to raise');
    // The strict CSP lets the page do all of this: no violation, no script error.
    assert.deepEqual(problems, []);
  } finally {
    const shot = join(OUTPUT, 'listener.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
    if (process.env.RUANG_BROWSER_VERBOSE) console.log(logs.join('\n'));
  }
});

test('the page reconnects by itself after a server restart and hears the room again', async () => {
  const server = await startServer();
  cleanup.push(() => server.stop());
  const host = await signup(server, server.invite, 'steady', 'Steady Sam');
  const room = await http(server, 'POST', '/v1/rooms', host, { title: 'Through a restart', kind: 'social' });
  const bot = run(['bot', 'speak', '--server', server.url, '--token', host, '--room', room.id,
    '--wav', join(REPO, 'assets', 'demo-speaker-b.wav'), '--loop', '--seconds', '90']);
  cleanup.push(async () => { bot.kill('SIGTERM'); await bot.done; });
  await until('the bot streaming', () => bot.out.includes('streaming') || (bot.exitCode !== null && Promise.reject(new Error(bot.out))));

  const browser = await launchChromium();
  cleanup.push(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${server.url}/r/${room.id}?listen=1`);
  await until('audio before the restart', async () => (await audioStats(page)).maxAudioLevel > 0.01);
  await page.evaluate(() => { window.ruang.pc.beforeRestart = true; });

  await server.restart();
  // A new signalling connection (new guest pass) and a new peer connection, with audio.
  const stats = await until('audio after the restart', async () => {
    const fresh = await page.evaluate(() => Boolean(window.ruang.pc && !window.ruang.pc.beforeRestart));
    const s = fresh && (await audioStats(page));
    return s && s.inboundPackets > 50 && s.maxAudioLevel > 0.01 && s;
  }, 40000);
  console.log(`after restart: ${JSON.stringify(stats)}`);
  await until('listener count 1', async () => (await page.textContent('#listeners')) === '1');
  await page.screenshot({ path: join(OUTPUT, 'after-restart.png'), fullPage: true });
});
