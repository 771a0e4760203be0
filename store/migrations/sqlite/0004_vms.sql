-- VM pools, their machines and who holds which: a person holds at most one VM per pool (unless
-- an operator asks for a second), a VM at most one person; every change is an event.

CREATE TABLE vm_pools (
    name            TEXT    PRIMARY KEY,
    description     TEXT    NOT NULL DEFAULT '',
    -- JSON array of the ports its machines serve, e.g. [3389, 22].
    ports           TEXT    NOT NULL DEFAULT '[]',
    capacity        BIGINT  NOT NULL,
    -- Optional external commands, run with `sh -c`.
    provision_hook  TEXT    NULL,
    reset_hook      TEXT    NULL,
    destroy_hook    TEXT    NULL,
    hook_timeout_secs BIGINT NOT NULL DEFAULT 300,
    created_at      BIGINT  NOT NULL,
    created_by      TEXT    NOT NULL
);

CREATE TABLE vms (
    id              TEXT    PRIMARY KEY,
    pool            TEXT    NOT NULL REFERENCES vm_pools (name),
    address         TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('provisioning', 'free', 'allocated', 'maintenance', 'retired')),
    holder_id       TEXT    NULL REFERENCES users (id),
    holder_name     TEXT    NULL,
    allocated_at    BIGINT  NULL,
    -- Last forwarded connection its holder made to it (written by gateways).
    last_flow_at    BIGINT  NULL,
    -- The last hook failure, shown until the VM is fixed.
    error           TEXT    NULL,
    hook_output     TEXT    NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    CHECK ((state = 'allocated') = (holder_id IS NOT NULL))
);

CREATE INDEX vms_by_pool_state ON vms (pool, state);
CREATE INDEX vms_by_holder ON vms (holder_id, pool);

CREATE TABLE vm_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    at              BIGINT  NOT NULL,
    vm_id           TEXT    NOT NULL,
    pool            TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    user_name       TEXT    NULL,
    detail          TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX vm_events_by_pool_time ON vm_events (pool, at);
