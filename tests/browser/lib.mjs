// Shared helpers of the browser interop tests: the real `ruang` binary (RUANG_BIN), real
// headless Chromium (CHROMIUM, default /usr/bin/chromium) driven by playwright-core, and
// WAV helpers to make and check audio.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = join(here, '..', '..');
export const RUANG = process.env.RUANG_BIN || join(REPO, 'target', 'debug', 'ruang');
export const OUTPUT = process.env.RUANG_BROWSER_OUTPUT || join(here, 'output');
mkdirSync(OUTPUT, { recursive: true });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; fails with `what` after `ms`. */
export async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(200);
  }
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A child process whose output is kept (and shown if the test fails). */
export function run(args, opts = {}) {
  const child = spawn(RUANG, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  child.out = '';
  child.stdout.on('data', (d) => { child.out += d; });
  child.stderr.on('data', (d) => { child.out += d; });
  child.done = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return child;
}

/** `ruang serve` on free ports with a fresh data directory (on `ip`, 127.0.0.1 by default). */
export async function startServer(extra = [], ip = '127.0.0.1') {
  const dir = mkdtempSync(join(tmpdir(), 'ruang-browser-'));
  const port = await freePort();
  const url = `http://${ip}:${port}`;
  const args = ['serve', '--addr', `${ip}:${port}`, '--data', join(dir, 'data'), '--rtc-port', '0', ...extra];
  const spawnServer = () => run(args, {
    env: { ...process.env, RUANG_LOG: process.env.RUANG_LOG || 'info,sqlx=warn' },
  });
  const server = { url, dir, proc: spawnServer() };
  await until('the server', async () => (await fetch(`${url}/healthz`)).ok);
  server.invite = readFileSync(join(dir, 'data', 'first-invite.txt'), 'utf8').trim();
  /** Stops gracefully (SIGTERM) and starts again on the same port and data. */
  server.restart = async () => {
    server.proc.kill('SIGTERM');
    await server.proc.done;
    await until('the server back', async () => {
      if (server.proc.exitCode !== null) server.proc = spawnServer(); // port not free yet
      return (await fetch(`${url}/healthz`)).ok;
    });
  };
  server.stop = async () => {
    server.proc.kill('SIGTERM');
    await server.proc.done;
    rmSync(dir, { recursive: true, force: true });
  };
  return server;
}

export async function http(server, method, path, token, body) {
  const r = await fetch(server.url + path, {
    method,
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  const json = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return json;
}

export async function signup(server, invite, handle, name) {
  return (await http(server, 'POST', '/v1/signup', null, { invite, handle, name })).token;
}

/** Headless Chromium as TOOLCHAIN.md says; `fakeMic` is a WAV it loops as the microphone;
 * `extra` are more command-line switches; `opts.executable` another launcher. */
export async function launchChromium(fakeMic, extra = [], opts = {}) {
  const args = [
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    '--autoplay-policy=no-user-gesture-required',
    // Test-only: the server's only candidate is on 127.0.0.1; let WebRTC use loopback.
    '--allow-loopback-in-peer-connection',
  ];
  if (fakeMic) args.push(`--use-file-for-fake-audio-capture=${fakeMic}`);
  args.push(...extra);
  return chromium.launch({
    executablePath: opts.executable || process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args,
  });
}

/** Sums the page's RTCPeerConnection audio stats (window.ruang.pc, see server/web/room.js). */
export async function audioStats(page) {
  return page.evaluate(async () => {
    const pc = window.ruang && window.ruang.pc;
    const out = { inboundPackets: 0, maxAudioLevel: 0, outboundPackets: 0, state: pc ? pc.connectionState : 'none' };
    if (!pc) return out;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out.inboundPackets += s.packetsReceived || 0;
        out.maxAudioLevel = Math.max(out.maxAudioLevel, s.audioLevel || 0);
      }
      if (s.type === 'outbound-rtp' && s.kind === 'audio') out.outboundPackets += s.packetsSent || 0;
    });
    return out;
  });
}

/** The transport the page's media uses now: the selected candidate pair's local and remote
 * candidates (type, protocol, and for a relay the protocol to the TURN server). */
export async function selectedPath(page) {
  return page.evaluate(async () => {
    const pc = window.ruang && window.ruang.pc;
    if (!pc) return null;
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    if (!pair) return null;
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    return {
      state: pair.state,
      local: { type: local.candidateType, protocol: local.protocol, relayProtocol: local.relayProtocol },
      remote: { type: remote.candidateType, protocol: remote.protocol, port: remote.port },
    };
  });
}

/** A network namespace joined to this one by a veth pair (root and iproute2 needed), its
 * firewall (nftables) dropping every UDP packet in and out: a network that lets only TCP
 * through. `hostIp` is this side's address, reachable from inside; `chromium` is a
 * launcher that runs Chromium inside. Null (with the reason logged) when it cannot be made. */
export function udpBlockedNetns() {
  const id = process.pid % 10000;
  const ns = { name: `ruang-bw-${id}`, hostIf: `rbw${id}h`, nsIf: `rbw${id}n`, net: `10.216.${id % 250}` };
  const ip = (...a) => execFileSync('ip', a, { stdio: 'pipe' });
  try {
    try { ip('netns', 'del', ns.name); } catch {}
    try { ip('link', 'del', ns.hostIf); } catch {}
    ip('netns', 'add', ns.name);
    ip('link', 'add', ns.hostIf, 'type', 'veth', 'peer', 'name', ns.nsIf);
    ip('link', 'set', ns.nsIf, 'netns', ns.name);
    ip('addr', 'add', `${ns.net}.1/24`, 'dev', ns.hostIf);
    ip('link', 'set', ns.hostIf, 'up');
    ip('-n', ns.name, 'link', 'set', 'lo', 'up');
    ip('-n', ns.name, 'addr', 'add', `${ns.net}.2/24`, 'dev', ns.nsIf);
    ip('-n', ns.name, 'link', 'set', ns.nsIf, 'up');
    ip('-n', ns.name, 'route', 'replace', 'default', 'via', `${ns.net}.1`);
    execFileSync('ip', ['netns', 'exec', ns.name, 'nft', '-f', '-'], {
      input: `table inet ruang {
        chain out { type filter hook output priority 0; policy accept; meta l4proto udp counter drop; }
        chain in { type filter hook input priority 0; policy accept; meta l4proto udp counter drop; }
      }\n`,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    console.log(`no network namespace: ${e.message}`);
    try { ip('link', 'del', ns.hostIf); } catch {}
    try { ip('netns', 'del', ns.name); } catch {}
    return null;
  }
  ns.hostIp = `${ns.net}.1`;
  ns.dir = mkdtempSync(join(tmpdir(), 'ruang-netns-'));
  ns.chromium = join(ns.dir, 'chromium-in-netns');
  writeFileSync(ns.chromium, `#!/bin/sh\nexec ip netns exec ${ns.name} ${process.env.CHROMIUM || '/usr/bin/chromium'} "$@"\n`);
  chmodSync(ns.chromium, 0o755);
  /** UDP packets the firewall dropped so far. */
  ns.udpDropped = () => {
    const out = execFileSync('ip', ['netns', 'exec', ns.name, 'nft', 'list', 'table', 'inet', 'ruang']).toString();
    return [...out.matchAll(/counter packets (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  };
  ns.destroy = () => {
    try { ip('link', 'del', ns.hostIf); } catch {}
    try { ip('netns', 'del', ns.name); } catch {}
    rmSync(ns.dir, { recursive: true, force: true });
  };
  return ns;
}

/** Debian's coturn with the TURN REST shared secret, listening on `ip` for TURN over UDP and
 * TCP (`port`) and TURN over TLS (`tlsPort`: `tlsPortWanted`, else a free one; a self-signed
 * certificate). */
export async function startCoturn(ip = '127.0.0.1', tlsPortWanted = 0) {
  const dir = mkdtempSync(join(tmpdir(), 'ruang-turn-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const gen = spawn('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-days', '2', '-subj', `/CN=${ip}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const code = await new Promise((r) => gen.on('exit', r));
  if (code !== 0) throw new Error('openssl could not make a certificate');
  const port = await freePort();
  let tlsPort = tlsPortWanted || await freePort();
  while (tlsPort === port) tlsPort = await freePort();
  const secret = `s${Math.random().toString(16).slice(2)}`;
  const log = join(dir, 'turn.log');
  const child = spawn('turnserver', ['-n', '--no-cli', '--no-dtls', '--no-rfc5780', '--simple-log', '--verbose',
    '--allow-loopback-peers', '--no-multicast-peers', '--use-auth-secret', '--realm=ruang.test',
    `--static-auth-secret=${secret}`, `--listening-ip=${ip}`, `--relay-ip=${ip}`,
    `--listening-port=${port}`, `--tls-listening-port=${tlsPort}`, `--cert=${cert}`, `--pkey=${key}`,
    '--min-port=45000', '--max-port=45999', `--log-file=${log}`, `--pidfile=${join(dir, 'turn.pid')}`,
    `--userdb=${join(dir, 'turndb')}`], { stdio: 'ignore' });
  const turn = { port, tlsPort, secret, dir, child, log: () => { try { return readFileSync(log, 'utf8'); } catch { return ''; } } };
  await until('coturn listening', async () => {
    if (child.exitCode !== null) throw new Error(`turnserver exited: ${turn.log()}`);
    return turn.log().includes('Total General servers');
  }, 10000);
  turn.stop = async () => {
    child.kill('SIGTERM');
    if (child.exitCode === null) await new Promise((r) => child.on('exit', r));
    rmSync(dir, { recursive: true, force: true });
  };
  return turn;
}

// ----- audio -----

export const RATE = 48000;

/** 16-bit PCM mono WAV bytes. */
export function wavBytes(samples, rate = RATE) {
  const buf = Buffer.alloc(44 + samples.length * 2);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + samples.length * 2, 4);
  buf.write('WAVE', 8);
  buf.write('fmt ', 12);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36);
  buf.writeUInt32LE(samples.length * 2, 40);
  samples.forEach((v, i) => buf.writeInt16LE(Math.max(-32767, Math.min(32767, Math.round(v * 32767))), 44 + i * 2));
  return buf;
}

/** Reads a 16-bit PCM WAV (first channel) as floats. */
export function readWav(path) {
  const buf = readFileSync(path);
  let pos = 12;
  let channels = 1;
  let rate = RATE;
  while (pos + 8 <= buf.length) {
    const id = buf.toString('ascii', pos, pos + 4);
    const len = buf.readUInt32LE(pos + 4);
    if (id === 'fmt ') {
      channels = buf.readUInt16LE(pos + 10);
      rate = buf.readUInt32LE(pos + 12);
      if (buf.readUInt16LE(pos + 22) !== 16) throw new Error('not 16-bit PCM');
    } else if (id === 'data') {
      const n = Math.floor(Math.min(len, buf.length - pos - 8) / (2 * channels));
      const out = new Float32Array(n);
      for (let i = 0; i < n; i += 1) out[i] = buf.readInt16LE(pos + 8 + i * 2 * channels) / 32768;
      return { rate, samples: out };
    }
    pos += 8 + len + (len % 2);
  }
  throw new Error('no data chunk');
}

/**
 * A distinctive signal: a cycle of 200 ms tones at TONES (Hz), then 200 ms of silence,
 * repeated `cycles` times. Chromium loops it as the fake microphone.
 */
export const TONES = [440, 660, 990, 550];
const SEGMENT = 0.2;
export function toneWav(path, cycles = 5) {
  const seg = Math.round(SEGMENT * RATE);
  const samples = [];
  for (let c = 0; c < cycles; c += 1) {
    for (const f of [...TONES, 0]) {
      for (let i = 0; i < seg; i += 1) {
        // 5 ms fades keep the segment edges click-free.
        const fade = Math.min(1, i / 240, (seg - i) / 240);
        samples.push(f ? 0.5 * fade * Math.sin((2 * Math.PI * f * i) / RATE) : 0);
      }
    }
  }
  writeFileSync(path, wavBytes(samples));
}

/** Power of `freq` in a frame (Goertzel), normalised by the frame's total power. */
function toneShare(frame, freq, rate) {
  const k = (2 * Math.cos((2 * Math.PI * freq) / rate));
  let s1 = 0;
  let s2 = 0;
  let energy = 0;
  for (const x of frame) {
    const s = x + k * s1 - s2;
    s2 = s1;
    s1 = s;
    energy += x * x;
  }
  const power = s1 * s1 + s2 * s2 - k * s1 * s2;
  return energy > 0 ? (2 * power) / (frame.length * energy) : 0;
}

/**
 * Labels each 20 ms frame of `samples` with the index of the tone of TONES that carries
 * most of its power (share > 0.5), or -1 (silence or something else). Returns the labels
 * and the collapsed run sequence.
 */
export function toneFrames(samples, rate) {
  const n = Math.round(0.02 * rate);
  const labels = [];
  for (let i = 0; i + n <= samples.length; i += n) {
    const frame = samples.subarray(i, i + n);
    let rms = 0;
    for (const x of frame) rms += x * x;
    rms = Math.sqrt(rms / n);
    let best = -1;
    let bestShare = 0.5;
    if (rms > 0.01) {
      TONES.forEach((f, j) => {
        const share = toneShare(frame, f, rate);
        if (share > bestShare) { best = j; bestShare = share; }
      });
    }
    labels.push(best);
  }
  // Runs of at least 3 frames (60 ms) of the same tone.
  const runs = [];
  let cur = -2;
  let len = 0;
  for (const l of [...labels, -2]) {
    if (l === cur) { len += 1; continue; }
    if (cur >= 0 && len >= 3) runs.push(cur);
    cur = l;
    len = 1;
  }
  return { labels, runs };
}

/** How many times the full tone cycle TONES[0] → … → TONES[3] appears in order. */
export function fullCycles(runs) {
  let count = 0;
  for (let i = 0; i + TONES.length <= runs.length; i += 1) {
    if (TONES.every((_, j) => runs[i + j] === j)) count += 1;
  }
  return count;
}
