"""An asset type's alerts declaration: read with clear errors when it is wrong."""

import pytest

from twinloop.analytics.alert_spec import AlertSpec
from twinloop.core.errors import ValidationError


def test_a_declaration_gives_detector_gate_learning_period_grid_and_threshold():
    spec = AlertSpec.parse({"detector": "pca", "operating": "airflow > 1000 for 30m", "learn": "1d",
                            "period": "1m", "threshold": {"quantile": 0.999}})
    assert spec.detector == {"detector": "pca"}
    assert (spec.gate.channel, spec.gate.above, spec.gate.settle_s) == ("airflow", 1000.0, 1800.0)
    assert (spec.learn_s, spec.period_s, spec.threshold) == (86400.0, 60.0, {"quantile": 0.999})


def test_an_empty_declaration_takes_the_defaults_and_is_never_gated():
    spec = AlertSpec.parse({})
    assert spec.gate is None and spec.detector is None and spec.learn_s == 7200.0


@pytest.mark.parametrize("section, says", [
    ({"learn": "soon"}, "duration"),
    ({"learn": "5m", "period": "1m"}, "20 periods"),
    ({"operating": "when it runs"}, "operating condition"),
    ({"thresold": {}}, "unknown keys"),
])
def test_a_wrong_declaration_says_what_is_wrong(section, says):
    with pytest.raises(ValidationError) as err:
        AlertSpec.parse(section, "Pump.analytics.alerts")
    assert says in str(err.value) + str(getattr(err.value, "hint", ""))
