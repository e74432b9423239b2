"""The `Prognoser` protocol: learn from run-to-failure histories, predict RUL as a distribution.

The scikit-learn contract holds: a constructor only stores its parameters (under their own
names), everything learned ends in ``_``, and ``fit`` returns the prognoser. ``predict`` takes
the history of one unit; ``predict_fleet`` the histories of many and answers in unit order —
implementations vectorize it across the fleet.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol, Self, runtime_checkable

from twinloop.analytics.rul.distribution import RulDistribution
from twinloop.analytics.rul.trajectories import Trajectories
from twinloop.core.errors import ValidationError


@runtime_checkable
class Prognoser(Protocol):
    """Remaining useful life from histories (see the module docstring)."""

    def fit(self, train: Trajectories) -> Self:
        """Learn from run-to-failure histories whose ``rul`` column is the truth."""
        ...

    def predict(self, history: Trajectories) -> RulDistribution:
        """RUL after the last row of a one-unit history."""
        ...

    def predict_fleet(self, history: Trajectories) -> list[RulDistribution]:
        """RUL after the last row of each unit, in unit order."""
        ...


def get_params(prognoser: object) -> dict[str, Any]:
    """The constructor parameters, read back from the attributes of the same name."""
    sig = inspect.signature(type(prognoser).__init__)
    return {n: getattr(prognoser, n) for n in sig.parameters if n != "self"}


def clone(prognoser: Any) -> Any:
    """An unfitted copy with the same parameters (scikit-learn's ``clone``)."""
    return type(prognoser)(**get_params(prognoser))


def check_fitted(prognoser: object, attribute: str) -> None:
    """Raise a clear error when ``predict`` comes before ``fit``."""
    if not hasattr(prognoser, attribute):
        raise ValidationError(f"{type(prognoser).__name__} is not fitted", hint="call fit(train) first")


def one_unit(history: Trajectories) -> Trajectories:
    """``history`` itself when it holds exactly one unit, else a clear error."""
    if len(history.units) != 1:
        raise ValidationError(
            f"predict takes the history of one unit, got {len(history.units)}",
            hint="use predict_fleet for many units",
        )
    return history


def require_rul(train: Trajectories) -> None:
    if train.rul is None:
        raise ValidationError("training trajectories need the true RUL of every row (rul=...)")


__all__ = ["Prognoser", "check_fitted", "clone", "get_params", "one_unit", "require_rul"]
