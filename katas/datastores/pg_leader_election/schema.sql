-- The current term of each election: one row per election name, written by each new leader.
-- The term starts at 1 and grows by 1 with every leadership won; it is the fencing token that
-- leader-only work checks, in its own transaction, before it may commit.
CREATE TABLE election_term (
    name   text   PRIMARY KEY,
    term   bigint NOT NULL CHECK (term >= 1),
    leader text   NOT NULL
);
