import pytest
from pydantic import ValidationError

from app.config import Settings


def test_settings_read_prefixed_environment(monkeypatch):
    monkeypatch.setenv("STORIES_PORT", "9001")
    monkeypatch.setenv("STORIES_API_KEY", "k")
    settings = Settings()
    assert settings.port == 9001
    assert settings.api_key.get_secret_value() == "k"


def test_invalid_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("STORIES_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_unknown_database_scheme_is_refused():
    with pytest.raises(ValidationError, match="STORIES_DATABASE_URL"):
        Settings(database_url="mysql://x")


def test_plain_postgresql_url_uses_psycopg_driver():
    assert Settings(database_url="postgresql://u@h/db").database_url == "postgresql+psycopg://u@h/db"


def test_public_bind_without_key_refuses_to_start():
    with pytest.raises(SystemExit, match="STORIES_API_KEY"):
        Settings(host="0.0.0.0", api_key=None).check_exposure()


@pytest.mark.parametrize(
    "settings",
    [
        Settings(host="127.0.0.1"),
        Settings(host="localhost"),
        Settings(host="0.0.0.0", api_key="k"),
        Settings(host="0.0.0.0", allow_anonymous_writes=True),
    ],
)
def test_loopback_or_keyed_or_explicitly_anonymous_bind_may_start(settings):
    settings.check_exposure()
