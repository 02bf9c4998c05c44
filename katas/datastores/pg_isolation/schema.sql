-- The bank's accounts and the hospital's on-call rota. Loaded once into a template; every test
-- gets a fresh copy. No CHECK (balance >= 0) on purpose: keeping balances non-negative under
-- concurrency is your code's job, and the tests look for a negative balance.
CREATE TABLE accounts (
    id      bigint PRIMARY KEY,
    balance bigint NOT NULL          -- in cents
);

CREATE TABLE on_call (
    doctor_id bigint  NOT NULL,
    shift     text    NOT NULL,
    on_call   boolean NOT NULL,
    PRIMARY KEY (doctor_id, shift)
);
