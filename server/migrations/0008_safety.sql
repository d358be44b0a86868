-- Moderation and safety: blocks, reports, bans, the admin audit log and admin console
-- sessions. Portable SQL (SQLite and PostgreSQL).

-- blocker_id blocked blocked_id.
CREATE TABLE blocks (
    blocker_id TEXT NOT NULL REFERENCES users(id),
    blocked_id TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX blocks_blocked ON blocks(blocked_id);

-- One row per (reporter, target) while open; duplicates bump count.
CREATE TABLE reports (
    id TEXT PRIMARY KEY,
    reporter_id TEXT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    -- "member:ID", "room:ID" or "message:ROOM:MSG": what duplicates coalesce on.
    target_key TEXT NOT NULL,
    target_user TEXT REFERENCES users(id),
    target_room TEXT,
    target_message TEXT,
    reason TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '',
    evidence TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'open',
    count BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    resolved_by TEXT REFERENCES users(id),
    resolved_at BIGINT,
    resolution_note TEXT
);
CREATE INDEX reports_status ON reports(status, created_at);
CREATE INDEX reports_reporter ON reports(reporter_id, created_at);
CREATE INDEX reports_target_user ON reports(target_user);
CREATE INDEX reports_dup ON reports(reporter_id, target_key, status);

-- A banned member: every token refused while banned_at is set.
ALTER TABLE users ADD COLUMN banned_at BIGINT;
ALTER TABLE users ADD COLUMN ban_reason TEXT;
-- Sessions a ban revoked (an unban gives them back).
ALTER TABLE sessions ADD COLUMN ban_revoked BIGINT NOT NULL DEFAULT 0;

CREATE TABLE admin_audit (
    id TEXT PRIMARY KEY,
    actor_id TEXT NOT NULL REFERENCES users(id),
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX admin_audit_time ON admin_audit(created_at);

-- Admin console sign-ins (a cookie, by its SHA-256), each with its CSRF token.
CREATE TABLE admin_sessions (
    cookie_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX admin_sessions_user ON admin_sessions(user_id);
