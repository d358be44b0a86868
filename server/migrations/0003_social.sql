-- The social layer: photos, profile links, scheduled rooms (events), notifications.

-- Content hash of the member's photo (files under DATA/media/avatars), NULL for none.
ALTER TABLE users ADD COLUMN avatar TEXT;
-- Up to three links, as a JSON array of strings.
ALTER TABLE users ADD COLUMN links TEXT NOT NULL DEFAULT '[]';
CREATE INDEX follows_follower ON follows(follower_id, created_at);

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    host_id TEXT NOT NULL REFERENCES users(id),
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    time_zone TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    cancelled_at BIGINT,
    -- The room started from it.
    room_id TEXT REFERENCES rooms(id),
    -- Reminders sent: 10 minutes before (1).
    reminded BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX events_starts ON events(starts_at);
CREATE INDEX events_host ON events(host_id);

CREATE TABLE event_cohosts (
    event_id TEXT NOT NULL REFERENCES events(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    position BIGINT NOT NULL,
    PRIMARY KEY (event_id, user_id)
);
CREATE INDEX event_cohosts_user ON event_cohosts(user_id);

-- "Notify me".
CREATE TABLE event_subscriptions (
    event_id TEXT NOT NULL REFERENCES events(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (event_id, user_id)
);
CREATE INDEX event_subscriptions_user ON event_subscriptions(user_id);

-- Moderators-to-be of a live room started from an event (its co-hosts).
CREATE TABLE room_cohosts (
    room_id TEXT NOT NULL REFERENCES rooms(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    actor_id TEXT REFERENCES users(id),
    room_id TEXT,
    event_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX notifications_user ON notifications(user_id, created_at, id);

-- Per member: read marker, kinds switched off.
CREATE TABLE notification_settings (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    -- Everything created at or before this is read (Unix ms).
    read_up_to BIGINT NOT NULL DEFAULT 0,
    -- Kinds switched off, JSON array of kind names.
    muted_kinds TEXT NOT NULL DEFAULT '[]',
    -- Quiet hours (no pushes), minutes after local midnight; both NULL for none.
    quiet_start BIGINT,
    quiet_end BIGINT,
    time_zone TEXT NOT NULL DEFAULT 'UTC'
);

-- Push delivery (Web Push / UnifiedPush endpoints with their RFC 8291 keys).
CREATE TABLE push_subscriptions (
    endpoint TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX push_subscriptions_user ON push_subscriptions(user_id);

-- Server-wide secrets made on first start (the VAPID key).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
