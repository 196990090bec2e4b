-- Provider key pools (issue 11, rule 5): each provider's credentials, as a
-- JSON list of {id, secret_enc (sealed), hint, generation, created_at_ms,
-- disabled_at_ms, disabled_reason}. A provider's older single `api_key_enc`
-- is moved into it by the control plane when it starts (it must open the
-- sealed secret to show its hint).
ALTER TABLE providers ADD COLUMN credentials TEXT NOT NULL DEFAULT '[]';
