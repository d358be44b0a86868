// Ruang: the receiver side of SFrame (RFC 9605) for browser guests of an end-to-end
// encrypted room (docs/protocol.md §15.6). Runs as the worker of an RTCRtpScriptTransform:
// every received audio frame is an SFrame ciphertext of one Opus frame; it is opened with the
// epoch's base key (handed over by the page, which opened the guest envelope with the key in
// the link's fragment) and passed on, or dropped when it does not open (unknown epoch,
// forgery, replay): the decoder then conceals, it never plays noise.
//
// Cipher suite AES_128_GCM_SHA256_128 (0x0004). Key ids are `sender << 8 | epoch mod 256`
// (§15.5), so the epoch a frame belongs to is the key id's low byte.
'use strict';

const SUITE = 4;
const NONCE = 12;
const REPLAY_WINDOW = 256n;
const utf8 = new TextEncoder();

/** epoch mod 256 → { epoch, base: CryptoKey (HKDF) } for the current and previous epoch. */
const bases = new Map();
/** `${epoch}/${kid}` → Promise<{ key, salt }> */
const derived = new Map();
/** kid → { max: BigInt, seen: Set<BigInt> } */
const replay = new Map();
const counts = { opened: 0, dropped: 0 };

function label(kind, kid) {
  const l = utf8.encode('SFrame 1.0 ' + kind);
  const out = new Uint8Array(l.length + 10);
  out.set(l);
  const v = new DataView(out.buffer);
  v.setBigUint64(l.length, kid);
  v.setUint16(l.length + 8, SUITE);
  return out;
}

// RFC 9605 §4.4.2: sframe_secret = HKDF-Extract("", base_key); key and salt are expanded
// with labels naming the key id and the suite (WebCrypto's HKDF does both steps).
async function derive(base, kid) {
  const hkdf = (info) => ({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info });
  const key = await crypto.subtle.deriveKey(hkdf(label('Secret key ', kid)), base,
    { name: 'AES-GCM', length: 128 }, false, ['decrypt']);
  const salt = new Uint8Array(await crypto.subtle.deriveBits(hkdf(label('Secret salt ', kid)), base, NONCE * 8));
  return { key, salt };
}

// RFC 9605 §4.3: |X| K |Y| C | then the key id and counter fields when long.
function header(b) {
  if (b.length < 1) return null;
  const c = b[0];
  let i = 1;
  const field = (long, n) => {
    if (!long) return BigInt(n);
    const len = n + 1;
    if (b.length < i + len) return null;
    let v = 0n;
    for (let j = 0; j < len; j += 1) v = (v << 8n) | BigInt(b[i + j]);
    i += len;
    return v;
  };
  const kid = field(c & 0x80, (c >> 4) & 7);
  if (kid === null) return null;
  const ctr = field(c & 0x08, c & 7);
  if (ctr === null) return null;
  return { kid, ctr, len: i };
}

function fresh(kid, ctr) {
  let r = replay.get(kid);
  if (!r) { r = { max: -1n, seen: new Set() }; replay.set(kid, r); }
  if (ctr + REPLAY_WINDOW <= r.max || r.seen.has(ctr)) return false;
  r.seen.add(ctr);
  if (ctr > r.max) r.max = ctr;
  if (r.seen.size > Number(REPLAY_WINDOW)) {
    for (const s of r.seen) if (s + REPLAY_WINDOW <= r.max) r.seen.delete(s);
  }
  return true;
}

/** Opens one SFrame ciphertext: the Opus frame, or null. */
async function open(data) {
  const h = header(data);
  if (!h || data.length < h.len + 16) return null;
  const epoch = bases.get(Number(h.kid & 0xffn));
  if (!epoch) return null;
  const id = epoch.epoch + '/' + h.kid;
  let d = derived.get(id);
  if (!d) { d = derive(epoch.base, h.kid); derived.set(id, d); }
  const { key, salt } = await d;
  const iv = salt.slice();
  for (let j = 0; j < 8; j += 1) iv[NONCE - 1 - j] ^= Number((h.ctr >> BigInt(8 * j)) & 0xffn);
  try {
    const plain = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv, additionalData: data.subarray(0, h.len), tagLength: 128 },
      key, data.subarray(h.len));
    return fresh(h.kid, h.ctr) ? plain : null;
  } catch (e) {
    return null;
  }
}

async function install(epoch, raw) {
  const base = await crypto.subtle.importKey('raw', raw, 'HKDF', false, ['deriveKey', 'deriveBits']);
  const lsb = epoch % 256;
  const old = bases.get(lsb);
  if (old && old.epoch >= epoch) return;
  bases.set(lsb, { epoch, base });
  // Keep this epoch and the one before (frames in flight across a commit).
  for (const [k, v] of bases) if (v.epoch + 1 < epoch) bases.delete(k);
  for (const k of derived.keys()) {
    const e = Number(k.split('/')[0]);
    if (e + 1 < epoch) derived.delete(k);
  }
}

function decrypting(readable, writable) {
  readable.pipeThrough(new TransformStream({
    async transform(frame, out) {
      let plain = null;
      try {
        plain = await open(new Uint8Array(frame.data));
      } catch (err) {
        self.postMessage({ error: String(err) });
      }
      if (plain) {
        frame.data = plain;
        counts.opened += 1;
        out.enqueue(frame);
      } else {
        counts.dropped += 1;
      }
    },
  })).pipeTo(writable);
}

self.onmessage = (e) => {
  const m = e.data || {};
  if (typeof m.epoch === 'number' && m.base) install(m.epoch, m.base);
  // Chromium's encoded streams (the page created them on the receiver and sent them here).
  if (m.readable && m.writable) decrypting(m.readable, m.writable);
};

// The standard API (RTCRtpScriptTransform).
self.onrtctransform = (e) => decrypting(e.transformer.readable, e.transformer.writable);

self.postMessage({ ready: true });
setInterval(() => self.postMessage({ counts }), 500);
