-- Every deal write keeps its deal_facts row in the same transaction, so
-- each index on deal_facts is paid by every import. Two of them put rows
-- in an order unrelated to the order deals arrive in (by owner, by
-- amount), which dirtied one index page per deal written and took a bulk
-- import from 35,000 to 17,000 deals/s. They go:
--
-- * the open-pipeline figures (open deals of a stage counted by close
--   quarter and amount) read the stage's range of deal_facts_open, which
--   now carries the quarter and amount, so the range is read from the
--   index alone;
-- * the deals of a person whose roster entry changes are found through
--   deals (owner, id).
DROP INDEX deal_facts_amounts;
DROP INDEX deal_facts_owner;
DROP INDEX deal_facts_open;
CREATE INDEX deal_facts_open ON deal_facts (funnel, stage, stage_entered_at, close_quarter, amount);
