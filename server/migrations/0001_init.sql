-- Portable SQL: the same migrations run on SQLite and PostgreSQL.
-- Times are Unix milliseconds (BIGINT); flags are 0/1 BIGINT.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    handle TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    bio TEXT NOT NULL DEFAULT '',
    invited_by TEXT REFERENCES users(id),
    is_admin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE invites (
    code TEXT PRIMARY KEY,
    owner_id TEXT REFERENCES users(id),
    grants_admin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    used_by TEXT REFERENCES users(id),
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX invites_owner ON invites(owner_id);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE follows (
    follower_id TEXT NOT NULL REFERENCES users(id),
    followee_id TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (follower_id, followee_id)
);
CREATE INDEX follows_followee ON follows(followee_id);

CREATE TABLE rooms (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id),
    link_token TEXT NOT NULL,
    hands_enabled BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    ended_at BIGINT
);

CREATE TABLE room_participants (
    room_id TEXT NOT NULL REFERENCES rooms(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    role TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE room_access (
    room_id TEXT NOT NULL REFERENCES rooms(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE room_removals (
    room_id TEXT NOT NULL REFERENCES rooms(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    removed_by TEXT NOT NULL REFERENCES users(id),
    removed_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
