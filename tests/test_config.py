import os
import re
import warnings
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import ConfigurationError, Settings, load_settings

README = Path(__file__).resolve().parents[1] / "README.md"


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


def test_setting_is_read_from_a_file_named_after_the_variable(tmp_path):
    (tmp_path / "stories_api_key").write_text("from-a-file\n")
    assert Settings(_secrets_dir=tmp_path).api_key.get_secret_value() == "from-a-file"


def test_upper_case_secret_file_name_is_read_too(tmp_path):
    (tmp_path / "STORIES_DATABASE_URL").write_text("postgresql://svc@db/stories")
    assert Settings(_secrets_dir=tmp_path).database_url == "postgresql+psycopg://svc@db/stories"


def test_environment_wins_over_a_secret_file(tmp_path, monkeypatch):
    (tmp_path / "stories_api_key").write_text("from-a-file")
    monkeypatch.setenv("STORIES_API_KEY", "from-the-environment")
    assert Settings(_secrets_dir=tmp_path).api_key.get_secret_value() == "from-the-environment"


def test_missing_secrets_directory_is_the_normal_case(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Settings(_secrets_dir=tmp_path / "absent").api_key is None


def test_invalid_configuration_stops_with_the_variable_named(monkeypatch):
    monkeypatch.setenv("STORIES_PORT", "eighty")
    with pytest.raises(ConfigurationError, match=r"STORIES_PORT: .*integer.*'eighty'"):
        load_settings()


def test_every_invalid_variable_is_named_at_once(monkeypatch):
    monkeypatch.setenv("STORIES_LOG_LEVEL", "loud")
    monkeypatch.setenv("STORIES_SHUTDOWN_TIMEOUT", "-1")
    with pytest.raises(ConfigurationError) as stopped:
        load_settings()
    assert "STORIES_LOG_LEVEL" in str(stopped.value) and "STORIES_SHUTDOWN_TIMEOUT" in str(stopped.value)


def test_rejected_database_url_is_not_echoed(monkeypatch):
    monkeypatch.setenv("STORIES_DATABASE_URL", "mysql://admin:hunter2@db/stories")
    with pytest.raises(ConfigurationError) as stopped:
        load_settings()
    assert "STORIES_DATABASE_URL" in str(stopped.value) and "hunter2" not in str(stopped.value)


@pytest.mark.parametrize("level", ["DEBUG", "Warning"])
def test_log_level_is_read_case_insensitively(level):
    assert Settings(log_level=level).log_level == level.lower()


def _as_written(default: object) -> str:
    """A default as an operator would write the variable: ``false``, ``20``."""
    if isinstance(default, bool):
        return str(default).lower()
    return format(default, "g") if isinstance(default, float) else str(default)


def _readme_table(section: str) -> dict[str, tuple[str, str]]:
    """{variable: (default, meaning)} from the table under ``## section``."""
    text = README.read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(STORIES_[A-Z_]+)` \| (.*?) \| (.*?) \|$", body, re.M)
    return {name: (default, meaning) for name, default, meaning in rows}


def test_every_setting_is_documented_in_the_readme():
    documented = _readme_table("Configuration")
    expected = {"STORIES_" + name.upper() for name in Settings.model_fields}
    assert set(documented) == expected


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_documented_default_is_the_real_default(name):
    field = Settings.model_fields[name]
    default = field.default
    documented = _readme_table("Configuration")["STORIES_" + name.upper()][0]
    if field.default_factory is not None:  # a default worked out at start: the README says how
        assert name == "workers" and documented == "one per core"
        assert field.default_factory() == len(os.sched_getaffinity(0))
    elif default is None:
        assert documented == "unset"
    else:
        assert documented == f"`{_as_written(default)}`"
