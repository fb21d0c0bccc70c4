-- Enforce links that 1.x only kept by convention.

ALTER TABLE refresh_tokens
    ADD CONSTRAINT refresh_tokens_access_token_fk
    FOREIGN KEY (access_token_signature) REFERENCES access_tokens (signature)
    ON DELETE SET NULL;

ALTER TABLE consent_grants
    ADD CONSTRAINT consent_grants_login_session_fk
    FOREIGN KEY (login_session_id) REFERENCES login_sessions (id)
    ON DELETE CASCADE;
