-- "Notify me" from the /e/ page in a browser, without an account: a Web Push subscription
-- tied to one scheduled room. Told when it starts soon, starts, changes or is cancelled.
CREATE TABLE event_web_push (
    event_id TEXT NOT NULL REFERENCES events(id),
    endpoint TEXT NOT NULL,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (event_id, endpoint)
);
CREATE INDEX event_web_push_endpoint ON event_web_push(endpoint);
