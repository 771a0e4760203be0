-- Scale-out: seed-sealing keys kept in the store, and the gateways that share it.

-- Seed-sealing keys, each wrapped (AES-256-GCM) by a key-encryption key every node holds
-- outside the database, so no key file is shared between hosts and a copy of the database
-- alone opens no seed. The highest id seals; every key opens. A key is deleted (retired) only
-- while no token is sealed under it.
CREATE TABLE seal_keys (
    id          BIGINT NOT NULL PRIMARY KEY CHECK (id > 0),
    wrapped     BLOB   NOT NULL,                 -- nonce || ciphertext || tag
    kek_id      TEXT   NOT NULL,                 -- fingerprint of the key-encryption key
    created_at  BIGINT NOT NULL,
    created_by  TEXT   NOT NULL
);

-- Gateways sharing the store: each registers itself and beats every few seconds, so
-- operators see every gateway and its sessions from any node.
CREATE TABLE gateway_nodes (
    id           TEXT   NOT NULL PRIMARY KEY,     -- chosen by the gateway at start
    address      TEXT   NOT NULL,                 -- its QUIC listen address
    admin_url    TEXT   NULL,
    version      TEXT   NOT NULL,
    started_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    sessions     BIGINT NOT NULL DEFAULT 0,
    flows        BIGINT NOT NULL DEFAULT 0,
    stopped_at   BIGINT NULL
);
