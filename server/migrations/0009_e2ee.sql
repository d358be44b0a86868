-- End-to-end encrypted rooms (issue 17): a row per encrypted room. Nothing else of the
-- encryption is stored: the MLS relay lives in memory only, and holds no key.
CREATE TABLE room_e2ee (
    room_id TEXT PRIMARY KEY REFERENCES rooms(id)
);
