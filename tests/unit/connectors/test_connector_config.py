"""Connector configuration that needs no network: URLs, errors, unit codes, broker configs, client options."""

from __future__ import annotations

import pytest

from twinloop.connectors.broker import EmbeddedBroker, MosquittoBroker, amqtt_config
from twinloop.connectors.mqtt import MqttClient
from twinloop.connectors.opcua import UNECE_CODES, VariableSpec, eu_information, unece_unit_id
from twinloop.connectors.urls import ConnectorError, parse_url
from twinloop.core.errors import TwinloopError


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "tls"),
    [
        ("mqtt://127.0.0.1", "mqtt", "127.0.0.1", 1883, False),
        ("mqtts://broker.plant.local", "mqtts", "broker.plant.local", 8883, True),
        ("mqtt://user:pw@10.0.0.5:1884", "mqtt", "10.0.0.5", 1884, False),
        ("opc.tcp://plc-7:4840/twinloop/", "opc.tcp", "plc-7", 4840, False),
    ],
)
def test_parse_url_fills_default_ports(url: str, scheme: str, host: str, port: int, tls: bool) -> None:
    endpoint = parse_url(url)
    assert (endpoint.scheme, endpoint.host, endpoint.port, endpoint.tls) == (scheme, host, port, tls)


def test_parse_url_keeps_credentials() -> None:
    endpoint = parse_url("mqtt://user:pw@10.0.0.5:1884")
    assert (endpoint.username, endpoint.password) == ("user", "pw")


@pytest.mark.parametrize("url", ["http://x", "mqtt://", "mqtt://h:99999", "nonsense"])
def test_parse_url_rejects_unusable_urls_naming_them(url: str) -> None:
    with pytest.raises(ConnectorError) as info:
        parse_url(url)
    assert isinstance(info.value, TwinloopError) and url in str(info.value) and info.value.url == url


def test_unece_unit_ids_follow_the_opc_ua_encoding() -> None:
    # values as published in the OPC UA UNECE mapping (e.g. Eclipse Milo's CefactEngineeringUnits)
    assert unece_unit_id("CEL") == 4408652
    assert unece_unit_id("RPM") == 5394509
    assert unece_unit_id("C16") == 4403510
    assert unece_unit_id("MTR") == 5067858


def test_every_mapped_unit_has_a_short_code() -> None:
    assert {unit: code for unit, (code, _) in UNECE_CODES.items()} == {
        "degC": "CEL",
        "bar": "BAR",
        "rpm": "RPM",
        "m**3/h": "MQH",
        "kW": "KWT",
        "A": "AMP",
        "V": "VLT",
        "mm/s": "C16",
        "percent": "P1",
        "m": "MTR",
        "Hz": "HTZ",
    }


def test_eu_information_for_known_and_unknown_units() -> None:
    bar = eu_information("bar")
    assert (bar.UnitId, bar.DisplayName.Text, bar.NamespaceUri) == (
        unece_unit_id("BAR"),
        "bar",
        "http://www.opcfoundation.org/UA/units/un/cefact",
    )
    odd = eu_information("furlong/fortnight")
    assert (odd.UnitId, odd.DisplayName.Text) == (-1, "furlong/fortnight")


def test_variable_spec_defaults_to_a_read_only_double() -> None:
    spec = VariableSpec("flow")
    assert (spec.initial, spec.writable, spec.unit, spec.range) == (0.0, False, None, None)


def test_amqtt_config_is_anonymous_or_password_file() -> None:
    anonymous = amqtt_config("127.0.0.1", 1883)
    assert anonymous["listeners"]["default"] == {"type": "tcp", "bind": "127.0.0.1:1883"}
    assert anonymous["plugins"] == {
        "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
    }
    secured = amqtt_config("127.0.0.1", 1883, "/tmp/pw")
    assert secured["plugins"] == {"amqtt.plugins.authentication.FileAuthPlugin": {"password_file": "/tmp/pw"}}


def test_brokers_name_their_url_and_need_both_credentials() -> None:
    assert EmbeddedBroker(port=18830).url == "mqtt://127.0.0.1:18830"
    assert MosquittoBroker(port=18831).url == "mqtt://127.0.0.1:18831"
    with pytest.raises(ValueError, match="both"):
        EmbeddedBroker(port=18830, username="only-me")


def test_embedded_broker_keeps_the_password_off_the_command_line() -> None:
    cmd, env = EmbeddedBroker(port=18830, username="sim", password="s3cret")._command()
    assert "s3cret" not in " ".join(cmd) and env == {"TWINLOOP_BROKER_PASSWORD": "s3cret"}
    assert cmd[1:3] == ["-m", "twinloop.connectors.broker"]


def test_mqtt_client_validates_options_without_touching_the_network() -> None:
    client = MqttClient("mqtt://127.0.0.1:1")
    assert client.client_id.startswith("twinloop-") and not client.connected and client.protocol == "3.1.1"
    with pytest.raises(ConnectorError, match="not an MQTT URL"):
        MqttClient("opc.tcp://127.0.0.1:4840/")
    with pytest.raises(ValueError, match="client_id"):
        MqttClient("mqtt://127.0.0.1:1", clean=False)
    with pytest.raises(ValueError, match="protocol"):
        MqttClient("mqtt://127.0.0.1:1", protocol="3.1")  # type: ignore[arg-type]


def test_mqtt_client_publish_while_disconnected() -> None:
    client = MqttClient("mqtt://127.0.0.1:1")
    assert client.publish_nowait("t", b"x", qos=0) is False and client.dropped == 1
    assert client.publish_nowait("t", b"x", qos=1) is True  # queued by paho until connected
