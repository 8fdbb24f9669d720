-- `dockward update` cycles are runs too (command 'update'): how many containers each left on an
-- outdated image, which the exporter serves per host.
ALTER TABLE runs ADD COLUMN outdated INTEGER NOT NULL DEFAULT 0;
-- Whether a finding names a vulnerable image is what its rule declares (the rule group
-- vulnerable-image), stored with the finding; rows stored before this migration are the scan's
-- advisories (kind 'vulnerability') and CIS 4.4 (DW-I007), the members of the group then.
ALTER TABLE findings ADD COLUMN vulnerable SMALLINT NOT NULL DEFAULT 0;
UPDATE findings SET vulnerable = 1 WHERE kind = 'vulnerability' OR rule_id = 'DW-I007';
