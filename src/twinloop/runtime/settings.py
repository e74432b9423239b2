"""Typed settings from a YAML file and ``TWINLOOP_*`` environment variables.

Precedence, highest first: explicit arguments, environment (``TWINLOOP_API_PORT=9000``), the
config file (``TWINLOOP_CONFIG=/etc/twinloop.yaml`` or ``./twinloop.yaml`` if present), defaults.
The defaults need no configuration at all: an embedded DuckDB file under ``.twinloop/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from twinloop.core.errors import ConfigError

DEFAULT_CONFIG_FILE = "twinloop.yaml"


def _config_file() -> Path | None:
    explicit = os.environ.get("TWINLOOP_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(
                f"config file {explicit!r} (from TWINLOOP_CONFIG) does not exist",
                hint="point TWINLOOP_CONFIG at a YAML file or unset it",
            )
        return path
    local = Path(DEFAULT_CONFIG_FILE)
    return local if local.is_file() else None


class Settings(BaseSettings):
    """Everything a twinloop process can be configured with."""

    model_config = SettingsConfigDict(env_prefix="TWINLOOP_", extra="forbid", frozen=True)

    data_dir: Path = Field(Path(".twinloop"), description="where embedded data lives")
    store_url: str | None = Field(
        None, description="store URL: duckdb:///path.duckdb or memory://; default under data_dir"
    )
    plant: Path | None = Field(None, description="plant file whose twins seed a new store")
    types: list[Path] = Field(default_factory=list, description="extra asset type files or dirs")
    api_host: str = "127.0.0.1"
    api_port: int = Field(8321, ge=1, le=65535)
    log_level: str = "info"

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.lower()
        if v not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError("log_level must be debug, info, warning, error or critical")
        return v

    @property
    def resolved_store_url(self) -> str:
        """The store URL actually used: explicit, or the DuckDB file under ``data_dir``."""
        if self.store_url:
            return self.store_url
        return f"duckdb:///{(self.data_dir / 'twinloop.duckdb').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Settings from all sources, with ``overrides`` (non-None values) on top; clear errors."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(
            f"invalid settings: {problems}",
            hint="check TWINLOOP_* environment variables and the config file",
        ) from err
    except ValueError as err:  # e.g. unreadable YAML in the config file
        raise ConfigError(f"invalid settings: {err}") from err


__all__ = ["DEFAULT_CONFIG_FILE", "Settings", "load_settings"]
