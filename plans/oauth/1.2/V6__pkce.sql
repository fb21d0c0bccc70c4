-- Proof Key for Code Exchange (RFC 7636) for public clients.

ALTER TABLE authorization_codes ADD COLUMN code_challenge text;
ALTER TABLE authorization_codes ADD COLUMN code_challenge_method varchar(10);
ALTER TABLE authorization_codes
    ADD CONSTRAINT authorization_codes_challenge_method_check
    CHECK (code_challenge_method IN ('plain', 'S256'));
