"""OPC UA over asyncua: a thin server for serving a plant, and a small client for reading one.

NodeIds are predictable strings so a mapping table can be written before the server runs:
the object ``pump-A1`` is ``ns=2;s=pump-A1``, its variable ``flow`` is ``ns=2;s=pump-A1.flow`` and its
method ``start`` is ``ns=2;s=pump-A1.start`` (ns=2 is the first namespace a server registers).
Units travel as the standard ``EngineeringUnits`` property (EUInformation with UNECE Rec. 20 codes).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from asyncua import Client, Node, Server, ua
from asyncua.common.callback import CallbackType, ServerItemCallback

from twinloop.connectors.urls import ConnectorError, parse_url

_log = logging.getLogger(__name__)

_CEFACT = "http://www.opcfoundation.org/UA/units/un/cefact"
UNECE_CODES: dict[str, tuple[str, str]] = {
    "degC": ("CEL", "°C"),
    "bar": ("BAR", "bar"),
    "rpm": ("RPM", "r/min"),
    "m**3/h": ("MQH", "m³/h"),
    "kW": ("KWT", "kW"),
    "A": ("AMP", "A"),
    "V": ("VLT", "V"),
    "mm/s": ("C16", "mm/s"),
    "percent": ("P1", "%"),
    "m": ("MTR", "m"),
    "Hz": ("HTZ", "Hz"),
}
"""pint unit string → (UNECE common code, display symbol); codes checked against the OPC UA / UNECE tables."""

Value = float | bool
WriteCallback = Callable[[str, Value], Awaitable[None] | None]
MethodHandler = Callable[..., Awaitable[tuple[bool, str]]]
_PY_TO_VARIANT = {
    float: ua.VariantType.Double,
    bool: ua.VariantType.Boolean,
    int: ua.VariantType.Int64,
    str: ua.VariantType.String,
}


def unece_unit_id(code: str) -> int:
    """The EUInformation ``UnitId`` of a UNECE code: its ASCII bytes, big-endian (OPC 10000-8 §5.6.3).

    >>> unece_unit_id("CEL"), unece_unit_id("P1")
    (4408652, 20529)
    """
    unit_id = 0
    for char in code:
        unit_id = (unit_id << 8) | ord(char)
    return unit_id


def eu_information(unit: str) -> ua.EUInformation:
    """EUInformation for a pint unit string; units without a known UNECE code carry only their name (-1)."""
    code, symbol = UNECE_CODES.get(unit, (None, unit))
    unit_id = unece_unit_id(code) if code else -1
    return ua.EUInformation(_CEFACT, unit_id, ua.LocalizedText(symbol), ua.LocalizedText(unit))


@dataclass(frozen=True)
class VariableSpec:
    """One plant variable to serve: a Double (or Boolean when ``initial`` is a bool), optionally writable."""

    name: str
    unit: str | None = None
    initial: Value = 0.0
    writable: bool = False
    description: str = ""
    range: tuple[float, float] | None = None


@dataclass(frozen=True)
class UnitInfo:
    """What a client learns from a variable's EngineeringUnits property."""

    code: str | None
    unit_id: int
    display_name: str
    description: str


class OpcUaServer:
    """An asyncua server for a plant: objects with unit-tagged variables, methods as commands, fast writes."""

    def __init__(
        self,
        endpoint: str = "opc.tcp://127.0.0.1:4840/twinloop/",
        namespace: str = "urn:twinloop:sim",
        name: str = "twinloop plant",
    ) -> None:
        parse_url(endpoint)
        self.endpoint = endpoint
        self.namespace = namespace
        self.name = name
        self._server: Server | None = None
        self._ns = 2
        self._nodes: dict[str, Node] = {}
        self._variants: dict[str, tuple[ua.NodeId, ua.VariantType]] = {}
        self._paths: dict[ua.NodeId, str] = {}
        self._write_callbacks: list[WriteCallback] = []

    async def start(self) -> OpcUaServer:
        """Build the address space and listen; takes 2-3 s (asyncua loads the standard nodeset)."""
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(self.name)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self._ns = await server.register_namespace(self.namespace)
        server.subscribe_server_callback(CallbackType.PostWrite, self._post_write)
        try:
            await server.start()
        except OSError as err:
            raise ConnectorError(
                f"cannot listen: {err}", url=self.endpoint, hint="is the port free?"
            ) from err
        self._server = server
        _log.info("OPC UA server listening on %s", self.endpoint)
        return self

    async def stop(self) -> None:
        """Close every session and the listening socket."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    async def __aenter__(self) -> OpcUaServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def node_id(self, path: str) -> str:
        """The string NodeId clients use for an object, variable (``obj.var``) or method (``obj.method``)."""
        return f"ns={self._ns};s={path}"

    @property
    def _srv(self) -> Server:
        if self._server is None:
            raise ConnectorError("server is not started", url=self.endpoint, hint="await start() first")
        return self._server

    async def _object(self, path: str) -> Node:
        """The object at ``path`` (``area/pump-A1``), creating it and its parents on first use."""
        if path in self._nodes:
            return self._nodes[path]
        parent_path, _, name = path.rpartition("/")
        parent = await self._object(parent_path) if parent_path else self._srv.nodes.objects
        node = await parent.add_object(ua.NodeId(path, self._ns), ua.QualifiedName(name, self._ns))
        self._nodes[path] = node
        return node

    async def add_object(self, path: str, variables: Iterable[VariableSpec]) -> dict[str, str]:
        """Serve an object with its variables; returns ``{variable name: NodeId string}``."""
        obj = await self._object(path)
        ids: dict[str, str] = {}
        for spec in variables:
            vpath = f"{path}.{spec.name}"
            if vpath in self._variants:
                raise ValueError(f"variable {vpath!r} exists already")
            vtype = ua.VariantType.Boolean if isinstance(spec.initial, bool) else ua.VariantType.Double
            value = bool(spec.initial) if vtype is ua.VariantType.Boolean else float(spec.initial)
            nodeid = ua.NodeId(vpath, self._ns)
            var = await _add_variable(
                obj, nodeid, ua.QualifiedName(spec.name, self._ns), ua.Variant(value, vtype)
            )
            if spec.description:
                await var.write_attribute(
                    ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(spec.description)))
                )
            if spec.unit:
                await var.add_property(
                    ua.NodeId(f"{vpath}.EngineeringUnits", self._ns),
                    ua.QualifiedName("EngineeringUnits", 0),
                    ua.Variant(eu_information(spec.unit), ua.VariantType.ExtensionObject),
                    datatype=ua.NodeId(ua.ObjectIds.EUInformation),
                )
            if spec.range:
                await var.add_property(
                    ua.NodeId(f"{vpath}.EURange", self._ns),
                    ua.QualifiedName("EURange", 0),
                    ua.Variant(ua.Range(*map(float, spec.range)), ua.VariantType.ExtensionObject),
                    datatype=ua.NodeId(ua.ObjectIds.Range),
                )
            if spec.writable:
                await var.set_writable()
            self._variants[vpath] = (nodeid, vtype)
            self._paths[nodeid] = vpath
            ids[spec.name] = self.node_id(vpath)
        return ids

    async def add_method(
        self, object_path: str, name: str, args: list[tuple[str, type]], handler: MethodHandler
    ) -> str:
        """Expose ``await handler(**kwargs) -> (ok, message)`` as a method with outputs ``ok, message``.

        A handler that raises answers ``(False, "<error>")``: a failed command is an answer, not a crash.
        """
        obj = await self._object(object_path)
        names = [arg for arg, _ in args]
        types = [pytype for _, pytype in args]
        inputs = [_argument(arg, _PY_TO_VARIANT[pytype]) for arg, pytype in args]
        outputs = [_argument("ok", ua.VariantType.Boolean), _argument("message", ua.VariantType.String)]

        async def call(_parent: ua.NodeId, *variants: ua.Variant) -> list[ua.Variant]:
            if len(variants) != len(names):
                return _method_result(False, f"{name} takes {len(names)} arguments, got {len(variants)}")
            try:
                kwargs = {n: t(v.Value) for n, t, v in zip(names, types, variants, strict=True)}
                ok, message = await handler(**kwargs)
            except Exception as err:  # noqa: BLE001 - reported to the caller, logged here
                _log.exception("method %s.%s failed", object_path, name)
                return _method_result(False, f"{type(err).__name__}: {err}")
            return _method_result(bool(ok), str(message))

        mpath = f"{object_path}.{name}"
        await obj.add_method(
            ua.NodeId(mpath, self._ns), ua.QualifiedName(name, self._ns), call, inputs, outputs
        )
        return self.node_id(mpath)

    def on_write(self, callback: WriteCallback) -> None:
        """Call ``callback(path, value)`` after a client wrote a writable variable (not our own writes)."""
        self._write_callbacks.append(callback)

    async def _post_write(self, event: ServerItemCallback, _dispatcher: Any) -> None:
        if not event.is_external or not self._write_callbacks:
            return
        for item, status in zip(event.request_params.NodesToWrite, event.response_params, strict=False):
            path = self._paths.get(item.NodeId)
            if path is None or item.AttributeId != ua.AttributeIds.Value or not status.is_good():
                continue
            for callback in self._write_callbacks:
                try:
                    result = callback(path, item.Value.Value.Value)
                    if inspect.isawaitable(result):
                        await result
                except Exception:  # a broken observer must not fail the client's write
                    _log.exception("on_write callback failed for %s", path)

    async def write_values(self, values: Mapping[str, Value]) -> None:
        """Set many variables at once with one source timestamp: the hot-loop path, no access checks."""
        server = self._srv
        now = datetime.now(UTC)
        for path, value in values.items():
            try:
                nodeid, vtype = self._variants[path]
            except KeyError:
                raise KeyError(f"no variable {path!r}; add_object() it first") from None
            coerced = bool(value) if vtype is ua.VariantType.Boolean else float(value)
            await server.write_attribute_value(
                nodeid, ua.DataValue(ua.Variant(coerced, vtype), SourceTimestamp=now)
            )

    async def read_value(self, path: str) -> Value:
        """The current value of a served variable (mostly for tests and for reading client writes)."""
        result: Value = await self._srv.get_node(self._variants[path][0]).read_value()
        return result


DataChangeHandler = Callable[[str, Any, datetime | None], Awaitable[None] | None]
"""Called with ``(path, value, source_timestamp)`` for every data-change notification."""


class OpcUaClient:
    """A small OPC UA client that speaks in the server's paths (``pump-A1.flow``), not NodeIds.

    Reconnecting is left to the caller (the ingestion supervisor): on ``ConnectorError`` build a new one.
    """

    def __init__(self, endpoint: str, namespace: str = "urn:twinloop:sim", timeout: float = 5.0) -> None:
        parse_url(endpoint)
        self.endpoint = endpoint
        self.namespace = namespace
        self._client = Client(endpoint, timeout=timeout)
        self._ns = 2
        self._vtypes: dict[str, ua.VariantType] = {}
        self._subscriptions: list[Any] = []

    async def connect(self) -> OpcUaClient:
        """Open a session and resolve the namespace index; raise ``ConnectorError`` when unreachable."""
        try:
            await self._client.connect()
            self._ns = await self._client.get_namespace_index(self.namespace)
        except (OSError, TimeoutError, ua.UaError, ValueError) as err:
            raise ConnectorError(
                f"cannot open an OPC UA session: {err or type(err).__name__}",
                url=self.endpoint,
                hint="is the server running, and does it serve namespace " + self.namespace + "?",
            ) from err
        return self

    async def disconnect(self) -> None:
        """Delete subscriptions and close the session."""
        for sub in self._subscriptions:
            try:
                await sub.delete()
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        self._subscriptions.clear()
        try:
            await self._client.disconnect()
        except (OSError, ua.UaError, TimeoutError, ConnectionError):
            pass

    async def __aenter__(self) -> OpcUaClient:
        return await self.connect()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.disconnect()

    def node(self, path: str) -> Node:
        """The asyncua node for a path, for anything this wrapper does not cover."""
        return self._client.get_node(ua.NodeId(path, self._ns))

    async def read(self, paths: Iterable[str]) -> dict[str, Any]:
        """Current values of several variables in one Read request."""
        paths = list(paths)
        values = await self._client.read_values([self.node(p) for p in paths])
        return dict(zip(paths, values, strict=True))

    async def engineering_units(self, path: str) -> UnitInfo | None:
        """The variable's EngineeringUnits property, or None when it has none."""
        try:
            prop = await self.node(path).get_child(ua.QualifiedName("EngineeringUnits", 0))
            eu = await prop.read_value()
        except ua.UaStatusCodeError:
            return None
        code = "".join(chr((eu.UnitId >> s) & 0xFF) for s in (16, 8, 0) if (eu.UnitId >> s) & 0xFF)
        return UnitInfo(
            code if eu.UnitId > 0 else None, eu.UnitId, eu.DisplayName.Text or "", eu.Description.Text or ""
        )

    async def subscribe(
        self, paths: Iterable[str], handler: DataChangeHandler, period_ms: float = 100, queuesize: int = 1
    ) -> None:
        """Get data changes for ``paths`` every ``period_ms``.

        ``queuesize=1`` delivers only the latest value per publish cycle (standard OPC UA sampling); set it
        higher where every sample matters (DEPENDENCY-NOTES §4: ~10k changes/s delivered with a large queue).
        """
        paths = list(paths)
        by_node = {ua.NodeId(p, self._ns): p for p in paths}
        sub = await self._client.create_subscription(
            period_ms, _DataChange(by_node, handler), queue_maxsize=0
        )
        self._subscriptions.append(sub)
        await sub.subscribe_data_change(
            [self.node(p) for p in paths],
            queuesize=queuesize,
            sampling_interval=0 if queuesize > 1 else period_ms,
        )

    async def call(self, object_path: str, method: str, *args: Any) -> tuple[bool, str]:
        """Call a method served by ``OpcUaServer.add_method``; returns its ``(ok, message)``."""
        variants = [ua.Variant(a, _PY_TO_VARIANT.get(type(a))) for a in args]
        try:
            ok, message = await self.node(object_path).call_method(
                ua.NodeId(f"{object_path}.{method}", self._ns), *variants
            )
        except ua.UaStatusCodeError as err:
            return False, f"{object_path}.{method}: {err}"
        return bool(ok), str(message)

    async def write(self, path: str, value: Value) -> None:
        """Write a writable variable, converting ``value`` to the variable's own data type."""
        node = self.node(path)
        vtype = self._vtypes.get(path)
        if vtype is None:
            vtype = self._vtypes[path] = await node.read_data_type_as_variant_type()
        coerced = bool(value) if vtype is ua.VariantType.Boolean else float(value)
        await node.write_value(ua.DataValue(ua.Variant(coerced, vtype)))


class _DataChange:
    """asyncua subscription handler that translates NodeIds back to paths."""

    def __init__(self, by_node: dict[ua.NodeId, str], handler: DataChangeHandler) -> None:
        self._by_node = by_node
        self._handler = handler

    async def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        path = self._by_node.get(node.nodeid, str(node.nodeid))
        result = self._handler(path, val, data.monitored_item.Value.SourceTimestamp)
        if inspect.isawaitable(result):
            await result


async def _add_variable(parent: Node, nodeid: ua.NodeId, qname: ua.QualifiedName, value: ua.Variant) -> Node:
    """A scalar variable typed BaseAnalogType (Double) or BaseDataVariableType (Boolean).

    asyncua's ``add_variable`` always uses BaseDataVariableType; analog clients look for BaseAnalogType,
    whose optional EngineeringUnits and EURange properties we add.
    """
    analog = value.VariantType is ua.VariantType.Double
    item = ua.AddNodesItem(
        ParentNodeId=parent.nodeid,
        ReferenceTypeId=ua.NodeId(ua.ObjectIds.HasComponent),
        RequestedNewNodeId=nodeid,
        BrowseName=qname,
        NodeClass=ua.NodeClass.Variable,
        TypeDefinition=ua.NodeId(
            ua.ObjectIds.BaseAnalogType if analog else ua.ObjectIds.BaseDataVariableType
        ),
    )
    attrs = ua.VariableAttributes(
        DisplayName=ua.LocalizedText(qname.Name),
        Description=ua.LocalizedText(qname.Name),
        Value=value,
        DataType=ua.NodeId(value.VariantType.value),
        ValueRank=ua.ValueRank.Scalar,
        AccessLevel=ua.AccessLevel.CurrentRead.mask,
        UserAccessLevel=ua.AccessLevel.CurrentRead.mask,
    )
    item.NodeAttributes = attrs
    (result,) = await parent.session.add_nodes([item])
    result.StatusCode.check()
    return Node(parent.session, result.AddedNodeId)


def _argument(name: str, vtype: ua.VariantType) -> ua.Argument:
    return ua.Argument(Name=name, DataType=ua.NodeId(vtype.value), ValueRank=ua.ValueRank.Scalar)


def _method_result(ok: bool, message: str) -> list[ua.Variant]:
    return [ua.Variant(ok, ua.VariantType.Boolean), ua.Variant(message, ua.VariantType.String)]


__all__ = [
    "UNECE_CODES",
    "DataChangeHandler",
    "OpcUaClient",
    "MethodHandler",
    "OpcUaServer",
    "UnitInfo",
    "Value",
    "VariableSpec",
    "WriteCallback",
    "eu_information",
    "unece_unit_id",
]
