-- Dynamic client registration fields shown on the consent screen.

ALTER TABLE clients ADD COLUMN logo_uri text;
ALTER TABLE clients ADD COLUMN contacts text[];
