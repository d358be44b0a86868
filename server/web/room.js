// Ruang room page: listen in the browser with its own WebRTC (docs/protocol.md §9).
// Joins the room's WebSocket as a guest (or as the member whose session token is in
// localStorage "ruang.token"), keeps the stage, speaking rings and listener count live,
// and on "Listen here" sends a media_offer with receive-only slots. A member may raise a
// hand and accept an invitation to speak; on stage the page publishes the microphone.
'use strict';
(() => {
  const root = document.getElementById('room');
  if (!root) return;
  const roomId = root.dataset.room;
  const linkToken = root.dataset.linkToken || '';
  const $ = (id) => document.getElementById(id);
  const stageEl = $('stage');
  const listenBtn = $('listen');
  const muteBtn = $('mute');
  const handBtn = $('hand');
  const inviteBox = $('invite');
  const statusEl = $('status');
  const SLOTS = 4; // receive slots, as the reference client
  const SPEAKING = 0.05;

  const api = (path) => new URL('../v1/rooms/' + encodeURIComponent(roomId) + path, location.href);
  const memberToken = () => { try { return localStorage.getItem('ruang.token'); } catch (e) { return null; } };

  let ws = null;
  let pc = null;
  let me = null; // our user id
  let iceServers = []; // from the welcome: TURN for networks that block the SFU
  let myRole = 'listener';
  let myMuted = true;
  let handRaised = false;
  let handsEnabled = true;
  let req = 0;
  let wantAudio = root.dataset.listen === '1';
  let attempt = 0;
  let stopped = false;
  let mediaGen = 0;
  let blocked = false; // the browser refused to play without a gesture
  const levels = new Map();
  const audios = [];

  // ----- end-to-end encrypted rooms (docs/protocol.md §15.6) -----
  // A guest link carries the guest key in its fragment (#k=…), which the browser never sends
  // to the server. With it the page opens each epoch's sealed media key, and a worker
  // decrypts every received frame (RTCRtpScriptTransform). Without it, nothing can be heard.
  const guestKey = (() => {
    const m = /(?:^|&)k=([A-Za-z0-9_-]{16,64})/.exec(location.hash.slice(1));
    return m ? m[1] : null;
  })();
  let encrypted = false;
  let sframeWorker = null;
  const e2ee = { opened: 0, dropped: 0, epochs: [], refused: 0 };
  // Chromium's encoded streams where it has them (its RTCRtpScriptTransform does not see
  // the frames of a stream an SFU forwards), else the standard RTCRtpScriptTransform.
  const encodedStreams = () => typeof RTCRtpSender !== 'undefined' &&
    typeof RTCRtpReceiver.prototype.createEncodedStreams === 'function';
  const canDecrypt = () => window.isSecureContext && !!(window.crypto && crypto.subtle) &&
    (encodedStreams() || typeof RTCRtpScriptTransform === 'function');
  const fromB64 = (s) => {
    const t = s.replace(/-/g, '+').replace(/_/g, '/');
    return Uint8Array.from(atob(t + '='.repeat((4 - (t.length % 4)) % 4)), (c) => c.charCodeAt(0));
  };
  // What keeps this page from playing an encrypted room, or null.
  function e2eeProblem() {
    if (!encrypted) return null;
    if (!guestKey) {
      return 'This room is end-to-end encrypted, and this link has no key. Ask someone in the room ' +
        'for its guest link: the key is the part after #, which is never sent to this server.';
    }
    if (!canDecrypt()) {
      return 'This room is end-to-end encrypted, and this browser cannot decrypt its audio here ' +
        '(it needs WebRTC encoded transforms on a secure https page). Listen in the Ruang app.';
    }
    return null;
  }
  // The worker must be running before a transform is attached: Chromium hands the
  // transform to the worker once, and a worker still loading would miss it (frames would
  // then pass through untouched). It says "ready" as it starts.
  let workerReady = null;
  function worker() {
    if (!sframeWorker) {
      sframeWorker = new Worker(new URL(root.dataset.sframe, location.href));
      workerReady = new Promise((ready) => {
        sframeWorker.onmessage = (e) => {
          if (e.data && e.data.ready) ready();
          if (e.data && e.data.error) console.error('sframe worker: ' + e.data.error);
          if (e.data && e.data.counts) {
            e2ee.opened = e.data.counts.opened;
            e2ee.dropped = e.data.counts.dropped;
          }
        };
      });
    }
    return sframeWorker;
  }
  // Opens one epoch's envelope (12-byte nonce, AES-128-GCM of the base key) with the guest key.
  async function openGuestKey(k) {
    if (!encrypted || e2eeProblem() || e2ee.epochs.includes(k.epoch)) return;
    try {
      const raw = fromB64(k.envelope);
      const utf8 = new TextEncoder();
      const room = utf8.encode(roomId);
      const prefix = utf8.encode('ruang guest key 1\0');
      const aad = new Uint8Array(prefix.length + room.length + 9);
      aad.set(prefix);
      aad.set(room, prefix.length);
      new DataView(aad.buffer).setBigUint64(prefix.length + room.length + 1, BigInt(k.epoch));
      const key = await crypto.subtle.importKey('raw', fromB64(guestKey), 'AES-GCM', false, ['decrypt']);
      const base = await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: raw.subarray(0, 12), additionalData: aad }, key, raw.subarray(12));
      if (e2ee.epochs.includes(k.epoch)) return;
      e2ee.epochs.push(k.epoch);
      worker().postMessage({ epoch: k.epoch, base }, [base]);
    } catch (err) {
      e2ee.refused += 1;
      status(keyNotice());
    }
  }
  // While no epoch's key opened and one was refused, that stays the page's status: the
  // audio connecting afterwards must not replace it with "Listening" over silence.
  function keyNotice() {
    if (!encrypted || e2ee.refused === 0 || e2ee.epochs.length > 0) return '';
    return 'The key in this link does not open this room\'s audio: the link is old or incomplete.';
  }
  function renderE2ee(state) {
    encrypted = !!state;
    $('e2ee').hidden = !encrypted;
    if (!encrypted) return;
    (state.guest_keys || []).forEach(openGuestKey);
    const problem = e2eeProblem();
    if (problem) {
      wantAudio = false;
      listenBtn.hidden = true;
      status(problem);
    }
  }

  const status = (text) => { statusEl.textContent = text; };

  function send(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  // ----- stage rendering -----
  const roleLabel = (role) => (role === 'moderator' ? 'Host' : 'Speaker');

  function stageItem(p) {
    let li = stageEl.querySelector('li[data-user="' + CSS.escape(p.user.id) + '"]');
    if (!li) {
      li = document.createElement('li');
      li.dataset.user = p.user.id;
      const avatar = document.createElement('span');
      avatar.className = 'avatar';
      avatar.setAttribute('aria-hidden', 'true');
      const name = document.createElement('span');
      name.className = 'name';
      const role = document.createElement('span');
      role.className = 'role';
      li.append(avatar, name, role);
      stageEl.append(li);
    }
    const avatar = li.querySelector('.avatar');
    // A photo when the member has one (same origin, content-hashed URL), else the initial.
    if (p.user.avatar && /^[0-9a-f]{32}$/.test(p.user.avatar)) {
      let img = avatar.querySelector('img');
      if (!img) {
        img = document.createElement('img');
        img.alt = '';
        img.width = 128;
        img.height = 128;
        avatar.textContent = '';
        avatar.append(img);
      }
      const src = '../media/avatars/' + p.user.avatar + '-128.jpg';
      if (img.getAttribute('src') !== src) img.setAttribute('src', src);
    } else {
      avatar.textContent = (p.user.name || '?').charAt(0).toUpperCase();
    }
    li.querySelector('.name').textContent = p.user.name;
    li.querySelector('.role').textContent = roleLabel(p.role) + (p.muted ? ' · muted' : '');
    return li;
  }

  function upsert(p) {
    const onStage = p.role === 'moderator' || p.role === 'speaker';
    if (onStage) stageItem(p);
    else removeFromStage(p.user.id);
    if (p.user.id === me) setMine(p.role, p.muted);
  }

  function removeFromStage(id) {
    const li = stageEl.querySelector('li[data-user="' + CSS.escape(id) + '"]');
    if (li) li.remove();
    levels.delete(id);
  }

  function renderSnapshot(room) {
    stageEl.textContent = '';
    levels.clear();
    room.stage.forEach(stageItem);
    $('title').textContent = room.title;
    $('listeners').textContent = room.counts.listeners;
    handRaised = room.your_hand_raised;
    handsEnabled = room.hands_enabled;
    clipsAllowed = !!room.clips;
    renderRecording(!!room.recording);
    renderE2ee(room.e2ee);
    showInvite(room.invited_to_speak ? null : false);
    setMine(room.you.role, room.you.muted);
    renderSpeaking();
    renderChat(room);
  }

  const isGuest = () => !me || me.startsWith('guest-');

  // Members in the audience may raise a hand; guests listen only (the server enforces it).
  function renderHand() {
    // The page cannot encrypt a voice: encrypted rooms are spoken in from the app.
    handBtn.hidden = isGuest() || myRole !== 'listener' || !handsEnabled || encrypted;
    handBtn.textContent = handRaised ? 'Lower hand' : 'Raise hand';
    handBtn.setAttribute('aria-pressed', String(handRaised));
  }

  // `by` is who invited (null: invited, name unknown); false hides the invitation.
  function showInvite(by) {
    inviteBox.hidden = by === false;
    if (by !== false) {
      $('invite-text').textContent = (by ? by.name : 'A host') + ' invited you to speak.' +
        (recording ? ' This room is being recorded.' : '');
      $('accept').focus();
    }
  }

  // Recorded rooms: a badge, and the invitation to speak says so.
  let recording = false;
  function renderRecording(on) {
    recording = on;
    const badge = $('recording');
    if (badge) badge.hidden = !on;
    renderTools();
  }

  function renderSpeaking() {
    const names = [];
    stageEl.querySelectorAll('li').forEach((li) => {
      const speaking = (levels.get(li.dataset.user) || 0) >= SPEAKING;
      li.classList.toggle('speaking', speaking);
      if (speaking) names.push(li.querySelector('.name').textContent);
    });
    const text = names.length ? 'Speaking: ' + names.join(', ') : '';
    // Only touch the live region when the set changes, so screen readers are not flooded.
    if ($('speaking').textContent !== text) $('speaking').textContent = text;
  }

  function setMine(role, muted) {
    const wasOnStage = myRole === 'moderator' || myRole === 'speaker';
    myRole = role;
    myMuted = muted;
    const onStage = role === 'moderator' || role === 'speaker';
    muteBtn.hidden = !onStage;
    muteBtn.textContent = muted ? 'Unmute' : 'Mute';
    muteBtn.setAttribute('aria-pressed', String(muted));
    if (onStage) showInvite(false);
    renderHand();
    renderTools();
    // Going on stage or off it changes what we send: negotiate again.
    if (pc && onStage !== wasOnStage) startMedia();
  }

  // ----- signalling -----
  async function connect() {
    if (stopped) return;
    status(attempt ? 'Reconnecting…' : 'Connecting…');
    let token = memberToken();
    try {
      if (!token) {
        const r = await fetch(api('/guest'), {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(linkToken ? { link_token: linkToken } : {}),
        });
        const body = await r.json().catch(() => ({}));
        if (!r.ok) {
          const code = body.error && body.error.code;
          if (code === 'not_found' || code === 'room_closed') return fatal('This room is not available any more.');
          if (code === 'rate_limited') return retry('Too many listeners right now. Trying again…', 10000);
          return retry('Could not join. Trying again…');
        }
        token = body.token;
      }
    } catch (e) {
      return retry('No connection. Trying again…');
    }
    const url = api('/ws');
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url);
    ws = socket;
    socket.onopen = () => {
      const hello = { type: 'hello', protocol: 1, token };
      if (linkToken) hello.link_token = linkToken;
      socket.send(JSON.stringify(hello));
    };
    socket.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      onMessage(msg);
    };
    socket.onclose = () => {
      if (ws !== socket) return;
      ws = null;
      stopMedia();
      if (!stopped) retry('Connection lost. Reconnecting…');
    };
  }

  function retry(text, min) {
    status(text);
    attempt += 1;
    const wait = Math.max(min || 0, Math.min(250 * 2 ** (attempt - 1), 10000) * (0.5 + Math.random()));
    setTimeout(connect, wait);
  }

  function fatal(text) {
    stopped = true;
    stopMedia();
    status(text);
    listenBtn.hidden = true;
    muteBtn.hidden = true;
    if (ws) { const s = ws; ws = null; s.close(); }
  }

  function onMessage(msg) {
    switch (msg.type) {
      case 'welcome':
        attempt = 0;
        me = msg.you;
        // TURN servers with credentials fresh from this welcome (none when not configured).
        iceServers = msg.ice_servers || [];
        renderSnapshot(msg.room);
        status(e2eeProblem() || keyNotice() || (wantAudio ? 'Connecting audio…' : ''));
        if (wantAudio) startMedia();
        break;
      case 'snapshot':
        renderSnapshot(msg.room);
        break;
      case 'delta':
        onEvent(msg.event);
        break;
      case 'media_answer':
        if (pc && msg.req === pc.offerReq) {
          pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp }).catch((e) => status('Audio failed: ' + e.message));
        }
        break;
      case 'error':
        if (msg.fatal) {
          if (msg.code === 'room_ended' || msg.code === 'not_found') fatal('This room has ended.');
          else if (msg.code === 'unauthorized' && memberToken()) {
            // A stale saved session: forget it and listen as a guest (the close reconnects).
            try { localStorage.removeItem('ruang.token'); } catch (e) { /* private mode */ }
            status('Your saved session has expired; listening as a guest.');
          }
          else if (msg.code === 'unauthorized' || msg.code === 'rate_limited') { /* closes; onclose retries */ }
          else fatal('Could not join this room (' + msg.code + ').');
        } else if (pc && msg.req === pc.offerReq) {
          status('Audio could not start: ' + msg.message);
        } else if (msg.req) {
          status('Not possible: ' + msg.message);
        }
        break;
      case 'closing':
        if (msg.reason === 'room_ended') fatal('This room has ended.');
        else if (msg.reason === 'removed') fatal('You were removed from this room.');
        else if (msg.reason === 'replaced') fatal('This room is open somewhere else.');
        else if (msg.reason === 'left') fatal('You left the room.');
        break; // server_shutdown: the close that follows reconnects
      default:
        break; // unknown types are ignored (forward compatibility)
    }
  }

  function onEvent(ev) {
    switch (ev.kind) {
      case 'participant_joined':
      case 'participant_updated':
        upsert(ev.participant);
        renderSpeaking();
        break;
      case 'participant_left':
        removeFromStage(ev.user);
        renderSpeaking();
        break;
      case 'counts':
        $('listeners').textContent = ev.counts.listeners;
        break;
      case 'hand_raised':
        if (ev.entry.participant.user.id === me) { handRaised = true; renderHand(); }
        break;
      case 'hand_lowered':
        if (ev.user === me) { handRaised = false; renderHand(); }
        break;
      case 'invited_to_speak':
        showInvite(ev.by);
        break;
      case 'hands_enabled':
        handsEnabled = ev.enabled;
        renderHand();
        break;
      case 'mls_guest_key':
        openGuestKey(ev.key);
        break;
      case 'recording':
        renderRecording(ev.recording);
        break;
      case 'levels':
        ev.levels.forEach((l) => levels.set(l.user, l.level));
        renderSpeaking();
        break;
      case 'ended':
        fatal('This room has ended.');
        break;
      default:
        onChatEvent(ev);
        break;
    }
  }

  // ----- reactions and chat (docs/protocol.md §12) -----
  // Everyone may react (guests too); members may chat, guests read. Chat text is only ever
  // inserted as text; links come from the server's spans (code point offsets) and become
  // <a> elements built with DOM calls, http(s) only.
  const REACTIONS = [['clap', '👏'], ['heart', '❤️'], ['laugh', '😂'], ['fire', '🔥'],
    ['hundred', '💯'], ['raised_hands', '🙌'], ['hand', '✋'], ['plus_one', '+1']];
  const EMOJI = new Map(REACTIONS);
  let reactionsEnabled = true;
  let chatSettings = { mode: 'everyone', slow_seconds: 0 };

  const social = document.createElement('section');
  social.id = 'social';
  social.setAttribute('aria-label', 'Reactions and chat');
  const reactBar = document.createElement('div');
  reactBar.id = 'reactions';
  reactBar.className = 'reactions';
  reactBar.setAttribute('role', 'group');
  reactBar.setAttribute('aria-label', 'React');
  REACTIONS.forEach(([name, emoji]) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'react';
    b.dataset.reaction = name;
    b.textContent = emoji;
    b.setAttribute('aria-label', 'React ' + name.replace('_', ' '));
    b.addEventListener('click', () => send({ type: 'react', reaction: name }));
    reactBar.append(b);
  });
  const chatHeading = document.createElement('h2');
  chatHeading.id = 'chat-heading';
  chatHeading.textContent = 'Chat';
  const chatList = document.createElement('ol');
  chatList.id = 'chat-list';
  chatList.className = 'chat';
  chatList.setAttribute('aria-live', 'polite');
  chatList.setAttribute('aria-labelledby', 'chat-heading');
  const chatNote = document.createElement('p');
  chatNote.id = 'chat-note';
  chatNote.className = 'small';
  const chatForm = document.createElement('form');
  chatForm.id = 'chat-form';
  chatForm.className = 'chat-form';
  const chatInput = document.createElement('input');
  chatInput.id = 'chat-input';
  chatInput.type = 'text';
  chatInput.maxLength = 500;
  chatInput.autocomplete = 'off';
  chatInput.setAttribute('aria-label', 'Message');
  chatInput.placeholder = 'Say something';
  const chatSend = document.createElement('button');
  chatSend.type = 'submit';
  chatSend.className = 'button';
  chatSend.textContent = 'Send';
  chatForm.append(chatInput, chatSend);
  chatForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = chatInput.value.trim();
    if (!text) return;
    req += 1;
    send({ type: 'send_chat', text, req });
    chatInput.value = '';
  });
  social.append(reactBar, chatHeading, chatList, chatNote, chatForm);
  (root.querySelector('.actions') || stageEl).after(social);

  // The message's text with its links as <a> (offsets are code points).
  function chatText(m) {
    const span = document.createElement('span');
    span.className = 'text';
    const chars = Array.from(m.text);
    let at = 0;
    (m.links || []).forEach((l) => {
      if (l.start < at || l.end > chars.length || !/^https?:\/\//i.test(l.url)) return;
      span.append(document.createTextNode(chars.slice(at, l.start).join('')));
      const a = document.createElement('a');
      a.href = l.url;
      a.rel = 'noopener nofollow ugc';
      a.target = '_blank';
      a.textContent = chars.slice(l.start, l.end).join('');
      span.append(a);
      at = l.end;
    });
    span.append(document.createTextNode(chars.slice(at).join('')));
    return span;
  }

  function addChat(m) {
    if (chatList.querySelector('li[data-id="' + m.id + '"]')) return;
    const li = document.createElement('li');
    li.dataset.id = String(m.id);
    if (m.author.id === me) li.dataset.mine = '1';
    const who = document.createElement('span');
    who.className = 'author';
    who.textContent = m.author.name;
    li.append(who, document.createTextNode(' '), chatText(m));
    // Members may report someone else's message (docs/protocol.md §13.2).
    if (!isGuest() && m.author.id !== me) {
      const r = document.createElement('button');
      r.type = 'button';
      r.className = 'report-message';
      r.textContent = 'Report';
      r.setAttribute('aria-label', 'Report the message from ' + m.author.name);
      r.addEventListener('click', () => openReport({ kind: 'message', room: roomId, message: String(m.id) },
        'Report the message from ' + m.author.name));
      li.append(document.createTextNode(' '), r);
    }
    // Moderators delete any message, authors their own (shown by CSS from #chat-list's
    // data-mod and the item's data-mine, so a later role change needs no re-render).
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'delete-message';
    del.textContent = 'Delete';
    del.setAttribute('aria-label', 'Delete the message from ' + m.author.name);
    del.addEventListener('click', () => command({ type: 'delete_chat', id: m.id }));
    li.append(document.createTextNode(' '), del);
    chatList.append(li);
    while (chatList.children.length > 200) chatList.firstElementChild.remove();
    chatList.scrollTop = chatList.scrollHeight;
  }

  function renderChatControls() {
    reactBar.hidden = !reactionsEnabled;
    const mod = myRole === 'moderator';
    let note = '';
    if (isGuest()) note = 'Guests read the chat; members write in it.';
    else if (chatSettings.mode === 'off' && !mod) note = 'The hosts switched the chat off.';
    else if (chatSettings.mode === 'followers' && !mod) note = 'Only people who follow a host can write.';
    if (!note && chatSettings.slow_seconds > 0 && !mod) note = 'Slow mode: one message every ' + chatSettings.slow_seconds + ' s.';
    chatNote.textContent = note;
    chatNote.hidden = !note;
    chatForm.hidden = isGuest() || (chatSettings.mode === 'off' && !mod);
  }

  function renderChat(room) {
    reactionsEnabled = room.reactions_enabled !== false;
    chatSettings = room.chat || chatSettings;
    chatList.textContent = '';
    (room.chat_recent || []).forEach(addChat);
    renderTools();
  }

  // A short floating emoji over the tile it was aimed at, or over the stage.
  function floatReaction(b) {
    const emoji = EMOJI.get(b.reaction);
    if (!emoji) return;
    const tile = b.to ? stageEl.querySelector('li[data-user="' + CSS.escape(b.to) + '"]') : null;
    const host = tile || stageEl;
    const f = document.createElement('span');
    f.className = 'floater';
    f.setAttribute('aria-hidden', 'true');
    f.dataset.reaction = b.reaction;
    f.textContent = emoji + (b.count > 1 ? ' ×' + b.count : '');
    f.style.left = (tile ? 30 : 10 + Math.random() * 70) + '%';
    host.append(f);
    const done = () => f.remove();
    f.addEventListener('animationend', done);
    setTimeout(done, 3000);
  }

  function onChatEvent(ev) {
    switch (ev.kind) {
      case 'reactions':
        ev.bursts.forEach(floatReaction);
        break;
      case 'reactions_enabled':
        reactionsEnabled = ev.enabled;
        renderTools();
        break;
      case 'chat_message':
        addChat(ev.message);
        break;
      case 'chat_deleted': {
        const li = chatList.querySelector('li[data-id="' + Number(ev.id) + '"]');
        if (li) li.remove();
        break;
      }
      case 'chat_settings':
        chatSettings = ev.settings;
        renderTools();
        break;
      default:
        break; // unknown kinds are ignored (forward compatibility)
    }
  }

  // ----- clips and reports (docs/protocol.md §13.2, §14.4) -----
  // Members only (the server checks who may clip and report; guests have no account).
  let clipsAllowed = false;
  const tools = document.createElement('section');
  tools.id = 'tools';
  tools.className = 'tools';
  tools.setAttribute('aria-label', 'Clip and report');
  const clipBtn = document.createElement('button');
  clipBtn.type = 'button';
  clipBtn.id = 'clip';
  clipBtn.className = 'button';
  clipBtn.textContent = 'Clip the last 30 s';
  const clipOut = document.createElement('p');
  clipOut.id = 'clip-result';
  clipOut.className = 'small';
  clipOut.setAttribute('aria-live', 'polite');
  const reportRoomBtn = document.createElement('button');
  reportRoomBtn.type = 'button';
  reportRoomBtn.id = 'report-room';
  reportRoomBtn.className = 'link-button';
  reportRoomBtn.textContent = 'Report this room';
  tools.append(clipBtn, clipOut, reportRoomBtn);
  social.after(tools);

  // Moderators: the chat's settings, reactions and recording (docs/protocol.md §12, §14.1).
  const modTools = document.createElement('fieldset');
  modTools.id = 'mod-tools';
  modTools.className = 'mod-tools';
  const legend = document.createElement('legend');
  legend.textContent = 'Room settings';
  const labelled = (text, el) => {
    const l = document.createElement('label');
    l.append(document.createTextNode(text + ' '), el);
    return l;
  };
  const options = (sel, list) => list.forEach(([v, t]) => {
    const o = document.createElement('option');
    o.value = v;
    o.textContent = t;
    sel.append(o);
  });
  const modeSel = document.createElement('select');
  modeSel.id = 'chat-mode';
  options(modeSel, [['everyone', 'Everyone'], ['followers', 'People who follow a host'], ['off', 'Off']]);
  const slowSel = document.createElement('select');
  slowSel.id = 'slow-mode';
  options(slowSel, [['0', 'Off'], ['10', '10 s'], ['30', '30 s'], ['60', '1 min'], ['300', '5 min']]);
  const reactToggle = document.createElement('button');
  reactToggle.type = 'button';
  reactToggle.id = 'toggle-reactions';
  reactToggle.className = 'link-button';
  const recordToggle = document.createElement('button');
  recordToggle.type = 'button';
  recordToggle.id = 'toggle-recording';
  recordToggle.className = 'link-button';
  modTools.append(legend, labelled('Who can chat', modeSel), labelled('Slow mode', slowSel), reactToggle, recordToggle);
  tools.append(modTools);
  const sendSettings = () => command({
    type: 'set_chat_settings',
    settings: { mode: modeSel.value, slow_seconds: Number(slowSel.value) },
  });
  modeSel.addEventListener('change', sendSettings);
  slowSel.addEventListener('change', sendSettings);
  reactToggle.addEventListener('click', () => command({ type: 'set_reactions_enabled', enabled: !reactionsEnabled }));
  recordToggle.addEventListener('click', () => command({ type: 'set_recording', recording: !recording }));

  function renderTools() {
    const member = !isGuest();
    const mod = myRole === 'moderator';
    tools.hidden = !member;
    clipBtn.hidden = !member || !(recording || (clipsAllowed && mod));
    modTools.hidden = !mod;
    chatList.dataset.mod = mod ? '1' : '';
    modeSel.value = chatSettings.mode;
    // A slow mode set elsewhere to a value not in the list shows as its own option.
    const slow = String(chatSettings.slow_seconds || 0);
    if (![...slowSel.options].some((o) => o.value === slow)) options(slowSel, [[slow, slow + ' s']]);
    slowSel.value = slow;
    reactToggle.textContent = reactionsEnabled ? 'Turn reactions off' : 'Turn reactions on';
    recordToggle.textContent = recording ? 'Stop recording' : 'Start recording';
    renderChatControls();
  }

  async function authed(url, body) {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + memberToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let json = null;
    try { json = await r.json(); } catch (e) { /* empty body */ }
    return { status: r.status, json };
  }
  const problem = (res) => (res.json && res.json.error && res.json.error.message) || ('error ' + res.status);

  clipBtn.addEventListener('click', async () => {
    clipBtn.disabled = true;
    clipOut.textContent = 'Clipping…';
    try {
      const res = await authed(api('/clips'));
      clipOut.textContent = '';
      if (res.status === 201 && res.json && /^https?:\/\//.test(res.json.url)) {
        const a = document.createElement('a');
        a.href = res.json.url;
        a.rel = 'noopener';
        a.target = '_blank';
        a.textContent = res.json.url;
        clipOut.append(document.createTextNode('Your clip: '), a);
        if (navigator.clipboard) navigator.clipboard.writeText(res.json.url).catch(() => {});
      } else {
        clipOut.textContent = 'No clip: ' + problem(res);
      }
    } catch (e) {
      clipOut.textContent = 'No clip: the server could not be reached.';
    } finally {
      clipBtn.disabled = false;
    }
  });

  // The form itself is report.js's (shared with the replay page).
  const openReport = (target, title) => window.RuangReport && window.RuangReport.open(target, title, tools);
  reportRoomBtn.addEventListener('click', () => openReport({ kind: 'room', room: roomId }, 'Report this room'));
  renderTools();

  // ----- media -----
  function stopMedia() {
    mediaGen += 1;
    if (pc) {
      pc.getSenders().forEach((s) => s.track && s.track.stop());
      pc.close();
      pc = null;
    }
    audios.splice(0).forEach((a) => { a.srcObject = null; a.remove(); });
  }

  // A new media_offer replaces the previous media session on the server.
  async function startMedia() {
    stopMedia();
    if (e2eeProblem()) return;
    const gen = mediaGen;
    if (encrypted) {
      worker();
      await workerReady;
      if (gen !== mediaGen) return;
    }
    const peer = new RTCPeerConnection(encrypted && encodedStreams()
      ? { iceServers, encodedInsertableStreams: true } : { iceServers });
    pc = peer;
    if ((myRole === 'moderator' || myRole === 'speaker') && !encrypted) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true } });
        if (gen !== mediaGen) { stream.getTracks().forEach((t) => t.stop()); return; }
        peer.addTransceiver(stream.getAudioTracks()[0], { direction: 'sendonly' });
      } catch (e) {
        status('No microphone: you can listen, but not be heard.');
      }
    }
    for (let i = 0; i < SLOTS; i += 1) {
      const t = peer.addTransceiver('audio', { direction: 'recvonly' });
      // Encrypted: plain Opus packets only (each one SFrame frame; no RED wrapping).
      if (encrypted && t.setCodecPreferences) {
        const opus = RTCRtpReceiver.getCapabilities('audio').codecs
          .filter((c) => c.mimeType.toLowerCase() === 'audio/opus');
        t.setCodecPreferences(opus);
      }
    }
    peer.ontrack = (e) => {
      if (encrypted && encodedStreams()) {
        const { readable, writable } = e.receiver.createEncodedStreams();
        worker().postMessage({ readable, writable }, [readable, writable]);
      } else if (encrypted) {
        e.receiver.transform = new RTCRtpScriptTransform(worker(), { side: 'receive' });
      }
      // Played explicitly (no autoplay attribute) so a refusal is seen and answered.
      const a = document.createElement('audio');
      a.srcObject = new MediaStream([e.track]);
      document.body.append(a);
      audios.push(a);
      play(a);
    };
    peer.onconnectionstatechange = () => {
      if (pc !== peer) return;
      if (peer.connectionState === 'connected' && !blocked) status(keyNotice() || (myRole === 'listener' ? 'Listening' : 'Listening · on stage'));
      else if (peer.connectionState === 'failed') status('Audio connection failed. Reconnecting…');
      if (peer.connectionState === 'failed' && ws) ws.close();
    };
    const offer = await peer.createOffer();
    if (gen !== mediaGen) return;
    await peer.setLocalDescription(offer);
    req += 1;
    peer.offerReq = req;
    send({ type: 'media_offer', req, sdp: peer.localDescription.sdp });
    listenBtn.hidden = true;
  }

  function play(a) {
    a.play().then(() => {
      if (blocked && audios.every((x) => !x.paused)) {
        blocked = false;
        listenBtn.hidden = true;
        status(keyNotice() || 'Listening');
      }
    }, () => {
      // Autoplay blocked: a tap on the button starts every stream.
      blocked = true;
      listenBtn.hidden = false;
      listenBtn.textContent = 'Tap to listen';
      status('Your browser needs a tap to play sound.');
    });
  }

  listenBtn.addEventListener('click', () => {
    if (pc) {
      audios.forEach(play);
      return;
    }
    wantAudio = true;
    listenBtn.disabled = true;
    if (ws && me) startMedia().finally(() => { listenBtn.disabled = false; });
    else listenBtn.disabled = false;
  });

  const command = (msg) => { req += 1; send({ ...msg, req }); };
  muteBtn.addEventListener('click', () => command({ type: 'set_muted', muted: !myMuted }));
  handBtn.addEventListener('click', () => command({ type: handRaised ? 'lower_hand' : 'raise_hand' }));
  $('accept').addEventListener('click', () => { showInvite(false); command({ type: 'accept_invite' }); });
  $('decline').addEventListener('click', () => { showInvite(false); command({ type: 'decline_invite' }); });

  // Test and debugging hook: the live peer connection.
  window.ruang = { get pc() { return pc; }, get e2ee() { return { encrypted, ...e2ee }; } };

  connect();
})();
