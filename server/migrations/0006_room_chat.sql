-- Reactions and the room chat: the moderators' settings of a live room, so a room restored
-- after a restart or taken over by another node keeps them. (The messages themselves live
-- in memory only and end with the room.)
ALTER TABLE rooms ADD COLUMN reactions_enabled BIGINT NOT NULL DEFAULT 1;
-- 'everyone', 'followers' or 'off'.
ALTER TABLE rooms ADD COLUMN chat_mode TEXT NOT NULL DEFAULT 'everyone';
ALTER TABLE rooms ADD COLUMN chat_slow_seconds BIGINT NOT NULL DEFAULT 0;
