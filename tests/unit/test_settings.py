"""Settings from the environment: local runs need nothing; production refuses weak or missing secrets."""
import pytest
from cryptography.fernet import Fernet

from core.platform.settings import ConfigError, Settings


def test_local_run_needs_nothing_and_keeps_its_generated_secrets(tmp_path):
    first = Settings.from_env({"APP_ENV": "development", "INSTANCE_DIR": str(tmp_path)})
    second = Settings.from_env({"APP_ENV": "development", "INSTANCE_DIR": str(tmp_path)})
    assert first.database_url.startswith("sqlite:///") and first.redis_url is None
    assert first.secret_key == second.secret_key and first.token_encryption_keys == second.token_encryption_keys
    assert first.amocrm_allowed_hosts == ("*.amocrm.ru", "*.amocrm.com", "*.kommo.com")


def test_production_lists_every_missing_secret_at_once(tmp_path):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"APP_ENV": "production", "PUBLIC_URL": "http://chats.example.com", "INSTANCE_DIR": str(tmp_path)})
    text = str(info.value)
    assert "SECRET_KEY" in text and "TOKEN_ENCRYPTION_KEYS" in text and "https" in text
    assert not (tmp_path / "dev-secrets.json").exists()


def test_production_with_real_secrets_starts(tmp_path):
    key = Fernet.generate_key().decode()
    s = Settings.from_env({
        "APP_ENV": "production", "PUBLIC_URL": "https://chats.example.com/", "SECRET_KEY": "x" * 40,
        "TOKEN_ENCRYPTION_KEYS": f"{key}, {Fernet.generate_key().decode()}", "DATABASE_URL": "postgres://u:p@db/x",
        "REDIS_URL": "rediss://h:6379", "AMOCRM_ALLOWED_HOSTS": "*.amocrm.ru, *.kommo.com",
    })
    assert s.public_url == "https://chats.example.com" and s.token_encryption_keys[0] == key
    assert s.database_url == "postgresql+psycopg2://u:p@db/x" and s.amocrm_allowed_hosts == ("*.amocrm.ru", "*.kommo.com")
    assert s.public("/webhooks/amocrm/t") == "https://chats.example.com/webhooks/amocrm/t"


@pytest.mark.parametrize("env, words", [
    ({"TOKEN_ENCRYPTION_KEYS": "not-a-key"}, "not a valid Fernet key"),
    ({"PORT": "eighty"}, "PORT"),
    ({"ADMIN_EMAIL": "a@b.ru"}, "ADMIN_PASSWORD"),
    ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
    ({"AMOCRM_RATE_LIMIT": "50"}, "AMOCRM_RATE_LIMIT"),
    ({"PUBLIC_URL": "chats.example.com"}, "PUBLIC_URL"),
])
def test_bad_values_are_named(tmp_path, env, words):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"APP_ENV": "development", "INSTANCE_DIR": str(tmp_path), **env})
    assert words in str(info.value)
