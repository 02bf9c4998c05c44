-- The job queue's table. Loaded once into a template; every test gets a fresh copy.
CREATE TABLE jobs (
    id         bigserial   PRIMARY KEY,
    payload    jsonb       NOT NULL,
    status     text        NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts   integer     NOT NULL DEFAULT 0,   -- how many times a handler ran it to an end
    last_error text,                             -- the latest handler error, if any
    done_at    timestamptz
);

-- Workers look for the oldest queued job: this partial index holds exactly those rows.
CREATE INDEX jobs_queued ON jobs (id) WHERE status = 'queued';
