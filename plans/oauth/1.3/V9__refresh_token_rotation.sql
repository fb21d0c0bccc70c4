-- Refresh token rotation: remember which access token a refresh token was
-- issued with, and when it was used, to detect reuse.

ALTER TABLE refresh_tokens ADD COLUMN access_token_signature text;
ALTER TABLE refresh_tokens ADD COLUMN first_used_at timestamptz;
ALTER TABLE refresh_tokens ADD COLUMN used_times integer NOT NULL DEFAULT 0;
CREATE INDEX refresh_tokens_subject_idx ON refresh_tokens (subject);
