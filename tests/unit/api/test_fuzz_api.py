"""Whatever a client sends, the API answers with a status below 500 and a JSON message."""

from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

GETS = [
    "/twins/{x}", "/twins/{x}/state", "/twins/{x}/history", "/twins/{x}/revisions",
    "/graph/{x}/downstream", "/graph/{x}/impact", "/graph/{x}/neighbours", "/types/{x}",
]
QUERY_KEYS = ["type", "where", "limit", "offset", "start", "end", "bucket", "channel", "name",
              "direction", "max_depth", "after", "kind", "revision"]
junk = st.text(min_size=0, max_size=30)
path_part = st.text(max_size=30).map(lambda s: quote(s, safe=""))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(GETS), x=path_part,
       query=st.dictionaries(st.sampled_from(QUERY_KEYS), junk, max_size=4))
def test_get_routes_never_fail_with_5xx(client, admin, path, x, query):
    r = client.get(path.format(x=x or "pump-A1"), params=query, headers=admin)
    assert r.status_code < 500, (path, x, query, r.text)
    if r.status_code >= 400:
        assert r.json()["message"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | junk,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(junk, inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["id", "type_id", "attributes", "reported", "desired",
                                             "expected_revision", "args", "name", "target"]),
                            json_values, max_size=5),
       route=st.sampled_from([("post", "/twins"), ("patch", "/twins/pump-A1"),
                              ("patch", "/twins/pump-A1/desired"),
                              ("post", "/twins/pump-A1/commands/setSpeed"),
                              ("put", "/twins/pump-A1/relationships")]))
def test_write_routes_never_fail_with_5xx(client, admin, body, route):
    method, path = route
    r = client.request(method, path, json=body, headers=admin)
    assert r.status_code < 500, (route, body, r.text)
