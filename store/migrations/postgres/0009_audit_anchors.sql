-- The audit trail anchored outside its own files. Every writer registers its stream when it
-- opens, and every signed checkpoint's head (the checkpoint record's number and hash, and its
-- file) is recorded here once it is on disk. A stream is named by its signing key's id and
-- its name: gateways on different hosts may all call their stream `gateway`, each with its
-- own key. `rampart audit verify` compares the files with these rows, so records cut off the
-- end of a stream, or a stream deleted whole, no longer look like a trail that simply ended.
CREATE TABLE audit_streams (
    key_id         TEXT   NOT NULL,               -- the checkpoint key's id (16 hex digits)
    stream         TEXT   NOT NULL,
    service        TEXT   NOT NULL,               -- gateway, provisioner, dev
    first_seen_at  BIGINT NOT NULL,
    last_opened_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, stream)
);

CREATE TABLE audit_anchors (
    key_id      TEXT   NOT NULL,
    stream      TEXT   NOT NULL,
    seq         BIGINT NOT NULL CHECK (seq >= 0),   -- the checkpoint record's number
    hash        TEXT   NOT NULL,                    -- its hash
    file        TEXT   NOT NULL,                    -- the file it is in (name only)
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, stream, seq),
    FOREIGN KEY (key_id, stream) REFERENCES audit_streams (key_id, stream)
);
