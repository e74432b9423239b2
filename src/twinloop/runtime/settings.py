"""Typed settings from a YAML file and ``TWINLOOP_*`` environment variables.

Precedence, highest first: explicit arguments, environment (``TWINLOOP_API_PORT=9000``), the
config file (``TWINLOOP_CONFIG=/etc/twinloop.yaml`` or ``./twinloop.yaml`` if present), defaults.
The defaults need no configuration at all: an embedded DuckDB file under ``.twinloop/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
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

    # --- ingestion: connections, mapping, pipeline ----------------------------------------------
    ingest: bool = Field(True, description="start sources and the pipeline with the runtime")
    mapping: Path | None = Field(
        None, description="ingest mapping file; default: mapping.yaml next to the plant file"
    )
    mqtt_enabled: bool = Field(True, description="ingest over MQTT (and send commands over it)")
    mqtt_url: str | None = Field(
        None, description="broker to ingest from, mqtt(s)://host:port; None starts an embedded broker"
    )
    mqtt_topics: list[str] = Field(
        default_factory=list, description="topic filters; default: those the mapping declares"
    )
    mqtt_client_id: str = Field(
        "twinloop-runtime", description="stable id: the broker keeps our session under it"
    )
    mqtt_protocol: Literal["3.1.1", "5"] | None = Field(
        None, description="None: 5 for an external broker, 3.1.1 for the embedded one (amqtt)"
    )
    mqtt_qos: Literal[0, 1] = Field(1, description="1: acknowledged only after storing")
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_ca_file: Path | None = None
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None
    mqtt_tls_insecure: bool = False
    embedded_broker_port: int = Field(
        1883, ge=0, le=65535, description="port of the embedded broker; taken or 0: any free port"
    )
    opcua_endpoints: list[str] = Field(
        default_factory=list, description="OPC UA servers to subscribe to, opc.tcp://host:port/path"
    )
    opcua_namespace: str = "urn:twinloop:sim"
    opcua_queuesize: int = Field(1000, ge=1)
    opcua_deadband: float = Field(0.0, ge=0)
    ingest_batch_size: int = Field(5000, ge=1, description="messages per micro-batch at most")
    ingest_batch_ms: float = Field(10.0, gt=0, description="a micro-batch waits at most this long")
    ingest_queue: int = Field(50_000, ge=1, description="messages queued before sources wait")
    events_interval_s: float = Field(1.0, gt=0, description="ReadingsApplied per twin at most this often")
    alerts_types: list[str] | None = Field(
        None, description="asset types watched for anomalies while ingesting; default: every type "
                          "that declares analytics: {alerts: …}; [] watches none"
    )
    alerts_operating: dict[str, str] = Field(
        default_factory=dict,
        description="per asset type, over its declared alerts.operating: when a twin counts as "
                    "operating (only then is it learned and judged); 'off' for never gated",
    )
    alerts_learn_s: float | None = Field(
        None, gt=0, description="readings-time learned as normal per twin, over each type's alerts.learn"
    )
    alerts_period_s: float | None = Field(
        None, gt=0, description="detectors see readings on this grid, over each type's alerts.period"
    )
    alerts_interval_s: float = Field(5.0, gt=0, description="wall seconds between alert passes")
    ingest_max_future_s: float = Field(
        300.0, gt=0, description="readings stamped further ahead of the clock than this are rejected "
        "(a simulator announces its own clock: see `clock:` in the mapping, docs/ingest.md)"
    )
    command_timeout_s: float = Field(10.0, gt=0, description="how long a command waits for its ack")

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

    @property
    def resolved_mapping(self) -> Path | None:
        """The mapping file used: explicit, or ``mapping.yaml`` beside the plant file when present."""
        if self.mapping is not None:
            return self.mapping
        if self.plant is not None:
            beside = self.plant.parent / "mapping.yaml"
            if beside.is_file():
                return beside
        return None

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
