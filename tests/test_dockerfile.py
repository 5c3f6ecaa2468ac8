"""The Dockerfile and compose.yaml have the properties the service relies on.

No Docker engine runs here: the file is parsed (dockerfile-parse) and checked;
tests/test_image_replay.py replays its install and start steps.
"""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from app.config import Settings
from tests.dockerimage import ROOT, healthcheck, stages

STAGES = stages()
BUILD, RUNTIME = STAGES[0], STAGES[-1]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_image_is_built_in_one_stage_and_run_from_another():
    assert len(STAGES) >= 2
    assert BUILD.name and BUILD.name != RUNTIME.name


def test_base_images_are_pinned_slim_python_releases():
    for stage in STAGES:
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", stage.base), stage.base


def test_runtime_uses_the_same_base_as_the_build():
    # The virtualenv points at the base image's interpreter: both must be the same.
    assert RUNTIME.base == BUILD.base


def test_runtime_stage_builds_and_installs_nothing():
    assert RUNTIME.all("RUN") == []
    assert RUNTIME.all("ADD") == []


def test_runtime_takes_the_virtualenv_from_the_build_stage():
    copies = [(i.flags.get("from"), i.args.split()) for i in RUNTIME.all("COPY")]
    assert (BUILD.name, ["/opt/venv", "/opt/venv"]) in copies
    assert RUNTIME.env()["PATH"].startswith("/opt/venv/bin:")


def test_build_stage_installs_the_project_with_its_container_extra():
    installs = [i.args for i in BUILD.all("RUN") if "pip install" in i.args]
    assert any('".[container]"' in args and "--no-cache-dir" in args for args in installs), installs


def test_container_extra_pins_the_init():
    assert PYPROJECT["project"]["optional-dependencies"]["container"] == ["dumb-init==1.2.5.post1"]


def test_service_runs_as_a_numeric_non_root_user():
    user = RUNTIME.last("USER")
    assert user is not None, "the runtime stage sets no USER: it would run as root"
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) != 0
    assert gid == "" or (gid.isdigit() and int(gid) != 0)


def test_entrypoint_is_exec_form_behind_an_init():
    entrypoint = RUNTIME.last("ENTRYPOINT").exec_form()
    assert entrypoint[:2] == ["dumb-init", "--"]
    assert entrypoint[2:] == ["stories"]


def test_default_command_migrates_and_serves():
    assert RUNTIME.last("CMD").exec_form() == ["serve"]


def test_sigterm_is_the_stop_signal():
    stop = RUNTIME.last("STOPSIGNAL")
    assert stop is None or stop.args == "SIGTERM"


def test_healthcheck_probes_readiness_without_curl():
    options, command = healthcheck(RUNTIME)
    assert command[0] == "python"
    assert "/readyz" in " ".join(command)
    assert not {"curl", "wget"} & set(" ".join(command).split())
    assert {"interval", "timeout", "start-period", "retries"} <= set(options)


def test_sqlite_default_lives_on_the_data_volume():
    assert "/data" in RUNTIME.last("VOLUME").exec_form()
    assert RUNTIME.env()["STORIES_DATABASE_URL"] == "sqlite:////data/stories.db"


def test_data_directory_belongs_to_the_service_user():
    user = RUNTIME.last("USER").args
    owned = [i for i in RUNTIME.all("COPY") if i.args.split()[-1] == "/data"]
    assert owned and owned[0].flags.get("chown") == user


def test_exposed_port_is_the_served_port():
    assert RUNTIME.last("EXPOSE").args == RUNTIME.env()["STORIES_PORT"]


def test_every_stories_variable_in_the_image_is_a_setting():
    names = {k.removeprefix("STORIES_").lower() for k in RUNTIME.env() if k.startswith("STORIES_")}
    assert names <= set(Settings.model_fields)


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_build_context_is_an_allow_list_without_local_state():
    rules = _dockerignore()
    assert rules[0] == "*"  # nothing goes in unless named
    admitted = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert not admitted & {".venv", "data", ".git", "secrets"}


def test_build_context_admits_what_the_dockerfile_copies():
    allowed = {rule[1:].rstrip("/") for rule in _dockerignore() if rule.startswith("!")}
    for instruction in BUILD.all("COPY"):
        *sources, _ = instruction.args.split()
        assert set(sources) <= allowed, sources


# -- compose.yaml ----------------------------------------------------------------


def _compose_env(service: str) -> dict[str, str]:
    return COMPOSE["services"][service].get("environment", {})


@pytest.mark.parametrize("service", ["migrate", "api"])
def test_compose_sets_only_known_settings(service):
    names = {k.removeprefix("STORIES_").lower() for k in _compose_env(service)}
    assert names <= set(Settings.model_fields)


@pytest.mark.parametrize("service", ["migrate", "api"])
def test_compose_secrets_are_named_after_settings(service):
    for secret in COMPOSE["services"][service]["secrets"]:
        assert secret.removeprefix("stories_") in Settings.model_fields


def test_compose_serves_after_the_schema_is_migrated_once():
    api = COMPOSE["services"]["api"]
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert _compose_env("api")["STORIES_MIGRATE_ON_START"] == "false"
    assert COMPOSE["services"]["migrate"]["command"] == ["migrate"]


def test_compose_migrates_once_postgresql_is_healthy():
    assert COMPOSE["services"]["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "healthcheck" in COMPOSE["services"]["db"]


def test_compose_gives_in_flight_requests_time_to_finish():
    grace = int(COMPOSE["services"]["api"]["stop_grace_period"].removesuffix("s"))
    assert grace > float(_compose_env("api")["STORIES_SHUTDOWN_TIMEOUT"])
