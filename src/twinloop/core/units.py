"""Units of measure through one shared pint registry.

Asset types declare a unit per channel; readings arrive in whatever the device speaks and are
converted with `convert`, vectorized over numpy arrays.

>>> float(convert(np.array([0.0]), "degC", "K")[0])
273.15
>>> round(float(convert(np.array([60.0]), "m**3/h", "L/s")[0]), 6)
16.666667
>>> canonical_unit("rpm")
'revolutions_per_minute'
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from twinloop.core.errors import UnitError

if TYPE_CHECKING:
    import pint

_REGISTRY: pint.UnitRegistry | None = None
_REGISTRY_LOCK = threading.Lock()


def registry() -> pint.UnitRegistry:
    """The process-wide pint registry; quantities from different registries cannot be mixed.

    Built on first use (pint takes a few hundred ms to load), so a command that parses no unit
    never pays for it; the lock makes sure two threads never build two.
    """
    global _REGISTRY
    if _REGISTRY is None:
        with _REGISTRY_LOCK:
            if _REGISTRY is None:
                import pint

                reg: pint.UnitRegistry = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
                # Industrial shorthands that pint does not know out of the box.
                reg.define("percent_open = 0.01 = pct_open")
                reg.define("mm_per_s = millimeter / second")
                _REGISTRY = reg
    return _REGISTRY


@lru_cache(maxsize=1024)
def parse_unit(unit: str) -> pint.Unit:
    """Parse a unit string, or raise `UnitError` naming the unit."""
    if not isinstance(unit, str):
        raise UnitError(f"unit must be a string, got {type(unit).__name__}")
    reg = registry()
    import pint

    try:
        return reg.Unit(unit.strip() or "dimensionless")
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, ValueError,
            AttributeError, TypeError, AssertionError) as err:
        raise UnitError(
            f"unknown unit {unit!r}", hint="use a pint unit such as 'degC', 'bar', 'm**3/h', 'rpm'"
        ) from err


def is_valid_unit(unit: str) -> bool:
    """True if pint understands ``unit``."""
    try:
        parse_unit(unit)
    except UnitError:
        return False
    return True


def canonical_unit(unit: str) -> str:
    """The unit's canonical pint name, so 'rpm' and 'revolutions_per_minute' compare equal."""
    return str(parse_unit(unit))


def compatible(a: str, b: str) -> bool:
    """True if values in unit ``a`` can be converted to unit ``b``."""
    return parse_unit(a).dimensionality == parse_unit(b).dimensionality


@lru_cache(maxsize=4096)
def _affine(src: str, dst: str) -> tuple[float, float]:
    """Scale and offset with dst = scale * src + offset; every pint conversion we use is affine."""
    a, b = parse_unit(src), parse_unit(dst)
    if a.dimensionality != b.dimensionality:
        raise UnitError(
            f"cannot convert {src!r} to {dst!r}: {a.dimensionality} is not {b.dimensionality}"
        )
    q = registry().Quantity
    zero = float(q(0.0, a).to(b).magnitude)
    one = float(q(1.0, a).to(b).magnitude)
    return one - zero, zero


def convert(values: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Convert an array from unit ``src`` to unit ``dst`` in one vectorized step."""
    if src == dst:
        return np.asarray(values, dtype=np.float64)
    scale, offset = _affine(src, dst)
    return np.asarray(values, dtype=np.float64) * scale + offset


__all__ = ["canonical_unit", "compatible", "convert", "is_valid_unit", "parse_unit", "registry"]
