"""The control server's routes over a crash registry: listing, setting rates (all or nothing), reset."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from maskgate import crashpoints
from maskgate_local.stack.control import ControlServer
from maskgate_local.stack.crashes import CrashRegistry
from maskgate_local.stack.servers import serve_in_thread


@pytest.fixture
def registry() -> CrashRegistry:
    return CrashRegistry(seed=3)


@pytest.fixture
def control(registry: CrashRegistry) -> Iterator[httpx.Client]:
    with serve_in_thread(ControlServer(registry).app) as server, httpx.Client(base_url=server.url) as client:
        yield client


def rates(listing: dict[str, dict[str, dict[str, float]]]) -> dict[str, float]:
    return {name: point["rate"] for name, point in listing["points"].items()}


def test_control_get_lists_every_point(control: httpx.Client) -> None:
    response = control.get("/crashes")

    assert response.status_code == 200
    points = response.json()["points"]
    assert set(points) == set(crashpoints.POINTS)
    assert points["api.after_job"] == {
        "description": crashpoints.POINTS["api.after_job"],
        "rate": 0.0,
        "injected": 0,
    }


def test_control_put_sets_the_rates_named_and_answers_the_listing(
    control: httpx.Client, registry: CrashRegistry
) -> None:
    response = control.put("/crashes", json={"submit.after_post": 0.5})

    assert response.status_code == 200
    assert rates(response.json()) == dict.fromkeys(crashpoints.POINTS, 0.0) | {"submit.after_post": 0.5}
    assert response.json() == registry.listing()


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b'{"submit.after_post": 0.5, "nowhere.at_all": 1}', "unknown crash points: nowhere.at_all"),
        (b'{"submit.after_post": 2}', "the rate of submit.after_post must be a number in [0, 1], not 2"),
        (b'{"submit.after_post": "high"}', 'must be a number in [0, 1], not "high"'),
        (b"[0.5]", "the body must be a JSON object"),
        (b"rate=1", "the body must be JSON"),
    ],
)
def test_control_put_refuses_a_bad_body_with_400_and_changes_nothing(
    control: httpx.Client, registry: CrashRegistry, body: bytes, complaint: str
) -> None:
    before = registry.listing()

    response = control.put("/crashes", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert complaint in response.json()["message"]
    assert registry.listing() == before


def test_control_reset_clears_rates_and_counts(control: httpx.Client, registry: CrashRegistry) -> None:
    registry.set_rates({"store.after_masks": 1.0})
    registry.draw("store.after_masks")

    response = control.post("/reset")

    assert response.status_code == 200
    assert response.json() == CrashRegistry().listing()
