-- Mute state survives a restart (a muted moderator stays muted).
ALTER TABLE room_participants ADD COLUMN muted BIGINT NOT NULL DEFAULT 1;
UPDATE room_participants SET muted = 0 WHERE role = 'moderator';
