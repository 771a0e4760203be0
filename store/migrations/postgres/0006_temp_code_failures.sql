-- Wrong temporary codes entered for a person. A temporary code is ten digits and may live for
-- days, and it bypasses the token (so the token's lock does not guard it): after
-- MAX_TEMP_CODE_FAILURES wrong tries the person's unused codes are spent, and the service desk
-- issues a new one.
ALTER TABLE temp_codes ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
