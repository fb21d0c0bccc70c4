-- Expire login sessions instead of keeping them until logout.

ALTER TABLE login_sessions ADD COLUMN expires_at timestamptz;
ALTER TABLE consent_grants ADD COLUMN expires_at timestamptz;
CREATE INDEX login_sessions_subject_idx ON login_sessions (subject);
