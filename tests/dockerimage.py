"""The Dockerfile read as data (dockerfile-parse), for the image tests."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Instruction:
    name: str  # upper case: FROM, RUN, COPY, ...
    flags: dict[str, str]  # --from=build -> {"from": "build"}
    args: str  # the rest of the line, continuation lines joined

    def exec_form(self) -> list[str]:
        """The JSON-array form of a CMD/ENTRYPOINT (ValueError when it is shell form)."""
        value = json.loads(self.args)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{self.name} is not in exec form: {self.args}")
        return value


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, name: str) -> list[Instruction]:
        return [i for i in self.instructions if i.name == name]

    def last(self, name: str) -> Instruction | None:
        found = self.all(name)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """ENV as written (``$PATH`` left unexpanded)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for pair in shlex.split(instruction.args):
                key, _, value = pair.partition("=")
                values[key] = value
        return values


def _split_flags(value: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = value.strip()
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        key, _, flag_value = token[2:].partition("=")
        flags[key] = flag_value
        rest = rest.strip()
    return flags, rest


def stages(path: Path = DOCKERFILE) -> list[Stage]:
    parser = DockerfileParser(str(path))
    result: list[Stage] = []
    for item in parser.structure:
        name = item["instruction"].upper()
        if name == "COMMENT":
            continue
        value = " ".join(item["value"].split()) if name not in ("RUN",) else item["value"]
        if name == "FROM":
            parts = value.split()
            stage_name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            result.append(Stage(base=parts[0], name=stage_name))
            continue
        flags, args = _split_flags(value)
        result[-1].instructions.append(Instruction(name, flags, args))
    return result


def healthcheck(stage: Stage) -> tuple[dict[str, str], list[str]]:
    """(options, exec-form command) of the stage's HEALTHCHECK."""
    instruction = stage.last("HEALTHCHECK")
    if instruction is None:
        raise AssertionError("no HEALTHCHECK")
    kind, _, command = instruction.args.partition(" ")
    if kind.upper() != "CMD":
        raise AssertionError(f"HEALTHCHECK {kind} has no command")
    return instruction.flags, Instruction("CMD", {}, command).exec_form()
