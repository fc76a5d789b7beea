"""The emulator's prediction history, ``POST /api/v3/predictions``, as WaveSpeed documents it: auth,
required paging fields, filters, newest first, the past 7 days only (its app on a free loopback port)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from maskgate_local.emulator.app import WaveSpeedEmulator
from maskgate_local.emulator.models import Faults
from maskgate_local.stack.servers import serve_in_thread
from tests.support.fakes import Clock
from tests.support.images import white_png_data_url
from tests.support.waiting import eventually

API_KEY = "ws-test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
HISTORY = "/api/v3/predictions"
SUBMIT = "/api/v3/wavespeed-ai/sam3-image"
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


CLOCK = Clock(T0)  # the emulator's wall clock, moved by the test


@pytest.fixture(scope="module")
def emulator() -> Iterator[WaveSpeedEmulator]:
    emulator = WaveSpeedEmulator(api_key=API_KEY, latency_s=(0.0, 0.0), seed=3, clock=CLOCK)
    yield emulator
    emulator.close()


@pytest.fixture(scope="module")
def base_url(emulator: WaveSpeedEmulator) -> Iterator[str]:
    with serve_in_thread(emulator.app) as running:
        yield running.url


@pytest.fixture
def clock(emulator: WaveSpeedEmulator) -> Clock[datetime]:
    emulator.reset()
    CLOCK.now = T0
    return CLOCK


@pytest.fixture
def client(base_url: str, clock: Clock[datetime]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def _submit(client: httpx.Client, clock: Clock[datetime], at: datetime) -> str:
    clock.now = at
    response = client.post(SUBMIT, json={"image": white_png_data_url((16, 12)), "prompt": "x"}, headers=AUTH)
    assert response.status_code == 200, response.text
    prediction_id: str = response.json()["data"]["id"]
    return prediction_id


def _settled(emulator: WaveSpeedEmulator, ids: list[str], status: str) -> None:
    eventually(lambda: all((emulator.prediction(i) or {}).get("status") == status for i in ids))


def _history(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post(HISTORY, json={"page": 1, "page_size": 100, **body}, headers=AUTH)
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert (envelope["code"], envelope["message"]) == (200, "success")
    data: dict[str, Any] = envelope["data"]
    return data


def _ids(data: dict[str, Any]) -> list[str]:
    return [item["id"] for item in data["items"]]


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key"])
def test_emulator_history_refuses_a_missing_or_wrong_key(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    response = client.post(HISTORY, json={"page": 1, "page_size": 10}, headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] == 401


@pytest.mark.parametrize(
    "body",
    [
        {"page_size": 10},
        {"page": 1},
        {},
        {"page": 0, "page_size": 10},
        {"page": 1, "page_size": 0},
        {"page": 1, "page_size": 101},
        {"page": "1", "page_size": 10},
        {"page": True, "page_size": 10},
        {"page": 1.5, "page_size": 10},
        {"page": 1, "page_size": 10, "status": "created"},
        {"page": 1, "page_size": 10, "created_after": "yesterday"},
        {"page": 1, "page_size": 10, "created_before": 1764072000},
        [1, 10],
    ],
)
def test_emulator_history_400_for_a_missing_or_invalid_field(client, body):
    response = client.post(HISTORY, json=body, headers=AUTH)

    assert response.status_code == 400
    assert response.json()["code"] == 400
    assert response.json()["data"] is None


def test_emulator_history_400_for_a_body_that_is_not_json(client):
    response = client.post(HISTORY, content=b"page=1", headers=AUTH)

    assert response.status_code == 400


def test_emulator_history_lists_newest_first_with_the_documented_item_shape(client, clock, emulator):
    ids = [_submit(client, clock, T0 + timedelta(minutes=m)) for m in (1, 3, 2)]
    _settled(emulator, ids, "completed")

    data = _history(client)

    assert (data["page"], data["total"]) == (1, 3)
    assert _ids(data) == [ids[1], ids[2], ids[0]]
    item = data["items"][0]
    assert {"id", "model", "outputs", "urls", "status", "created_at", "error", "timings"} <= item.keys()
    assert "input" not in item and "webhook" not in item
    assert item["created_at"] == "2026-11-25T12:03:00.000Z"
    assert item["model"] == "wavespeed-ai/sam3-image"


def test_emulator_history_a_tie_lists_the_later_submission_first(client, clock):
    first, second = (_submit(client, clock, T0) for _ in range(2))

    assert _ids(_history(client)) == [second, first]


def test_emulator_history_pages_by_page_and_page_size(client, clock):
    ids = [_submit(client, clock, T0 + timedelta(seconds=s)) for s in range(5)]
    newest_first = ids[::-1]

    pages = [_history(client, page=n, page_size=2) for n in (1, 2, 3, 4)]

    assert [_ids(p) for p in pages] == [newest_first[0:2], newest_first[2:4], newest_first[4:], []]
    assert {p["total"] for p in pages} == {5}
    assert [p["page"] for p in pages] == [1, 2, 3, 4]


def test_emulator_history_filters_by_model(client, clock):
    made = _submit(client, clock, T0)

    assert _ids(_history(client, model="wavespeed-ai/sam3-image")) == [made]
    assert _history(client, model="wavespeed-ai/flux-dev") == {"page": 1, "total": 0, "items": []}


def test_emulator_history_filters_by_status(client, clock, emulator):
    done = _submit(client, clock, T0)
    _settled(emulator, [done], "completed")
    emulator.set_faults(Faults(latency_s=(0.0, 0.0), prediction_failed=1.0))
    failed = _submit(client, clock, T0)
    _settled(emulator, [failed], "failed")
    emulator.set_faults(Faults(latency_s=(0.0, 0.0), stuck=1.0))
    stuck = _submit(client, clock, T0)
    _settled(emulator, [stuck], "processing")

    assert _ids(_history(client, status="completed")) == [done]
    assert _ids(_history(client, status="failed")) == [failed]
    assert _ids(_history(client, status="processing")) == [stuck]
    assert _ids(_history(client)) == [stuck, failed, done]


def test_emulator_history_filters_by_creation_time_bounds_inclusive(client, clock):
    ids = [_submit(client, clock, T0 + timedelta(minutes=m)) for m in range(4)]
    window = {"created_after": "2026-11-25T12:01:00Z", "created_before": "2026-11-25T12:02:00.000+00:00"}

    assert _ids(_history(client, **window)) == [ids[2], ids[1]]
    assert _ids(_history(client, created_after="2026-11-25T12:02:30Z")) == [ids[3]]
    assert _ids(_history(client, created_before="2026-11-25T12:00:59Z")) == [ids[0]]


def test_emulator_history_a_time_without_offset_is_utc(client, clock):
    made = _submit(client, clock, T0)

    assert _ids(_history(client, created_after="2026-11-25T12:00:00")) == [made]
    assert _ids(_history(client, created_after="2026-11-25T12:00:01")) == []


def test_emulator_history_reaches_back_7_days_only(client, clock):
    old = _submit(client, clock, T0)
    recent = _submit(client, clock, T0 + timedelta(days=1))

    clock.now = T0 + timedelta(days=7)
    assert _ids(_history(client)) == [recent, old]
    clock.now = T0 + timedelta(days=7, seconds=1)
    assert _ids(_history(client)) == [recent]
    assert _history(client, created_after="2026-11-01T00:00:00Z")["total"] == 1


def test_emulator_history_result_still_reads_a_listed_prediction(client, clock):
    made = _submit(client, clock, T0)

    response = client.get(f"/api/v3/predictions/{made}/result", headers=AUTH)

    assert response.json()["data"]["created_at"] == "2026-11-25T12:00:00.000Z"
