-- The public key of the server an activation is for (base64, from its signed activation request):
-- a deactivation receipt must be signed with it. NULL for activations made before it was kept.
ALTER TABLE activations ADD COLUMN server_public_key TEXT;
