-- The shop's orders and their outbox, and the downstream consumer's tables (in the same database
-- here, so the tests can read everything). Loaded once into a template; every test gets a copy.
CREATE TABLE orders (
    id       bigserial PRIMARY KEY,
    customer text   NOT NULL,
    amount   bigint NOT NULL CHECK (amount > 0)   -- in cents
);

-- One row per event, written in the same transaction as the business row. The relay publishes
-- the rows whose published_at is NULL, in id order, and then sets published_at.
CREATE TABLE outbox (
    id           bigserial   PRIMARY KEY,
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

-- The consumer's side: the effect (a running total per customer, NOT idempotent by itself) and
-- the ids of the events already applied. The primary key is what makes the consumer idempotent.
CREATE TABLE customer_totals (
    customer text   PRIMARY KEY,
    total    bigint NOT NULL
);

CREATE TABLE processed_events (
    event_id     bigint      PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
