-- One row per host per run; findings are the results that did not pass.
CREATE TABLE runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch TEXT NOT NULL,
    host TEXT NOT NULL,
    command TEXT NOT NULL,
    started DOUBLE PRECISION NOT NULL,
    finished DOUBLE PRECISION NOT NULL,
    tool_version TEXT NOT NULL,
    ruleset TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    passed INTEGER NOT NULL,
    failed INTEGER NOT NULL
);
CREATE INDEX runs_host_time ON runs (command, host, started);
CREATE INDEX runs_time ON runs (started);
CREATE TABLE findings (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    rule_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    severity SMALLINT NOT NULL,
    status TEXT NOT NULL,
    target TEXT NOT NULL,
    message TEXT NOT NULL,
    waived TEXT NOT NULL,
    remediation TEXT NOT NULL,
    cis TEXT NOT NULL
);
CREATE INDEX findings_run ON findings (run_id);
