-- Drift compares two runs' finding keys in the database: the anti-join looks a key up by run.
CREATE INDEX findings_run_key ON findings (run_id, rule_id, target);
DROP INDEX findings_run;
