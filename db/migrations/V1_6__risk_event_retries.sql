-- A risk batch that fails must not stop the risk engine. The batch takes the oldest queued work first, so work
-- whose close keeps failing (whatever the cause: bad data on one account, a bug) was taken again by every batch,
-- and no stop-loss, take-profit or stop-out acted for anyone until it was removed by hand. Now a failure is counted
-- on the work itself (R__12's process_risk_events): the events of a failed batch of several are retried one at a
-- time at once, so the ones that fail are told apart from the rest, and one that fails alone waits before it is
-- taken again (retry_at: 2^(n-1) minutes after its n-th failure, at most an hour), while the queue behind it goes
-- on. attempts counts the failures. Every failure is in error_log.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

ALTER TABLE risk_events
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN retry_at timestamptz;

RESET ROLE;
