-- The twin of ../0004_catalogue.sql.
-- The model catalogue: the last list of models each provider family published (OpenRouter's
-- GET /videos/models), so a provider that is down at start leaves the last known catalogue in place.
-- payload_json holds the list as model-file entries ({"models": {"<id>": {label, seconds, ...}}}), read
-- back by the same checks as MODELS_FILE; fetched_at is when the provider answered (UTC epoch seconds).
CREATE TABLE provider_models (
    family       TEXT PRIMARY KEY,
    payload_json TEXT NOT NULL,
    fetched_at   BIGINT NOT NULL
);
