-- Fill an OAuth server database at release 1.3 with realistic token tables.
-- psql variables: clients, sessions, access, refresh, codes, batch.
-- Signatures are md5 hashes of a counter so that pgbench scripts can pick a
-- random existing row (md5('rt' || n)) and index insertion order is random,
-- as it is for real token signatures.
\set ON_ERROR_STOP 1

INSERT INTO clients (id, client_name, secret_hash, redirect_uris, owner)
SELECT 'client-' || i, 'Client ' || i, md5('secret' || i),
       ARRAY['https://app' || i || '.example.com/callback'], 'owner-' || (i % 50)
FROM generate_series(1, :clients) AS i;

INSERT INTO signing_keys (set_id, kid, alg, key_data)
SELECT 'openid.id-token', 'key-' || i, 'RS256',
       '{"kty":"RSA","kid":"key-' || i || '","n":"' || repeat(md5(i::text), 8) || '","e":"AQAB"}'
FROM generate_series(1, 8) AS i;

INSERT INTO login_sessions (id, subject, authenticated_at, remember, expires_at)
SELECT md5('ls' || i), 'user-' || (i % 100000), now() - (i % 86400) * interval '1 second',
       i % 3 = 0, now() + interval '30 days'
FROM generate_series(1, :sessions) AS i;

INSERT INTO consent_grants (id, client_id, subject, login_session_id, granted_scopes, remember)
SELECT md5('cg' || i), 'client-' || (1 + i % :clients), 'user-' || (i % 100000),
       md5('ls' || (1 + i % :sessions)), '{openid,offline_access}', true
FROM generate_series(1, :sessions / 2) AS i;

INSERT INTO authorization_codes (signature, request_id, client_id, subject, redirect_uri, expires_at)
SELECT md5('ac' || i), md5('req-ac' || i), 'client-' || (1 + i % :clients), 'user-' || (i % 100000),
       'https://app' || (1 + i % :clients) || '.example.com/callback', now() + interval '10 minutes'
FROM generate_series(1, :codes) AS i;

-- Access tokens live an hour; the table keeps the last :access of them.
INSERT INTO access_tokens (signature, request_id, client_id, subject, requested_scopes,
                           granted_scopes, session_data, requested_at, expires_at)
SELECT md5('at' || i), md5('req' || i), 'client-' || (1 + i % :clients), 'user-' || (i % 100000),
       '{openid,offline_access,profile}', '{openid,offline_access,profile}',
       '{"id_token_claims":{"acr":"0"}}', now() - (:access - i) * interval '10 ms',
       now() - (:access - i) * interval '10 ms' + interval '1 hour'
FROM generate_series(1, :access) AS i;
