"""Configuration: one INI file per host, one section per service.

Options are declared with their type and default next to the code that uses
them (see ``OPTIONS``); reading a value that is missing or malformed raises
``ConfigError`` naming the section and option, so a bad file stops a service
at start-up with a message the operator can act on.

The file is ``/etc/stratus/stratus.conf`` unless ``--config-file`` or the
``STRATUS_CONFIG`` environment variable says otherwise. Fragments in a
``stratus.conf.d`` directory next to it are read after it, in name order, so
that several deployment roles can each own a piece of the configuration.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("/etc/stratus/stratus.conf")


class ConfigError(Exception):
    """A configuration value is missing or cannot be used."""


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{raw!r} is not a boolean (use true or false)")


def _str_list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


PARSERS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": _bool,
    "list": _str_list,
}


@dataclass(frozen=True)
class Option:
    """One declared option: its type, default (None means required) and help."""

    name: str
    type: str = "str"
    default: Any = None
    help: str = ""
    minimum: float | None = None
    choices: tuple[str, ...] | None = None
    required: bool = False


def _opts(*options: Option) -> dict[str, Option]:
    return {option.name: option for option in options}


# The options every component knows. Components add their own sections with
# ``register``; unknown sections in the file are ignored so that one file can
# serve a host that runs several services.
OPTIONS: dict[str, dict[str, Option]] = {
    "DEFAULT": _opts(
        Option("log_format", default="json", choices=("json", "text"), help="Log line format."),
        Option("debug", "bool", False, "Log at DEBUG level."),
        Option(
            "keep_alive_timeout",
            "int",
            75,
            "Seconds an API keeps an idle client connection open. Longer than "
            "clients' polling intervals (the openstack CLI's --wait polls every 5 s) "
            "and a load balancer's idle timeout, so that the API never closes a "
            "connection just as a client sends on it.",
            minimum=1,
        ),
    ),
    "database": _opts(
        Option(
            "connection",
            default="sqlite:////var/lib/stratus/stratus.db",
            help="SQLAlchemy URL of the shared database.",
        ),
        Option("pool_size", "int", 5, "Connections kept open per process.", minimum=1),
        Option(
            "busy_timeout",
            "float",
            30.0,
            "Seconds SQLite waits for a lock before failing.",
            minimum=0,
        ),
    ),
}


def register(section: str, options: Iterable[Option]) -> None:
    """Declare the options of a component's section."""
    OPTIONS.setdefault(section, {}).update({o.name: o for o in options})


class Config:
    """Typed access to the configuration file.

    ``overrides`` (section -> option -> value) take precedence over the file;
    tests use them instead of writing files.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.path = Path(path) if path else Path(os.environ.get("STRATUS_CONFIG", DEFAULT_PATH))
        self._parser = configparser.ConfigParser(interpolation=None)
        self._overrides = {s: dict(v) for s, v in (overrides or {}).items()}
        self._cache: dict[tuple[str, str], Any] = {}
        files = []
        if self.path.exists():
            files.append(self.path)
        elif path is not None or "STRATUS_CONFIG" in os.environ:
            raise ConfigError(f"configuration file {self.path} does not exist")
        fragments = self.path.with_name(self.path.name + ".d")
        if fragments.is_dir():
            files.extend(sorted(fragments.glob("*.conf")))
        for file in files:
            try:
                with open(file, encoding="utf-8") as handle:
                    self._parser.read_file(handle)
            except (configparser.Error, UnicodeDecodeError) as exc:
                raise ConfigError(f"{file}: cannot be parsed: {exc}") from exc
            except PermissionError as exc:
                raise ConfigError(f"{file}: cannot be read: {exc.strerror}") from exc

    def get(self, section: str, name: str) -> Any:
        key = (section, name)
        if key not in self._cache:
            self._cache[key] = self._read(section, name)
        return self._cache[key]

    def section(self, section: str) -> SectionView:
        return SectionView(self, section)

    def _read(self, section: str, name: str) -> Any:
        option = OPTIONS.get(section, {}).get(name) or OPTIONS["DEFAULT"].get(name)
        if option is None:
            raise ConfigError(f"[{section}] {name}: unknown option")
        where = f"[{section}] {name}"
        if name in self._overrides.get(section, {}):
            raw = self._overrides[section][name]
            if not isinstance(raw, str):
                return raw
        elif self._parser.has_option(section, name) or (
            section == "DEFAULT" and name in self._parser.defaults()
        ):
            raw = self._parser.get(section, name)
        else:
            raw = None
        if raw is None or (raw.strip() == "" and option.type != "str"):
            if option.required:
                raise ConfigError(f"{where}: a value is required ({option.help})")
            return option.default
        try:
            value = PARSERS[option.type](raw)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        if option.minimum is not None and value < option.minimum:
            raise ConfigError(f"{where}: {value} is below the minimum {option.minimum}")
        if option.choices is not None and value not in option.choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(option.choices)}")
        return value


class SectionView:
    """Attribute access to one section: ``conf.section('identity').bind_port``."""

    def __init__(self, config: Config, section: str) -> None:
        self._config = config
        self._section = section

    def __getattr__(self, name: str) -> Any:
        return self._config.get(self._section, name)
