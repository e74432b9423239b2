import pytest

from twinloop.core.commands import (
    AddRelationship,
    CreateTwin,
    DeleteTwin,
    InvokeCommand,
    RemoveRelationship,
    UpdateTwin,
)
from twinloop.core.errors import ConflictError, NotFoundError, RevisionConflict, ValidationError

PUMP_ATTRS = {"manufacturer": "KSB", "model": "Etanorm", "serial": "X-1", "rated_flow": 100.0,
              "rated_head": 40.0, "line": "A"}


def kinds(rt, twin_id):
    return [r.event.kind for r in rt.store.events(twin_id=twin_id)]


def test_example_plant_is_seeded_once_with_its_graph(rt):
    assert len(rt.twins.list("Pump")) == 12
    assert [t.id for t in rt.twins.list("Pump", {"line": "B"})] == [f"pump-B{i}" for i in range(1, 5)]
    assert rt.twins.graph.relationships(source="pump-A1", name="partOf")
    assert rt.store.get_meta("seeded")


def test_create_validates_against_the_asset_type(rt):
    with pytest.raises(ValidationError, match="colour"):
        rt.twins.create(CreateTwin(twin_id="pump-X", type_id="Pump",
                                   attributes={**PUMP_ATTRS, "colour": "red"}), actor="t")
    with pytest.raises(NotFoundError):
        rt.twins.create(CreateTwin(twin_id="x1", type_id="NoSuchType"), actor="t")
    with pytest.raises(ValidationError):
        rt.twins.create(CreateTwin(twin_id="bad id", type_id="Pump", attributes=PUMP_ATTRS),
                        actor="t")
    twin = rt.twins.create(CreateTwin(twin_id="pump-X", type_id="Pump", attributes=PUMP_ATTRS),
                           actor="tester")
    assert twin.revision == 1 and rt.twins.get("pump-X") == twin
    with pytest.raises(ConflictError):
        rt.twins.create(CreateTwin(twin_id="pump-X", type_id="Pump", attributes=PUMP_ATTRS),
                        actor="t")
    assert kinds(rt, "pump-X") == ["TwinCreated"]
    assert rt.store.audit(actor="tester")[-1].action == "twin.create"


def test_update_bumps_revision_records_changes_and_checks_revision(rt):
    before = rt.twins.get("pump-A1")
    after = rt.twins.update(UpdateTwin(twin_id="pump-A1", expected_revision=before.revision,
                                       desired={"speed_setpoint": 1450}), actor="op")
    assert after.revision == before.revision + 1 and after.desired["speed_setpoint"] == 1450
    with pytest.raises(RevisionConflict) as err:
        rt.twins.update(UpdateTwin(twin_id="pump-A1", expected_revision=before.revision,
                                   desired={"speed_setpoint": 1000}), actor="op")
    assert err.value.actual == after.revision
    with pytest.raises(ValidationError, match="speed_setpoint"):
        rt.twins.update(UpdateTwin(twin_id="pump-A1", desired={"speed_setpoint": 99_999}),
                        actor="op")
    # an update that changes nothing creates no revision
    same = rt.twins.update(UpdateTwin(twin_id="pump-A1", desired={"speed_setpoint": 1450}),
                           actor="op")
    assert same.revision == after.revision
    last = rt.store.events(twin_id="pump-A1")[-1].event
    assert last.kind == "TwinUpdated" and last.changes == {"desired": ["speed_setpoint"]}
    assert rt.twins.get("pump-A1", revision=before.revision).desired == before.desired


def test_delete_removes_twin_and_its_relationships(rt):
    assert rt.twins.graph.relationships(target="pump-A1")
    rt.twins.delete(DeleteTwin(twin_id="pump-A1"), actor="eng")
    assert "pump-A1" not in rt.twins.graph
    assert not rt.store.list_relationships(target="pump-A1")
    assert not rt.twins.graph.relationships(source="pump-A1")
    with pytest.raises(NotFoundError):
        rt.twins.get("pump-A1")
    assert kinds(rt, "pump-A1")[-1] == "TwinDeleted"


def test_relationships_must_be_declared_by_the_source_type(rt):
    with pytest.raises(ValidationError, match="declares no relationship"):
        rt.twins.add_relationship(AddRelationship(twin_id="pump-A1", name="likes",
                                                  target="pump-A2"), actor="e")
    with pytest.raises(ValidationError, match="must point at"):
        rt.twins.add_relationship(AddRelationship(twin_id="pump-A1", name="partOf",
                                                  target="tank-A"), actor="e")
    rt.twins.remove_relationship(RemoveRelationship(twin_id="pump-A1", name="partOf",
                                                    target="line-A"), actor="e")
    assert not rt.twins.graph.relationships(source="pump-A1", name="partOf")
    rt.twins.add_relationship(AddRelationship(twin_id="pump-A1", name="partOf",
                                              target="line-B"), actor="e")
    assert [r.target for r in rt.store.list_relationships(source="pump-A1", name="partOf")] == [
        "line-B"
    ]


def test_commands_are_checked_against_declared_limits(rt):
    with pytest.raises(ValidationError, match="3000"):
        rt.twins.invoke(InvokeCommand(twin_id="pump-A1", name="setSpeed", args={"rpm": 5000}),
                        actor="op")
    with pytest.raises((ValidationError, NotFoundError)):
        rt.twins.invoke(InvokeCommand(twin_id="pump-A1", name="selfDestruct"), actor="op")
    sent = rt.twins.invoke(InvokeCommand(twin_id="pump-A1", name="setSpeed", args={"rpm": 1200}),
                           actor="op")
    assert sent.args["rpm"] == 1200 and kinds(rt, "pump-A1")[-1] == "CommandSent"


def test_impact_of_a_power_supply_reaches_its_pumps(rt):
    hit = {r.id for r in rt.twins.graph.impact("mcc-2")}
    assert {"pump-C1", "pump-C2", "pump-C3", "pump-C4"} <= hit
    assert not {"pump-A1", "pump-B1"} & hit
