-- "Revoke all tokens of a user" looked up access tokens by subject with a
-- sequential scan.

CREATE INDEX access_tokens_subject_idx ON access_tokens (subject);
