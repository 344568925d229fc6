-- What a period's credits read, by index alone.
--
-- A fill of kept credits (and a report whose credits are not kept) reads
-- the deals closed or cancelled in its period: the ids come from
-- deal_facts by close or cancel day. With the day alone in the index, each
-- id was a lookup of its deal_facts row, in day order (333,334 random
-- lookups for a quarter of 1,000,000 deals, a second of the read on
-- SQLite). With the id in the index the ids are read from the index.
DROP INDEX deal_facts_closed;
DROP INDEX deal_facts_cancelled;
CREATE INDEX deal_facts_closed ON deal_facts (closed_on, deal_id);
CREATE INDEX deal_facts_cancelled ON deal_facts (cancelled_on, deal_id);

-- The fills dropped when a fill with other credit rules is made: the fill's
-- row goes at once (no report reads it from then on), its credits and
-- marks a few thousand at a time after the new fill is stored, so the
-- first report under the new rules does not wait for a third of a million
-- rows to be deleted.
CREATE TABLE credit_fills_dropped (
    id          TEXT PRIMARY KEY,         -- the dropped fill's id
    dropped_at  TEXT NOT NULL
);
