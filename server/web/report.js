// Reporting from the web pages (docs/protocol.md §13.2): the room page (a room or a chat
// message) and the replay page (the room). Members only: the session token is the one the
// room page uses (localStorage "ruang.token"); guests have no account to report with.
// The form is built with DOM calls, once, and placed where it was asked for.
'use strict';
(() => {
  const token = () => { try { return localStorage.getItem('ruang.token'); } catch (e) { return null; } };
  const REASONS = [['spam', 'Spam'], ['harassment', 'Harassment or bullying'], ['hate', 'Hate'],
    ['sexual', 'Sexual content'], ['violence', 'Violence or threats'], ['impersonation', 'Impersonation'],
    ['other', 'Something else']];
  let form = null;
  let title;
  let reason;
  let details;
  let sendBtn;
  let status;
  let target = null;

  function build() {
    form = document.createElement('form');
    form.id = 'report-form';
    form.className = 'report-form';
    title = document.createElement('h2');
    title.id = 'report-title';
    reason = document.createElement('select');
    reason.id = 'report-reason';
    reason.setAttribute('aria-label', 'Reason');
    REASONS.forEach(([v, label]) => {
      const o = document.createElement('option');
      o.value = v;
      o.textContent = label;
      reason.append(o);
    });
    details = document.createElement('textarea');
    details.id = 'report-details';
    details.maxLength = 1000;
    details.rows = 3;
    details.placeholder = 'Anything the admins should know (optional)';
    details.setAttribute('aria-label', 'Details');
    const note = document.createElement('p');
    note.className = 'small';
    note.textContent = 'Only the admins see reports. Nobody is told who reported them.';
    sendBtn = document.createElement('button');
    sendBtn.type = 'submit';
    sendBtn.className = 'button';
    sendBtn.textContent = 'Send report';
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'link-button';
    cancel.textContent = 'Cancel';
    cancel.addEventListener('click', () => { form.hidden = true; target = null; });
    status = document.createElement('p');
    status.id = 'report-status';
    status.className = 'small';
    status.setAttribute('aria-live', 'polite');
    form.append(title, reason, details, note, sendBtn, cancel);
    form.addEventListener('submit', submit);
  }

  async function submit(e) {
    e.preventDefault();
    if (!target) return;
    sendBtn.disabled = true;
    try {
      const r = await fetch(new URL('/v1/reports', location.href), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token() },
        body: JSON.stringify({ ...target, reason: reason.value, details: details.value.trim() }),
      });
      let body = null;
      try { body = await r.json(); } catch (err) { /* no body */ }
      if (r.status === 201 || r.status === 200) {
        form.hidden = true;
        target = null;
        status.textContent = 'Thanks. The admins will look at it.';
      } else {
        status.textContent = 'Not sent: ' + ((body && body.error && body.error.message) || ('error ' + r.status));
      }
    } catch (err) {
      status.textContent = 'Not sent: the server could not be reached.';
    } finally {
      sendBtn.disabled = false;
    }
  }

  // Opens the form for `what` (the body of POST /v1/reports without reason and details)
  // at the end of `place`.
  function open(what, heading, place) {
    if (!token()) return;
    if (!form) build();
    if (form.parentNode !== place) place.append(status, form);
    target = what;
    title.textContent = heading;
    status.textContent = '';
    reason.value = 'spam';
    details.value = '';
    form.hidden = false;
    reason.focus();
  }

  window.RuangReport = { open, member: () => !!token() };

  // Pages that offer "Report" with a button: <button data-report-room="ROOM" hidden>.
  document.querySelectorAll('button[data-report-room]').forEach((b) => {
    if (!token()) return;
    b.hidden = false;
    b.addEventListener('click', () => open({ kind: 'room', room: b.dataset.reportRoom }, b.textContent, b.parentNode));
  });
})();
