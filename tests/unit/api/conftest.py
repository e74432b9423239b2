import pytest
from fastapi.testclient import TestClient

from twinloop.api.app import create_app
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path


@pytest.fixture
def rt():
    settings = load_settings(store_url="memory://", plant=example_plant_path())
    with Runtime.open(settings, bootstrap=True) as runtime:
        yield runtime


@pytest.fixture
def client(rt):
    with TestClient(create_app(rt), raise_server_exceptions=False) as c:
        yield c


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(rt):
    return _auth(rt.bootstrap_token)


@pytest.fixture
def as_role(rt):
    def make(role: str) -> dict[str, str]:
        _, token = rt.keys.create(f"test-{role}", role)
        return _auth(token)

    return make
