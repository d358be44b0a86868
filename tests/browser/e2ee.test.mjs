// An end-to-end encrypted room heard by a browser guest (docs/protocol.md §15.6). The host is a
// `ruang bot speak --guest-link` process: its device makes the room's MLS group and prints a
// guest link whose fragment (#k=…, never sent to the server) is the guest key. Chromium opens
// the room page four ways: with the link's key it decrypts in an RTCRtpScriptTransform
// worker (Chromium's encoded streams) and hears the host's 660 Hz tone; without a key, or in a browser without encoded
// transforms, it plays nothing and says why; with a wrong key it opens no frame.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { OUTPUT, RATE, startServer, signup, http, run, until, launchChromium, audioStats, wavBytes } from './lib.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The strongest frequency the page plays (an analyser on every received track). */
async function peakFrequency(page) {
  return page.evaluate(async () => {
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    for (const r of window.ruang.pc.getReceivers()) {
      if (r.track) ctx.createMediaStreamSource(new MediaStream([r.track])).connect(analyser);
    }
    await new Promise((done) => setTimeout(done, 1500));
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    let best = 1;
    for (let i = 2; i < bins.length; i += 1) if (bins[i] > bins[best]) best = i;
    const out = { hz: (best * ctx.sampleRate) / analyser.fftSize, db: bins[best] };
    await ctx.close();
    return out;
  });
}

test('a browser guest hears an encrypted room with the link key, and only with it', async () => {
  const server = await startServer();
  cleanup.push(() => server.stop());
  const host = await signup(server, server.invite, 'host', 'Hana');
  const room = await http(server, 'POST', '/v1/rooms', host, { title: 'Sealed', kind: 'closed', e2ee: true });
  assert.equal(room.e2ee, true);
  const dir = mkdtempSync(join(tmpdir(), 'ruang-e2ee-'));
  const wav = join(dir, 'tone.wav');
  writeFileSync(wav, wavBytes(Array.from({ length: RATE * 4 }, (_, i) => 0.4 * Math.sin((2 * Math.PI * 660 * i) / RATE))));
  const bot = run(['bot', 'speak', '--server', server.url, '--token', host, '--room', room.id,
    '--wav', wav, '--loop', '--seconds', '120', '--guest-link']);
  cleanup.push(async () => { bot.kill('SIGTERM'); await bot.done; });
  // The bot prints the link once its device has made the room's group (debug build, on a
  // machine also running the rest of the suite: give it time, and show its output if not).
  const link = await until('the guest link', () => {
    const m = /guest link: (\S+)/.exec(bot.out);
    return (m && m[1]) || (bot.exitCode !== null && Promise.reject(new Error(bot.out)));
  }, 60000).catch((e) => { throw new Error(`${e.message}\nbot output:\n${bot.out}`); });
  const [bare, fragment] = link.split('#');
  assert.match(bare, new RegExp(`/r/${room.id}\\?t=`), 'the closed room link with its token');
  assert.match(fragment, /^k=[A-Za-z0-9_-]{22}$/, 'a 16-byte guest key in the fragment');

  const browser = await launchChromium();
  cleanup.push(() => browser.close());
  const problems = [];
  const open = async (url, init) => {
    const page = await browser.newPage();
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    if (init) await page.addInitScript(init);
    await page.goto(url);
    return page;
  };

  // With the key: frames open in the worker and the tone plays.
  const guest = await open(`${bare}&listen=1#${fragment}`);
  assert.equal(await guest.isVisible('#e2ee'), true, 'the page says the room is end-to-end encrypted');
  const heard = await until('decrypted audio', async () => {
    const e = await guest.evaluate(() => window.ruang.e2ee);
    const s = await audioStats(guest);
    return e.opened > 100 && s.maxAudioLevel > 0.01 && { ...e, ...s };
  }, 40000);
  console.log(`guest with the key: ${JSON.stringify(heard)}`);
  assert.equal(heard.encrypted, true);
  const peak = await peakFrequency(guest);
  console.log(`played: ${JSON.stringify(peak)}`);
  assert.ok(Math.abs(peak.hz - 660) < 15 && peak.db > -70, `the host's 660 Hz tone plays: ${JSON.stringify(peak)}`);
  assert.equal(await guest.isHidden('#hand'), true, 'no speaking from the page in an encrypted room');
  await guest.screenshot({ path: join(OUTPUT, 'e2ee-guest.png'), fullPage: true });

  // Without the fragment: nothing to hear, and the page says why.
  const bare_page = await open(`${bare}&listen=1`);
  await until('the no-key notice', async () => /has no key/.test(await bare_page.textContent('#status')));
  await sleep(2000);
  assert.equal(await bare_page.evaluate(() => window.ruang.pc), null, 'no media without a key');
  assert.equal(await bare_page.isHidden('#listen'), true);
  await bare_page.screenshot({ path: join(OUTPUT, 'e2ee-no-key.png'), fullPage: true });

  // A wrong key: the envelope does not open, nor does any frame.
  const wrong = await open(`${bare}&listen=1#k=${'A'.repeat(22)}`);
  await until('the wrong-key notice', async () => /does not open/.test(await wrong.textContent('#status')));
  await until('audio packets arriving', async () => (await audioStats(wrong)).inboundPackets > 100, 30000);
  const w = await wrong.evaluate(() => window.ruang.e2ee);
  const ws = await audioStats(wrong);
  console.log(`wrong key: ${JSON.stringify({ ...w, ...ws })}`);
  assert.equal(w.opened, 0, 'no frame opens with a wrong key');
  assert.ok(w.refused >= 1 && w.dropped > 50, 'frames dropped, not played');
  assert.ok(ws.maxAudioLevel < 0.01, 'and nothing is heard');
  assert.match(await wrong.textContent('#status'), /does not open/,
    'the notice stays once the audio is connected (not "Listening" over silence)');

  // A browser without encoded transforms: it says so plainly.
  const old = await open(`${bare}&listen=1#${fragment}`, () => {
    delete window.RTCRtpScriptTransform;
    delete RTCRtpReceiver.prototype.createEncodedStreams;
  });
  await until('the unsupported-browser notice', async () => /cannot decrypt/.test(await old.textContent('#status')));
  assert.equal(await old.evaluate(() => window.ruang.pc), null);

  assert.deepEqual(problems, [], 'no script error, no CSP violation');
});
