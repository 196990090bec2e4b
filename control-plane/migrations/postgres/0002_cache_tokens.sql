-- Of a record's input tokens, those the provider's prompt cache served
-- (read) or took in (creation); input_tokens counts them too.
ALTER TABLE usage_records ADD COLUMN cache_read_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cache_creation_tokens BIGINT NOT NULL DEFAULT 0;
