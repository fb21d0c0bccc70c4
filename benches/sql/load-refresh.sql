-- One batch of refresh tokens, rows :lo..:hi. The newest :access of them
-- point at an existing access token (rotation, release 1.3); older ones do
-- not, because their access tokens have expired and been deleted. One in
-- ten is revoked.
\set ON_ERROR_STOP 1
INSERT INTO refresh_tokens (signature, request_id, client_id, subject, requested_scopes,
                            granted_scopes, session_data, active, requested_at, expires_at,
                            revoked_at, access_token_signature, used_times)
SELECT md5('rt' || i), md5('req' || (i - (:refresh - :access))), 'client-' || (1 + i % :clients),
       'user-' || (i % 100000), '{openid,offline_access,profile}', '{openid,offline_access,profile}',
       '{"id_token_claims":{"acr":"0"}}', i % 10 <> 0,
       now() - (:refresh - i) * interval '2 s', now() - (:refresh - i) * interval '2 s' + interval '30 days',
       CASE WHEN i % 10 = 0 THEN now() - (:refresh - i) * interval '1 s' END,
       CASE WHEN i > :refresh - :access THEN md5('at' || (i - (:refresh - :access))) END,
       CASE WHEN i % 10 = 0 THEN 1 ELSE 0 END
FROM generate_series(:lo, :hi) AS i;
