// Clips and reports on the web pages: a member's browser (session token in localStorage) in a
// recorded room where a bot speaks clips the last 30 s and gets a link the server serves,
// reports a chat message and the room with a reason; the admin sees both reports with their
// evidence. A guest gets neither tool. After the room ends, the replay page offers the
// member "Report this room".
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { REPO, OUTPUT, startServer, signup, http, run, until, launchChromium } from './lib.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
});

test('members clip and report from the room page and report from the replay page; guests cannot', async () => {
  const server = await startServer();
  cleanup.push(() => server.stop());
  const admin = await signup(server, server.invite, 'host', 'Hosting Hana');
  const code = (await http(server, 'GET', '/v1/invites', admin))[0].code;
  const adi = await signup(server, code, 'adi', 'Adi');
  const room = await http(server, 'POST', '/v1/rooms', admin, { title: 'Recorded <talk>', kind: 'open', record: true });

  const bot = run(['bot', 'speak', '--server', server.url, '--token', admin, '--room', room.id,
    '--wav', join(REPO, 'assets', 'demo-speaker-a.wav'), '--loop', '--seconds', '60']);
  cleanup.push(async () => { bot.kill('SIGTERM'); await bot.done; });
  await until('the bot streaming', () => bot.out.includes('streaming') || (bot.exitCode !== null && Promise.reject(new Error(bot.out))));

  const browser = await launchChromium();
  cleanup.push(() => browser.close());
  const member = await browser.newContext();
  await member.addInitScript((token) => localStorage.setItem('ruang.token', token), adi);
  const page = await member.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  const guestPage = await (await browser.newContext()).newPage();
  guestPage.on('pageerror', (e) => problems.push(e.message));
  try {
    await page.goto(`${server.url}/r/${room.id}`);
    await guestPage.goto(`${server.url}/r/${room.id}`);
    // The recording badge and, for the member, the clip button.
    await page.waitForSelector('#recording', { state: 'visible' });
    await page.waitForSelector('#clip', { state: 'visible' });
    await page.waitForSelector('#report-room', { state: 'visible' });

    // A message from the host, reported by the member.
    const say = run(['chat', room.id, 'Buy followers at https://spam.example'], {
      env: { ...process.env, RUANG_SERVER: server.url, RUANG_TOKEN: admin },
    });
    assert.equal(await say.done, 0, say.out);
    await page.waitForSelector('#chat-list li .report-message');
    await guestPage.waitForSelector('#chat-list li');
    assert.equal(await guestPage.$('#chat-list li .report-message'), null, 'guests cannot report');
    assert.equal(await guestPage.isVisible('#tools'), false, 'guests get no clip or report tools');
    await page.click('#chat-list li .report-message');
    await page.waitForSelector('#report-form', { state: 'visible' });
    assert.equal(await page.textContent('#report-title'), 'Report the message from Hosting Hana');
    await page.selectOption('#report-reason', 'spam');
    await page.fill('#report-details', 'selling followers');
    await page.screenshot({ path: join(OUTPUT, 'report-message.png'), fullPage: true });
    await page.click('#report-form button[type="submit"]');
    await until('the message report sent', async () => /Thanks/.test(await page.textContent('#report-status')));
    assert.equal(await page.isVisible('#report-form'), false);

    // The room, reported with another reason.
    await page.click('#report-room');
    await page.selectOption('#report-reason', 'harassment');
    await page.click('#report-form button[type="submit"]');
    await until('the room report sent', async () => /Thanks/.test(await page.textContent('#report-status')));

    const reports = (await http(server, 'GET', '/v1/admin/reports', admin)).reports;
    const byKind = Object.fromEntries(reports.map((r) => [r.kind, r]));
    assert.equal(reports.length, 2, JSON.stringify(reports));
    assert.equal(byKind.message.reporter.handle, 'adi');
    assert.equal(byKind.message.reason, 'spam');
    assert.equal(byKind.message.details, 'selling followers');
    assert.equal(byKind.message.evidence.message_text, 'Buy followers at https://spam.example');
    assert.equal(byKind.room.reason, 'harassment');
    assert.equal(byKind.room.target_room, room.id);
    assert.ok(byKind.room.evidence.stage.some((s) => s.handle === 'host'), JSON.stringify(byKind.room.evidence));

    // A clip of the last 30 s: a link to a page the server serves, with the audio file.
    await page.click('#clip');
    const link = await page.waitForSelector('#clip-result a', { timeout: 15000 });
    const href = await link.getAttribute('href');
    assert.match(href, new RegExp(`^${server.url}/c/[a-z0-9]+$`));
    const clipPage = await fetch(href);
    assert.equal(clipPage.status, 200);
    const html = await clipPage.text();
    const audio = html.match(/src="\.\.\/media\/clips\/([a-z0-9]+\.ogg)"/);
    assert.ok(audio, html);
    const file = await fetch(`${server.url}/media/clips/${audio[1]}`);
    assert.equal(file.status, 200);
    const bytes = Buffer.from(await file.arrayBuffer());
    assert.equal(bytes.subarray(0, 4).toString(), 'OggS');
    await page.screenshot({ path: join(OUTPUT, 'clip-link.png'), fullPage: true });

    // The room ends; its replay page offers the member "Report this room" (guests: hidden).
    const end = run(['room', 'end', room.id], { env: { ...process.env, RUANG_SERVER: server.url, RUANG_TOKEN: admin } });
    assert.equal(await end.done, 0, end.out);
    await until('the replay', async () => (await fetch(`${server.url}/v1/rooms/${room.id}/replay`, {
      headers: { Authorization: `Bearer ${adi}` },
    })).status === 200, 60000);
    await page.goto(`${server.url}/r/${room.id}`);
    await page.waitForSelector('#player');
    await page.click('button[data-report-room]');
    await page.selectOption('#report-reason', 'hate');
    await page.click('#report-form button[type="submit"]');
    await until('the replay report sent', async () => /Thanks/.test(await page.textContent('#report-status')));
    await guestPage.goto(`${server.url}/r/${room.id}`);
    await guestPage.waitForSelector('#player');
    assert.equal(await guestPage.isVisible('button[data-report-room]'), false);
    // The same reporter on the same room: it joined the open report (still two reports).
    const after = (await http(server, 'GET', '/v1/admin/reports', admin)).reports;
    assert.equal(after.length, 2, JSON.stringify(after));
    await page.screenshot({ path: join(OUTPUT, 'replay-report.png'), fullPage: true });
    assert.deepEqual(problems, []);
  } catch (e) {
    console.error(bot.out);
    throw e;
  }
});

test('a moderator on the room page deletes messages and sets the chat, reactions and recording', async () => {
  const server = await startServer();
  cleanup.push(() => server.stop());
  const host = await signup(server, server.invite, 'host', 'Hosting Hana');
  const code = (await http(server, 'GET', '/v1/invites', host))[0].code;
  const adi = await signup(server, code, 'adi', 'Adi');
  const code2 = (await http(server, 'GET', '/v1/invites', host))[1].code;
  const budi = await signup(server, code2, 'budi', 'Budi');
  const room = await http(server, 'POST', '/v1/rooms', host, { title: 'Moderated', kind: 'open' });
  // Budi writes from the command line (his own connection; Adi's is his page's).
  const env = { ...process.env, RUANG_SERVER: server.url, RUANG_TOKEN: budi };

  const browser = await launchChromium();
  cleanup.push(() => browser.close());
  const as = async (token) => {
    const ctx = await browser.newContext();
    if (token) await ctx.addInitScript((t) => localStorage.setItem('ruang.token', t), token);
    const p = await ctx.newPage();
    p.on('pageerror', (e) => problems.push(e.message));
    await p.goto(`${server.url}/r/${room.id}`);
    return p;
  };
  const problems = [];
  const mod = await as(host);
  const member = await as(adi);
  const guest = await as(null);
  await mod.waitForSelector('#mod-tools', { state: 'visible' });
  assert.equal(await member.isVisible('#mod-tools'), false, 'only moderators get the settings');
  assert.equal(await guest.isVisible('#tools'), false);

  // Adi writes from his page; the moderator deletes it; it goes from every page.
  await member.fill('#chat-input', 'Off-topic ad');
  await member.click('#chat-form button[type="submit"]');
  await mod.waitForSelector('#chat-list li .delete-message', { state: 'visible' });
  await member.waitForSelector('#chat-list li .delete-message', { state: 'visible' }); // his own
  await guest.waitForSelector('#chat-list li');
  assert.equal(await guest.isVisible('#chat-list li .delete-message'), false);
  // Budi's message: no Delete for Adi (neither his nor a moderator).
  const say = run(['chat', room.id, 'Hello all'], { env });
  assert.equal(await say.done, 0, say.out);
  await until('budi\'s message on the member page', async () => (await member.$$('#chat-list li')).length === 2);
  assert.equal(await member.isVisible('#chat-list li:nth-child(2) .delete-message'), false);
  await mod.click('#chat-list li:first-child .delete-message');
  await until('gone from the guest page', async () => (await guest.$$('#chat-list li')).length === 1);
  assert.match(await guest.textContent('#chat-list li'), /Hello all/);
  // A page opened now gets the room's recent chat without it.
  const late = await as(null);
  await until('the late page has the chat', async () => (await late.$$('#chat-list li')).length === 1);
  assert.match(await late.textContent('#chat-list li'), /Hello all/, 'deleted on the server, not only on the pages');

  // Chat off: the member's page hides the form and the server refuses his message.
  await mod.selectOption('#chat-mode', 'off');
  await until('the member sees the chat off', async () => /switched the chat off/.test(await member.textContent('#chat-note')));
  assert.equal(await member.isVisible('#chat-form'), false);
  const refused = run(['chat', room.id, 'still here?'], { env });
  assert.notEqual(await refused.done, 0, refused.out);
  // Everyone again, with a slow mode.
  await mod.selectOption('#chat-mode', 'everyone');
  await mod.selectOption('#slow-mode', '30');
  await until('the member sees the slow mode', async () => /one message every 30 s/.test(await member.textContent('#chat-note')));

  // Reactions off, then recording on: every page follows.
  await mod.click('#toggle-reactions');
  await until('reactions hidden for the guest', async () => !(await guest.isVisible('#reactions')));
  // Each page hears the change from the server on its own: the moderator's may come later.
  await until('the moderator\'s button follows', async () => (await mod.textContent('#toggle-reactions')) === 'Turn reactions on');
  assert.equal(await guest.isVisible('#recording'), false);
  await mod.click('#toggle-recording');
  await guest.waitForSelector('#recording', { state: 'visible' });
  await until('the button follows', async () => (await mod.textContent('#toggle-recording')) === 'Stop recording');
  await member.waitForSelector('#clip', { state: 'visible' });
  await mod.screenshot({ path: join(OUTPUT, 'moderator-tools.png'), fullPage: true });
  assert.deepEqual(problems, []);
});
