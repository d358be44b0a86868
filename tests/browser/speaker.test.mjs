// Chromium publishes as a speaker: the page, signed in with the host's session token
// (localStorage "ruang.token"), joins on stage and sends its fake microphone, a WAV of a
// distinctive tone cycle made here. A `ruang bot listen` recording must contain that
// cycle, in order; silence, Chromium's default beep or noise would not pass.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import {
  OUTPUT, startServer, signup, http, run, until, launchChromium, audioStats,
  toneWav, readWav, toneFrames, fullCycles, TONES, RATE,
} from './lib.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
});

test('the tone generator and detector agree (self-check of the audio check)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ruang-tone-'));
  toneWav(join(dir, 't.wav'), 3);
  const { rate, samples } = readWav(join(dir, 't.wav'));
  assert.equal(rate, RATE);
  assert.equal(fullCycles(toneFrames(samples, rate).runs), 3);
  assert.equal(fullCycles(toneFrames(new Float32Array(rate * 2), rate).runs), 0, 'silence has no cycle');
  const beep = Float32Array.from({ length: rate * 2 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 1000 * i) / rate));
  assert.equal(fullCycles(toneFrames(beep, rate).runs), 0, 'a 1 kHz beep has no cycle');
});

test('a signed-in host speaks from Chromium and a bot hears it', async () => {
  const server = await startServer();
  cleanup.push(() => server.stop());
  const host = await signup(server, server.invite, 'webhost', 'Web Host');
  const code = (await http(server, 'GET', '/v1/invites', host))[0].code;
  const listener = await signup(server, code, 'ears', 'Ears');
  const room = await http(server, 'POST', '/v1/rooms', host, { title: 'Spoken from a browser', kind: 'open' });

  const dir = mkdtempSync(join(tmpdir(), 'ruang-speaker-'));
  const mic = join(dir, 'tones.wav');
  toneWav(mic);

  const browser = await launchChromium(mic);
  cleanup.push(() => browser.close());
  const context = await browser.newContext();
  await context.addInitScript((token) => localStorage.setItem('ruang.token', token), host);
  const page = await context.newPage();
  try {
    await page.goto(`${server.url}/r/${room.id}?listen=1`);
    const sent = await until('the page sending microphone audio', async () => {
      const s = await audioStats(page);
      return s.outboundPackets > 50 && s;
    });
    console.log(`browser stats: ${JSON.stringify(sent)}`);
    assert.equal(await page.isVisible('#mute'), true, 'the host on stage gets a mute button');

    const out = join(OUTPUT, 'speaker-recording.wav');
    const bot = run(['bot', 'listen', '--server', server.url, '--token', listener, '--room', room.id,
      '--record', out, '--seconds', '5']);
    cleanup.push(async () => { bot.kill('SIGTERM'); await bot.done; });
    const code = await bot.done;
    assert.equal(code, 0, bot.out);

    const { rate, samples } = readWav(out);
    const { labels, runs } = toneFrames(samples, rate);
    const toneFrameCount = labels.filter((l) => l >= 0).length;
    const cycles = fullCycles(runs);
    console.log(`recording: ${out}; ${labels.length} frames, ${toneFrameCount} tone frames, ${cycles} full cycles`);
    // 5 s hold about 5 one-second cycles; allow for the join and the first packets.
    assert.ok(cycles >= 2, `the tone cycle ${TONES.join(' → ')} Hz is in the recording (runs: ${runs.join('')})`);
    assert.ok(toneFrameCount > labels.length * 0.4, `most frames carry the tones (${toneFrameCount}/${labels.length})`);
    // The ring lights up for the browser speaker too (levels from its audio-level extension).
    await page.waitForSelector('#stage li.speaking', { timeout: 10000 });
    // The mute button goes through the server: the stage shows the host muted, and the
    // server stops forwarding (the level drops to 0, the ring goes out).
    await page.click('#mute');
    await until('the host shown muted', async () =>
      (await page.textContent('#mute')) === 'Unmute' && /muted/.test(await page.textContent('#stage li .role')));
    await page.waitForSelector('#stage li.speaking', { state: 'detached', timeout: 10000 });
  } finally {
    const shot = join(OUTPUT, 'speaker.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
  }
});

test('a signed-in listener raises a hand on the page, joins the stage when invited, and is heard once unmuted', async () => {
  const server = await startServer();
  cleanup.push(() => server.stop());
  const host = await signup(server, server.invite, 'mod', 'Moderating Mo');
  const code = (await http(server, 'GET', '/v1/invites', host))[0].code;
  const member = await http(server, 'POST', '/v1/signup', null, { invite: code, handle: 'webby', name: 'Webby' });
  const code2 = (await http(server, 'GET', '/v1/invites', host))[1].code;
  const ears = await signup(server, code2, 'ears2', 'Ears');
  const room = await http(server, 'POST', '/v1/rooms', host, { title: 'Come up', kind: 'open' });

  const dir = mkdtempSync(join(tmpdir(), 'ruang-promote-'));
  const mic = join(dir, 'tones.wav');
  toneWav(mic);
  const browser = await launchChromium(mic);
  cleanup.push(() => browser.close());

  // The moderator: a plain WebSocket client of the protocol, run in a blank same-origin page.
  // It records every message in window.seen.
  const modPage = await browser.newPage();
  await modPage.goto(`${server.url}/healthz`);
  await modPage.evaluate(({ roomId, token }) => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${location.origin.replace('http', 'ws')}/v1/rooms/${roomId}/ws`);
    window.mod = ws;
    window.seen = [];
    ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', protocol: 1, token }));
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      window.seen.push(m);
      if (m.type === 'welcome') resolve();
    };
    ws.onerror = () => reject(new Error('moderator socket failed'));
  }), { roomId: room.id, token: host });
  const modSaw = (pred) => until('the moderator seeing it', () => modPage.evaluate(pred));

  // The member's page: a listener, receiving only, with a "Raise hand" button.
  const context = await browser.newContext();
  await context.addInitScript((token) => localStorage.setItem('ruang.token', token), member.token);
  const page = await context.newPage();
  await page.goto(`${server.url}/r/${room.id}?listen=1`);
  await until('the member listening', async () => (await audioStats(page)).state === 'connected');
  assert.equal((await audioStats(page)).outboundPackets, 0, 'a listener sends nothing');
  assert.equal(await page.isHidden('#mute'), true);

  await page.click('#hand');
  await until('"Lower hand"', async () => (await page.textContent('#hand')) === 'Lower hand');
  await modSaw(() => window.seen.some((m) => m.type === 'delta' && m.event.kind === 'hand_raised'));
  await modPage.evaluate((user) => window.mod.send(JSON.stringify({ type: 'invite_to_speak', user, req: 7 })), member.user.id);
  await modSaw(() => window.seen.some((m) => m.type === 'ok' && m.req === 7));

  // The invitation shows on the page, with the focus on "Join the stage".
  await page.waitForSelector('#invite', { state: 'visible' });
  assert.equal(await page.textContent('#invite-text'), 'Moderating Mo invited you to speak.');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'accept');
  await page.keyboard.press('Enter');

  // On stage (muted): the page renegotiates with its microphone (a new media_offer).
  await until('the page sending', async () => (await audioStats(page)).outboundPackets > 50);
  await until('the unmute button', async () => (await page.isVisible('#mute')) && (await page.textContent('#mute')) === 'Unmute');
  assert.equal(await page.isHidden('#hand'), true, 'no hand to raise on stage');
  assert.equal(await page.isHidden('#invite'), true);
  // Negative control: muted, the browser still sends, and the server forwards nothing.
  const record = async (name, seconds) => {
    const out = join(OUTPUT, name);
    const bot = run(['bot', 'listen', '--server', server.url, '--token', ears, '--room', room.id,
      '--record', out, '--seconds', String(seconds)]);
    cleanup.push(async () => { bot.kill('SIGTERM'); await bot.done; });
    assert.equal(await bot.done, 0, bot.out);
    const { rate, samples } = readWav(out);
    const { labels, runs } = toneFrames(samples, rate);
    return { out, cycles: fullCycles(runs), toneFrames: labels.filter((l) => l >= 0).length };
  };
  const muted = await record('promoted-muted.wav', 2);
  assert.deepEqual([muted.cycles, muted.toneFrames], [0, 0], 'nothing of a muted speaker is heard');
  await page.click('#mute');
  await until('unmuted', async () => (await page.textContent('#mute')) === 'Mute');
  const heard = await record('promoted-recording.wav', 4);
  console.log(`promoted recording: ${heard.out}; ${heard.cycles} full cycles`);
  assert.ok(heard.cycles >= 2, `the promoted member's microphone is heard (${heard.cycles} cycles)`);
  await page.screenshot({ path: join(OUTPUT, 'promoted.png'), fullPage: true });
});
