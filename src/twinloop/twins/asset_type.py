"""Asset types: the declaration of a kind of asset, and the checks the runtime runs against it.

An asset type says what a twin of that kind measures (channels), knows (attributes), reports and
accepts (properties), obeys (commands), connects to (relationships) and is made of (components).
The runtime calls the ``validate_*`` methods before it changes a twin, so a bad value is refused
with a message that names the member and what is allowed.

>>> pump = AssetType.model_validate({
...     "id": "Pump",
...     "channels": [{"name": "speed", "unit": "rpm", "min": 0, "max": 3000}],
...     "commands": [{"name": "setSpeed",
...                   "args": [{"name": "rpm", "unit": "rpm", "min": 0, "max": 3000}]}],
... })
>>> pump.dtmi
'dtmi:twinloop:Pump;1'
>>> pump.validate_command("setSpeed", {"rpm": 1450})
{'rpm': 1450.0}
>>> pump.validate_command("setSpeed", {"rpm": 3500})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
twinloop.core.errors.ValidationError: Pump.setSpeed: argument 'rpm': 3500 is above the maximum 3000 rpm ...
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from twinloop.core.errors import NotFoundError, UnitError, ValidationError
from twinloop.core.ids import validate_id
from twinloop.core.units import parse_unit

NAME_PATTERN = re.compile(r"^[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?$")
DTMI_PATTERN = re.compile(
    r"^dtmi:[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?(?::[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?)*"
    r"(?:;[1-9][0-9]{0,8}(?:\.[0-9]{1,6})?)?$"
)
NUMERIC_TYPES = frozenset({"double", "float", "integer", "long"})
INTEGER_TYPES = frozenset({"integer", "long"})

ChannelType = Literal["double", "float", "integer", "long", "boolean"]
ScalarType = Literal[
    "double", "float", "integer", "long", "boolean", "string", "date", "dateTime", "time",
    "duration",
]
ArgType = Literal[
    "double", "float", "integer", "long", "boolean", "string", "date", "dateTime", "time",
    "duration", "enum",
]
ValueType = Literal[
    "double", "float", "integer", "long", "boolean", "string", "date", "dateTime", "time",
    "duration", "enum", "array", "map",
]


def _name(value: str) -> str:
    if len(value) > 64 or not NAME_PATTERN.match(value):
        raise ValueError(
            f"invalid name {value!r}: use 1-64 letters, digits and '_', starting with a letter "
            "and not ending with '_'"
        )
    return value


def _type_id(value: str) -> str:
    try:
        return validate_id(value, what="type id")
    except ValidationError as err:
        raise ValueError(err.message) from None


def _dtmi(value: str) -> str:
    if value and not DTMI_PATTERN.match(value):
        raise ValueError(
            f"invalid dtmi {value!r}: use 'dtmi:<segment>(:<segment>)*;<version>', "
            "e.g. 'dtmi:acme:Pump;1'"
        )
    return value


def _unit(value: str) -> str:
    try:
        parse_unit(value)
    except UnitError as err:
        raise ValueError(str(err)) from None
    return value


Name = Annotated[str, AfterValidator(_name)]
TypeId = Annotated[str, AfterValidator(_type_id)]


def default_dtmi(type_id: str) -> str:
    """The dtmi a type gets when it declares none: ``dtmi:twinloop:<id>;1``, made DTDL-safe.

    >>> default_dtmi("Pump"), default_dtmi("acme:Pump"), default_dtmi("pump-2")
    ('dtmi:twinloop:Pump;1', 'dtmi:twinloop:acme:Pump;1', 'dtmi:twinloop:pump_2;1')
    """
    segments = []
    for seg in type_id.split(":"):
        seg = re.sub(r"[^A-Za-z0-9_]", "_", seg)
        if not seg[:1].isalpha():
            seg = "t" + seg
        segments.append(seg + "0" if seg.endswith("_") else seg)
    return f"dtmi:twinloop:{':'.join(segments)};1"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _fmt(x: float) -> str:
    return f"{x:g}"


class _Value(_Model):
    """A named, typed value with optional unit and valid range; checks values against itself."""

    name: Name
    type: ValueType = "double"
    unit: Annotated[str, AfterValidator(_unit)] | None = None
    min: float | None = None
    max: float | None = None
    values: tuple[str | int, ...] | None = None
    items: ScalarType | None = None
    display_name: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> _Value:
        numeric = self.type in NUMERIC_TYPES
        # Messages start with the key they concern; the loader moves it into the error's path.
        if self.unit is not None and not numeric and self.items not in NUMERIC_TYPES:
            raise ValueError(f"unit: {self.unit!r} needs a numeric type, not {self.type!r}")
        if self.min is not None and not numeric:
            raise ValueError(f"min: needs a numeric type, not {self.type!r}")
        if self.max is not None and not numeric:
            raise ValueError(f"max: needs a numeric type, not {self.type!r}")
        if self.min is not None and self.max is not None and not self.min < self.max:
            raise ValueError(f"max: min ({_fmt(self.min)}) must be less than max "
                             f"({_fmt(self.max)})")
        if (self.type == "enum") != (self.values is not None):
            raise ValueError("values: a list of 'values' is required for type enum "
                             "and allowed only there")
        if self.values is not None:
            kinds = {type(v) for v in self.values}
            if not self.values or len(kinds) != 1 or len(set(self.values)) != len(self.values):
                raise ValueError("values: enum values must be a non-empty list of unique "
                                 "strings, or of unique integers")
        if (self.type in ("array", "map")) != (self.items is not None):
            raise ValueError("items: the element type is required for array and map types "
                             "and allowed only there")
        return self

    def _unit_suffix(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def allowed(self) -> str:
        """What values are allowed, in words, for error messages."""
        if self.type == "enum":
            return "one of " + ", ".join(repr(v) for v in self.values or ())
        if self.type in ("array", "map"):
            return f"a {'list' if self.type == 'array' else 'mapping'} of {self.items}"
        lo, hi, u = self.min, self.max, self._unit_suffix()
        if lo is not None and hi is not None:
            return f"{self.type} from {_fmt(lo)} to {_fmt(hi)}{u}"
        if lo is not None:
            return f"{self.type} >= {_fmt(lo)}{u}"
        if hi is not None:
            return f"{self.type} <= {_fmt(hi)}{u}"
        return f"{self.type}{u}".strip()

    def check(self, value: Any) -> Any:
        """The value normalized to this declaration (ints for integer, ISO strings for dates).

        Raises `ValidationError` saying what is wrong and what is allowed.
        """
        if self.type == "array":
            if not isinstance(value, list | tuple):
                raise ValidationError(f"expected a list of {self.items}, got {value!r}")
            return [_scalar(self.items or "string", v) for v in value]
        if self.type == "map":
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise ValidationError(f"expected a mapping of {self.items}, got {value!r}")
            return {k: _scalar(self.items or "string", v) for k, v in value.items()}
        if self.type == "enum":
            if isinstance(value, bool) or value not in (self.values or ()):
                raise ValidationError(f"{value!r} is not allowed ({self.allowed()})")
            return value
        given, value = value, _scalar(self.type, value)
        u = self._unit_suffix()
        if self.min is not None and value < self.min:
            raise ValidationError(f"{given!r} is below the minimum {_fmt(self.min)}{u} "
                                  f"(allowed {self._range()})")
        if self.max is not None and value > self.max:
            raise ValidationError(f"{given!r} is above the maximum {_fmt(self.max)}{u} "
                                  f"(allowed {self._range()})")
        return value

    def _range(self) -> str:
        lo = "-inf" if self.min is None else _fmt(self.min)
        hi = "inf" if self.max is None else _fmt(self.max)
        return f"{lo} to {hi}{self._unit_suffix()}"


def _scalar(kind: str, value: Any) -> Any:
    """Coerce one scalar to ``kind`` without surprises: no bool-as-number, no string parsing."""
    if kind == "boolean":
        if isinstance(value, bool):
            return value
    elif kind in INTEGER_TYPES:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind in NUMERIC_TYPES:
        if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
            return float(value)
    elif kind == "date":
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value.isoformat()
        if isinstance(value, str) and _parses(dt.date.fromisoformat, value):
            return value
    elif kind == "dateTime":
        if isinstance(value, dt.datetime):
            return value.isoformat()
        if isinstance(value, str) and _parses(dt.datetime.fromisoformat, value):
            return value
    elif kind == "time":
        if isinstance(value, dt.time):
            return value.isoformat()
        if isinstance(value, str) and _parses(dt.time.fromisoformat, value):
            return value
    elif isinstance(value, str):  # string, duration (ISO 8601, not parsed further)
        return value
    article = "an" if kind[0] in "aeiou" else "a"
    raise ValidationError(f"expected {article} {kind}, got {value!r}")


def _parses(parse: Any, text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


class Channel(_Value):
    """One measured quantity: unit, valid range and how often readings are expected."""

    type: ChannelType = "double"
    expected_rate_hz: float | None = Field(default=None, gt=0)
    expected_period_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_rate(self) -> Channel:
        if self.expected_rate_hz is not None and self.expected_period_s is not None:
            raise ValueError("expected_period_s: give expected_rate_hz or expected_period_s, "
                             "not both")
        return self

    @property
    def rate_hz(self) -> float | None:
        """Expected readings per second, whichever way it was declared."""
        if self.expected_period_s is not None:
            return 1.0 / self.expected_period_s
        return self.expected_rate_hz


class Attribute(_Value):
    """A static fact about one asset (serial number, rated power); set once, rarely changed."""

    type: ValueType = "string"
    required: bool = False
    default: Any = None

    @model_validator(mode="before")
    @classmethod
    def _numeric_if_unit(cls, data: Any) -> Any:
        # Attributes default to string, but one with a unit or range is plainly a number.
        if isinstance(data, dict) and "type" not in data and (
            data.keys() & {"unit", "min", "max"}
        ):
            return {**data, "type": "double"}
        return data

    @model_validator(mode="after")
    def _default_fits(self) -> Attribute:
        if self.default is not None:
            try:
                # Normalized in place (dates → ISO text) so the type stays JSON-ready.
                self.__dict__["default"] = self.check(self.default)
            except ValidationError as err:
                raise ValueError(f"default: {err.message}") from None
        return self


class Property(_Value):
    """A reported property; ``writable`` ones may also be desired (setpoints)."""

    writable: bool = False


class Arg(_Value):
    """One argument of a command."""

    type: ArgType = "double"
    required: bool = True
    default: Any = None

    @model_validator(mode="after")
    def _default_fits(self) -> Arg:
        if self.default is not None:
            try:
                self.__dict__["default"] = self.check(self.default)
            except ValidationError as err:
                raise ValueError(f"default: {err.message}") from None
        return self


class Response(_Value):
    """What a command answers with."""

    name: Name = "result"
    type: ArgType = "double"


class Command(_Model):
    """An imperative message to the asset (``setSpeed``), with typed, limited arguments."""

    name: Name
    args: tuple[Arg, ...] = ()
    response: Response | None = None
    display_name: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _unique_args(self) -> Command:
        _unique("args", (a.name for a in self.args))
        return self


class Relationship(_Model):
    """A kind of directed edge a twin of this type may have (``feeds``, ``partOf``)."""

    name: Name
    target: TypeId | None = None
    max_multiplicity: int | None = Field(default=None, ge=1)
    properties: tuple[Property, ...] = ()
    display_name: str | None = None
    description: str | None = None


def _unique(key: str, names: Iterable[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            where = f"{key}: " if key else ""
            raise ValueError(f"{where}duplicate name {n!r}: channels, attributes, properties, "
                             "commands, relationships, components and args share one namespace")
        seen.add(n)


ANALYTICS_KEYS = ("estimator", "alerts", "prognoser")


class Analytics(_Model):
    """How the live loop watches twins of a type, declared beside the type (or in the plant file).

    Each section is a mapping read by its own service (``estimator`` by live estimation,
    ``alerts`` by the alert monitor, ``prognoser`` by RUL); ``None`` means "not declared here"
    (a type inherits the section from the nearest type it extends), ``{}`` explicitly declares
    the section with its defaults and ``{"enabled": false}`` switches it off for the type.
    DTDL has no place for these (and caps comments at 512 characters): they are not exported.
    """

    estimator: dict[str, Any] | None = None
    alerts: dict[str, Any] | None = None
    prognoser: dict[str, Any] | None = None

    def section(self, key: str) -> dict[str, Any] | None:
        if key not in ANALYTICS_KEYS:
            raise KeyError(f"unknown analytics section {key!r}; known: {', '.join(ANALYTICS_KEYS)}")
        value: dict[str, Any] | None = getattr(self, key)
        return value

    def merged(self, over: Analytics) -> Analytics:
        """This declaration with ``over``'s sections on top (the plant file over the type file)."""
        return Analytics(**{k: over.section(k) if over.section(k) is not None else self.section(k)
                            for k in ANALYTICS_KEYS})


class AssetType(_Model):
    """The declaration of a kind of asset (DTDL calls it an interface)."""

    id: TypeId
    dtmi: Annotated[str, AfterValidator(_dtmi)] = ""
    display_name: str | None = None
    description: str | None = None
    extends: tuple[TypeId, ...] = ()
    channels: tuple[Channel, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    properties: tuple[Property, ...] = ()
    commands: tuple[Command, ...] = ()
    relationships: tuple[Relationship, ...] = ()
    components: dict[Name, TypeId] = Field(default_factory=dict)
    analytics: Analytics = Field(default_factory=Analytics)

    @model_validator(mode="before")
    @classmethod
    def _fill_dtmi(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("dtmi") and isinstance(data.get("id"), str):
            if _id_ok(data["id"]):
                return {**data, "dtmi": default_dtmi(data["id"])}
        return data

    @model_validator(mode="after")
    def _unique_names(self) -> AssetType:
        # DTDL requires one namespace for all contents; so do we, so a name means one thing.
        _unique("", [*self.member_names(), *self.components])
        return self

    def member_names(self) -> list[str]:
        """Names of channels, attributes, properties, commands and relationships, in order."""
        groups: tuple[tuple[Any, ...], ...] = (
            self.channels, self.attributes, self.properties, self.commands, self.relationships
        )
        return [m.name for group in groups for m in group]

    def channel(self, name: str) -> Channel:
        """The channel called ``name``, or `NotFoundError` listing the channels there are."""
        for c in self.channels:
            if c.name == name:
                return c
        raise NotFoundError(
            f"asset type {self.id!r} has no channel {name!r}",
            hint="channels: " + (", ".join(c.name for c in self.channels) or "none"),
        )

    def command(self, name: str) -> Command:
        """The command called ``name``, or `NotFoundError` listing the commands there are."""
        for c in self.commands:
            if c.name == name:
                return c
        raise NotFoundError(
            f"asset type {self.id!r} has no command {name!r}",
            hint="commands: " + (", ".join(c.name for c in self.commands) or "none"),
        )

    def validate_attributes(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Attributes of a new twin, checked and with defaults filled in."""
        specs = {a.name: a for a in self.attributes}
        out, problems = _check_all(values, specs, "attribute")
        _fill_defaults(values, self.attributes, out, problems, "attribute")
        _raise(self.id, problems)
        return out

    def validate_desired(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Desired property values (setpoints): only writable properties; ``None`` clears one."""
        specs = {p.name: p for p in self.properties if p.writable}
        problems: list[str] = []
        for name in values if isinstance(values, Mapping) else ():
            prop = next((p for p in self.properties if p.name == name), None)
            if prop is not None and not prop.writable:
                problems.append(f"property {name!r} is reported only, it cannot be desired")
        if problems:
            writable = ", ".join(specs) or "none"
            _raise(self.id, problems, hint=f"writable properties: {writable}")
        out, problems = _check_all(values, specs, "writable property")
        _raise(self.id, problems)
        return out

    def validate_reported(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Reported values: known properties or channels, each checked; ``None`` clears one."""
        specs: dict[str, _Value] = {c.name: c for c in self.channels}
        specs.update({p.name: p for p in self.properties})
        out, problems = _check_all(values, specs, "property or channel")
        _raise(self.id, problems)
        return out

    def validate_command(self, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Arguments of a command, checked against the declared schema and limits."""
        cmd = next((c for c in self.commands if c.name == name), None)
        if cmd is None:
            raise ValidationError(
                f"{self.id}: unknown command {name!r}",
                hint="commands: " + (", ".join(c.name for c in self.commands) or "none"),
            )
        specs = {a.name: a for a in cmd.args}
        out, problems = _check_all(args, specs, "argument")
        _fill_defaults(args, cmd.args, out, problems, "argument")
        _raise(f"{self.id}.{name}", problems)
        return out


def _id_ok(value: str) -> bool:
    """True if ``value`` is a valid type id (checked before pydantic gets to it)."""
    try:
        validate_id(value)
    except ValidationError:
        return False
    return True


def _check_all(
    values: Mapping[str, Any], specs: Mapping[str, _Value], what: str
) -> tuple[dict[str, Any], list[str]]:
    if not isinstance(values, Mapping):
        return {}, [f"expected a mapping of {what} names to values, got {values!r}"]
    out: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in values.items():
        spec = specs.get(key)
        if spec is None:
            known = ", ".join(specs) or "none"
            problems.append(f"unknown {what} {key!r} (known: {known})")
        elif value is None:
            out[key] = None
        else:
            try:
                out[key] = spec.check(value)
            except ValidationError as err:
                problems.append(f"{what.split()[-1]} {key!r}: {err.message}")
    return out, problems


def _fill_defaults(
    values: Mapping[str, Any], specs: Iterable[Attribute | Arg], out: dict[str, Any],
    problems: list[str], what: str,
) -> None:
    """Defaults for what was left out (or given as None); missing required ones are problems."""
    if not isinstance(values, Mapping):
        return
    for spec in specs:
        if values.get(spec.name) is not None:
            continue
        out.pop(spec.name, None)
        if spec.default is not None:
            out[spec.name] = spec.default
        elif spec.required:
            problems.append(f"{what} {spec.name!r} is required ({spec.allowed()})")


def _raise(where: str, problems: list[str], *, hint: str | None = None) -> None:
    if problems:
        raise ValidationError(f"{where}: " + "; ".join(problems), hint=hint)


__all__ = [
    "ANALYTICS_KEYS",
    "Analytics",
    "Arg",
    "AssetType",
    "Attribute",
    "Channel",
    "Command",
    "DTMI_PATTERN",
    "NAME_PATTERN",
    "Property",
    "Relationship",
    "Response",
    "default_dtmi",
]
