// Reactions and the room chat on the room page: Chromium opens the link as a guest (read-only
// chat, reaction buttons), a member posts with the CLI (a link and some markup) and reacts;
// the page shows the message as text with a safe link, and the burst floats over the host's
// tile. The guest's own reaction reaches a member's `ruang chat --tail`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OUTPUT, startServer, signup, http, run, until, launchChromium } from './lib.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
});

test('the room page shows chat messages and reaction bursts; guests read only', async () => {
  const server = await startServer();
  cleanup.push(() => server.stop());
  const host = await signup(server, server.invite, 'host', 'Hosting Hana');
  const code = (await http(server, 'GET', '/v1/invites', host))[0].code;
  const adi = await signup(server, code, 'adi', 'Adi');
  const room = await http(server, 'POST', '/v1/rooms', host, { title: 'Chatty', kind: 'open' });

  const browser = await launchChromium();
  cleanup.push(() => browser.close());
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  let alerted = false;
  page.on('dialog', async (d) => { alerted = true; await d.dismiss(); });
  try {
    const resp = await page.goto(`${server.url}/r/${room.id}`);
    assert.equal(resp.status(), 200);
    await page.waitForSelector('#reactions button[data-reaction="clap"]');
    // A guest: the chat is read-only.
    await until('the guest note', async () => /Guests read the chat/.test(await page.textContent('#chat-note')));
    assert.equal(await page.isVisible('#chat-form'), false);

    const env = { ...process.env, RUANG_SERVER: server.url, RUANG_TOKEN: adi };
    const say = run(['chat', room.id, 'See https://example.org/a?b=1 <img src=x onerror=alert(1)>'], { env });
    assert.equal(await say.done, 0, say.out);
    const item = await page.waitForSelector('#chat-list li');
    assert.equal(await item.$eval('.author', (e) => e.textContent), 'Adi');
    assert.equal(await item.$eval('.text', (e) => e.textContent), 'See https://example.org/a?b=1 <img src=x onerror=alert(1)>');
    const link = await page.$eval('#chat-list li a', (a) => ({ href: a.href, rel: a.rel, text: a.textContent }));
    assert.deepEqual(link, { href: 'https://example.org/a?b=1', rel: 'noopener nofollow ugc', text: 'https://example.org/a?b=1' });
    assert.equal(await page.$('#chat-list img'), null, 'markup stays text');

    // A member's +1 to the host floats over the host's tile.
    // The four taps arrive as one burst, or as two when they straddle the server's 250 ms
    // window: every floater shown over the tile is noted, and their counts add up to 4.
    const hostId = await page.$eval('#stage li', (li) => li.dataset.user);
    await page.evaluate((id) => {
      window.floated = [];
      const tile = document.querySelector(`#stage li[data-user="${id}"]`);
      new MutationObserver((changes) => changes.forEach((c) => c.addedNodes.forEach((n) => {
        if (n.classList && n.classList.contains('floater')) window.floated.push(n.textContent);
      }))).observe(tile, { childList: true });
    }, hostId);
    const react = run(['react', room.id, '+1', '--to', 'host', '--count', '4'], { env });
    assert.equal(await react.done, 0, react.out);
    await page.waitForSelector(`#stage li[data-user="${hostId}"] .floater`, { state: 'attached', timeout: 5000 });
    const counted = () => page.evaluate(() => window.floated.reduce((sum, t) => {
      const m = /^\+1(?: ×(\d+))?$/.exec(t);
      return m ? sum + (m[1] ? Number(m[1]) : 1) : NaN;
    }, 0));
    await until('the +1 bursts add up to 4', async () => (await counted()) === 4, 5000);
    await page.screenshot({ path: join(OUTPUT, 'chat-and-reactions.png'), fullPage: true });

    // The guest's clap reaches a member tailing the chat.
    const tail = run(['chat', room.id, '--tail', '--seconds', '6'], { env });
    cleanup.push(async () => { tail.kill('SIGTERM'); await tail.done; });
    await until('the tail joined', async () => tail.out.includes('#1\t@adi'));
    await page.click('#reactions button[data-reaction="clap"]');
    await page.click('#reactions button[data-reaction="clap"]');
    // Two taps: one burst or two, 2 in total.
    const claps = () => [...tail.out.matchAll(/👏 x(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    await until('the claps in the tail', async () => claps() >= 2);
    assert.equal(claps(), 2);
    assert.equal(alerted, false);
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});
