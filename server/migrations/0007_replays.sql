-- Recorded rooms, their replays and clips (issue 16).
-- Whether a room is recorded / allows clips (a row only for rooms where either was ever on).
CREATE TABLE room_recording (
    room_id TEXT PRIMARY KEY REFERENCES rooms(id),
    recording BIGINT NOT NULL DEFAULT 0,
    clips BIGINT NOT NULL DEFAULT 0
);

-- One replay per recorded room, made when the room ended. The file is
-- MEDIA/replays/ROOM.ogg; meta is the JSON timeline, chapters and chat.
CREATE TABLE replays (
    room_id TEXT PRIMARY KEY REFERENCES rooms(id),
    host_id TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX replays_host ON replays(host_id, created_at);

-- Clips of the last 30 s: MEDIA/clips/ID.ogg.
CREATE TABLE clips (
    id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL REFERENCES rooms(id),
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX clips_room ON clips(room_id);
