-- The figures the exporter serves without reading every finding, and the run's warnings.
ALTER TABLE runs ADD COLUMN vulnerable_images TEXT NOT NULL DEFAULT '{}';
ALTER TABLE runs ADD COLUMN warnings INTEGER NOT NULL DEFAULT 0;
CREATE INDEX findings_rule ON findings (rule_id, target);
