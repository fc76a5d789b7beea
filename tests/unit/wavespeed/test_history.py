"""maskgate.wavespeed.client: ``list_predictions`` reads WaveSpeed's prediction history page by page; a read
is always retryable. Against ``httpx.MockTransport``, and once against the emulator."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from maskgate.contracts.prompts import parse_prompts
from maskgate.errors import UpstreamRateLimited, UpstreamRejected, UpstreamUnavailable
from maskgate.wavespeed.client import WaveSpeedClient
from maskgate.wavespeed.prediction import PAGE_SIZE
from maskgate_local.emulator.app import WaveSpeedEmulator
from maskgate_local.stack.servers import serve_in_thread
from tests.support.images import white_png_data_url

AFTER = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BEFORE = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)


def _item(n: int) -> dict[str, Any]:
    return {
        "id": f"pred_{n:04d}",
        "model": "wavespeed-ai/sam3-image",
        "outputs": [],
        "urls": {"get": f"https://api.wavespeed.ai/api/v3/predictions/pred_{n:04d}/result"},
        "status": "completed",
        "created_at": (BEFORE - timedelta(seconds=n)).isoformat().replace("+00:00", "Z"),
        "error": "",
        "timings": {"inference": 900},
    }


class History:
    """WaveSpeed's history endpoint in one function: ``total`` items, newest first, paged."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/api/v3/predictions")
        body = json.loads(request.content)
        self.bodies.append(body)
        start = (body["page"] - 1) * body["page_size"]
        items = [_item(n) for n in range(start, min(start + body["page_size"], self.total))]
        data = {"page": body["page"], "total": self.total, "items": items}
        return httpx.Response(200, json={"code": 200, "message": "success", "data": data})


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> WaveSpeedClient:
    return WaveSpeedClient(
        base_url="https://api.wavespeed.ai",
        api_key="ws-key",
        output_hosts=(),
        transport=httpx.MockTransport(handler),
    )


def _list(client: WaveSpeedClient, **kwargs: Any) -> list[str]:
    found = client.list_predictions(created_after=AFTER, created_before=BEFORE, **kwargs)
    return [p.id for p in found]


def test_wavespeed_client_list_predictions_sends_the_documented_body():
    history = History(total=1)

    _list(_client(history))

    assert history.bodies == [
        {
            "page": 1,
            "page_size": PAGE_SIZE,
            "created_after": "2026-11-25T12:00:00.000Z",
            "created_before": "2026-11-25T13:00:00.000Z",
            "model": "wavespeed-ai/sam3-image",
        }
    ]


def test_wavespeed_client_list_predictions_sends_times_in_utc():
    history = History(total=0)
    plus_two = timezone(timedelta(hours=2))

    _client(history).list_predictions(
        created_after=AFTER.astimezone(plus_two), created_before=BEFORE.astimezone(plus_two)
    )

    assert history.bodies[0]["created_after"] == "2026-11-25T12:00:00.000Z"


def test_wavespeed_client_list_predictions_without_a_model_filter_sends_none():
    history = History(total=0)

    _list(_client(history), model=None)

    assert "model" not in history.bodies[0]


def test_wavespeed_client_list_predictions_parses_items_with_their_creation_time():
    found = _client(History(total=2)).list_predictions(created_after=AFTER, created_before=BEFORE)

    assert [p.id for p in found] == ["pred_0000", "pred_0001"]
    assert found[1].created_at == BEFORE - timedelta(seconds=1)
    assert found[0].status == "completed"


def test_wavespeed_client_list_predictions_reads_pages_until_the_total():
    history = History(total=PAGE_SIZE + 5)

    ids = _list(_client(history))

    assert ids == [f"pred_{n:04d}" for n in range(PAGE_SIZE + 5)]
    assert [b["page"] for b in history.bodies] == [1, 2]


def test_wavespeed_client_list_predictions_stops_when_a_full_page_reaches_the_total():
    history = History(total=PAGE_SIZE)

    _list(_client(history))

    assert [b["page"] for b in history.bodies] == [1]


def test_wavespeed_client_list_predictions_reads_at_most_max_pages():
    history = History(total=10 * PAGE_SIZE)

    ids = _list(_client(history), max_pages=2)

    assert len(ids) == 2 * PAGE_SIZE
    assert [b["page"] for b in history.bodies] == [1, 2]


def test_wavespeed_client_list_predictions_lists_an_item_once_when_pages_shift():
    def shifted(request: httpx.Request) -> httpx.Response:
        page = json.loads(request.content)["page"]
        # a new prediction arrived between the reads: page 2 starts with page 1's last item
        start = (page - 1) * PAGE_SIZE - (page - 1)
        items = [_item(n) for n in range(start, start + PAGE_SIZE)]
        data = {"page": page, "total": 2 * PAGE_SIZE + 1, "items": items if page < 3 else items[:3]}
        return httpx.Response(200, json={"code": 200, "data": data})

    ids = _list(_client(shifted))

    assert len(ids) == len(set(ids))
    assert ids[:3] == ["pred_0000", "pred_0001", "pred_0002"]


def test_wavespeed_client_list_predictions_stops_on_a_short_page_without_a_total():
    def no_total(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"code": 200, "data": {"items": [_item(0)]}})

    assert _list(_client(no_total)) == ["pred_0000"]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, UpstreamRateLimited),
        (500, UpstreamUnavailable),
        (502, UpstreamUnavailable),
        (503, UpstreamUnavailable),
        (400, UpstreamRejected),
        (401, UpstreamRejected),
        (404, UpstreamRejected),
    ],
)
def test_wavespeed_client_list_predictions_classifies_the_status(status, error):
    answer = {"code": status, "message": "no", "data": None}

    with pytest.raises(error):
        _list(_client(lambda _: httpx.Response(status, json=answer)))


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"page": 1, "total": 1},
        {"page": 1, "total": 1, "items": None},
        {"page": 1, "total": 1, "items": "pred_1"},
        {"page": 1, "total": 1, "items": [{"id": "pred_1"}]},
        {"page": 1, "total": 2, "items": [_item(0), {**_item(1), "outputs": [3]}]},
        {"page": "one", "total": 1, "items": [_item(0)]},
    ],
)
def test_wavespeed_client_list_predictions_malformed_page_is_unavailable(data):
    with pytest.raises(UpstreamUnavailable):
        _list(_client(lambda _: httpx.Response(200, json={"code": 200, "data": data})))


@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
def test_wavespeed_client_list_predictions_transport_failure_is_retryable(error):
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(UpstreamUnavailable):
        _list(_client(fail))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"created_after": AFTER.replace(tzinfo=None), "created_before": BEFORE},
        {"created_after": BEFORE, "created_before": AFTER},
        {"created_after": AFTER, "created_before": BEFORE, "max_pages": 0},
    ],
)
def test_wavespeed_client_list_predictions_refuses_a_meaningless_window(kwargs):
    with pytest.raises(ValueError):
        _client(History(total=0)).list_predictions(**kwargs)


# --- against the emulator ------------------------------------------------------------------------


@pytest.fixture
def emulator_url() -> Iterator[tuple[WaveSpeedEmulator, str]]:
    emulator = WaveSpeedEmulator(api_key="ws-key", latency_s=(0.0, 0.0))
    with serve_in_thread(emulator.app) as running:
        yield emulator, running.url
    emulator.close()


def test_wavespeed_client_list_predictions_reads_the_emulators_history(emulator_url):
    _, url = emulator_url
    started = datetime.now(UTC) - timedelta(seconds=1)  # the wire carries milliseconds only

    with closing(WaveSpeedClient(base_url=url, api_key="ws-key", output_hosts=(), local=True)) as client:
        submitted = [
            client.submit(parse_prompts({"prompt": "x"}), image_url=white_png_data_url((8, 8))).id
            for _ in range(3)
        ]
        ended = datetime.now(UTC) + timedelta(seconds=1)

        found = client.list_predictions(created_after=started, created_before=ended)
        later = client.list_predictions(created_after=ended, created_before=ended + timedelta(minutes=1))

    assert [p.id for p in found] == submitted[::-1]
    assert all(p.created_at is not None and started <= p.created_at <= ended for p in found)
    assert later == []
