-- Cluster mode: the fencing token of the node that owns a live room. A node writes a room's
-- changes only while the row still carries the token it got when it took the room, so a
-- node that lost its lease (paused, partitioned) cannot overwrite its successor's state.
ALTER TABLE rooms ADD COLUMN owner_fence BIGINT NOT NULL DEFAULT 0;
-- The raised hands, in order, with whether an invite to speak is pending (JSON), so a room
-- taken over by another node (or restored after a restart) keeps its queue.
ALTER TABLE rooms ADD COLUMN hands TEXT NOT NULL DEFAULT '[]';
