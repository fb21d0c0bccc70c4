-- Client names and owners longer than 255 characters were rejected.
ALTER TABLE clients ALTER COLUMN client_name TYPE text;
ALTER TABLE clients ALTER COLUMN owner TYPE text;

-- Keys are JSON Web Keys; store them as jsonb so they can be queried.
ALTER TABLE signing_keys ALTER COLUMN key_data TYPE jsonb USING key_data::jsonb;
