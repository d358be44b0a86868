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
