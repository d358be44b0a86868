// Chromium on a network that drops every UDP packet (a network namespace whose nftables
// firewall drops UDP both ways; root needed, CI has it): the page still hears the room,
// through the SFU's ICE-TCP candidate, or, on a server without it (--no-rtc-tcp), through
// coturn over TCP or over TLS, with the TURN credentials from its welcome. The selected
// candidate pair says which path carried the audio; the firewall's counters say UDP was
// tried and dropped.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { REPO, startServer, signup, http, run, until, launchChromium, audioStats, selectedPath, startCoturn, udpBlockedNetns } from './lib.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
});

const ns = udpBlockedNetns();
if (ns) cleanup.push(async () => ns.destroy());
const skip = ns ? false : (process.env.RUANG_REQUIRE_NETNS ? false : 'needs root (network namespaces)');
if (!ns && process.env.RUANG_REQUIRE_NETNS) throw new Error('RUANG_REQUIRE_NETNS is set but no network namespace could be made');

/** A room with a bot speaking, and Chromium inside the namespace listening as a guest: the
 * path it took and the time from opening the page to the first audio level. */
async function listenFromInside(server, title, switches = []) {
  const host = await signup(server, server.invite, 'host', 'Hosting Hana');
  const room = await http(server, 'POST', '/v1/rooms', host, { title, kind: 'open' });
  const bot = run(['bot', 'speak', '--server', server.url, '--token', host, '--room', room.id,
    '--wav', join(REPO, 'assets', 'demo-speaker-a.wav'), '--loop', '--seconds', '60']);
  cleanup.push(async () => { bot.kill('SIGTERM'); await bot.done; });
  await until('the bot streaming', () => bot.out.includes('streaming') || (bot.exitCode !== null && Promise.reject(new Error(bot.out))));
  const browser = await launchChromium(undefined, switches, { executable: ns.chromium });
  cleanup.push(() => browser.close());
  // Each join opens the room in a fresh page (RUANG_FIREWALL_JOINS times, default 1) and
  // times it from opening the link to the first audio level: page load, WebSocket, TURN
  // allocation, ICE, DTLS.
  const joins = Number(process.env.RUANG_FIREWALL_JOINS || 1);
  const times = [];
  let path;
  for (let k = 0; k < joins; k += 1) {
    const page = await browser.newPage();
    const t0 = Date.now();
    await page.goto(`${server.url}/r/${room.id}?listen=1`);
    await until('inbound audio with a level', async () => (await audioStats(page)).maxAudioLevel > 0.01);
    times.push(Date.now() - t0);
    await until('100 packets', async () => (await audioStats(page)).inboundPackets > 100);
    path = await selectedPath(page);
    await page.close();
  }
  const sorted = [...times].sort((a, b) => a - b);
  const p95 = sorted[Math.max(1, Math.ceil(sorted.length * 0.95)) - 1];
  console.log(`${title}: audio ${times.join(', ')} ms after opening the page (p50 ${sorted[Math.floor(sorted.length / 2)]} ms, p95 ${p95} ms, ${times.length} joins); path ${JSON.stringify(path)}; ${ns.udpDropped()} UDP packets dropped so far`);
  await browser.close();
  return { path };
}

test('with UDP blocked, Chromium hears the room over the SFU\'s ICE-TCP candidate', { skip }, async () => {
  const server = await startServer([], ns.hostIp);
  cleanup.push(() => server.stop());
  const { path } = await listenFromInside(server, 'UDP blocked, ICE-TCP');
  assert.equal(path.local.protocol, 'tcp', JSON.stringify(path));
  assert.equal(path.remote.protocol, 'tcp', JSON.stringify(path));
  assert.equal(path.remote.type, 'host', 'straight to the SFU, no relay');
  assert.ok(ns.udpDropped() > 0, 'Chromium tried UDP and the firewall dropped it');
});

test('with UDP blocked and no ICE-TCP, Chromium hears the room through TURN over TCP, then over TLS', { skip }, async () => {
  // TLS on 443, where networks that allow only HTTPS let it through (the namespace's own
  // address, so nothing else on the machine holds it).
  const turn = await startCoturn(ns.hostIp, 443);
  cleanup.push(() => turn.stop());
  for (const [url, relayProtocol, switches] of [
    [`turn:${ns.hostIp}:${turn.port}?transport=tcp`, 'tcp', []],
    // The test's TURN certificate is self-signed (an operator's has a real one, e.g. from
    // Let's Encrypt): Chromium is told to accept it.
    [`turns:${ns.hostIp}:${turn.tlsPort}?transport=tcp`, 'tls', ['--ignore-certificate-errors']],
  ]) {
    const server = await startServer(['--no-rtc-tcp', '--turn-url', url, '--turn-secret', turn.secret], ns.hostIp);
    cleanup.push(() => server.stop());
    const { path } = await listenFromInside(server, `UDP blocked, TURN/${relayProtocol}`, switches);
    assert.equal(path.local.type, 'relay', JSON.stringify(path));
    assert.equal(path.local.relayProtocol, relayProtocol, JSON.stringify(path));
    assert.match(turn.log(), /usage: realm=<ruang\.test>/, 'coturn relayed it');
    await server.stop();
  }
});
