"""The WaveSpeed emulator speaks WaveSpeed's documented API, draws real masks and injects faults."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from maskgate_local.emulator.app import WaveSpeedEmulator
from maskgate_local.stack.servers import RunningServer, serve_in_thread
from tests.support.waiting import eventually

API_KEY = "ws-test-key"
SECRET = "whsec_c2VjcmV0LWZvci10aGUtZW11bGF0b3I"
SUBMIT = "/api/v3/wavespeed-ai/sam3-image"
WHITE, RED, BLUE = (255, 255, 255), (220, 30, 30), (30, 30, 220)
SIZE = (64, 48)
DISC_CENTRE, DISC_RADIUS = (20, 24), 10


class Peer:
    """The outside world on loopback: a webhook receiver and an image host with presigned-style URLs."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.images: dict[str, bytes] = {}
        self._changed = threading.Condition()
        self.app = Starlette(
            routes=[
                Route("/hook", self._hook, methods=["POST"]),
                Route("/bucket/{key}", self._image, methods=["GET"]),
            ]
        )

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        with self._changed:
            self.deliveries.append((dict(request.headers), body))
            self._changed.notify_all()
        return Response(status_code=204)

    async def _image(self, request: Request) -> Response:
        content = self.images.get(request.path_params["key"])
        return Response(content, media_type="image/png") if content else Response(status_code=404)

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[tuple[dict[str, str], bytes]]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.deliveries) >= count, timeout)
            return list(self.deliveries)

    def clear(self) -> None:
        with self._changed:
            self.deliveries.clear()
            self.images.clear()


@pytest.fixture(scope="module")
def emulator() -> Iterator[WaveSpeedEmulator]:
    emulator = WaveSpeedEmulator(
        api_key=API_KEY, webhook_secret=SECRET, latency_s=(0.0, 0.02), seed=7, sync_timeout_s=5
    )
    yield emulator
    emulator.close()


@pytest.fixture(scope="module")
def server(emulator: WaveSpeedEmulator) -> Iterator[RunningServer]:
    with serve_in_thread(emulator.app) as running:
        yield running


@pytest.fixture(scope="module")
def peer_server() -> Iterator[tuple[Peer, RunningServer]]:
    peer = Peer()
    with serve_in_thread(peer.app) as running:
        yield peer, running


@pytest.fixture
def peer(peer_server: tuple[Peer, RunningServer], emulator: WaveSpeedEmulator) -> Peer:
    emulator.reset()
    peer_server[0].clear()
    return peer_server[0]


@pytest.fixture
def hook_url(peer_server: tuple[Peer, RunningServer]) -> str:
    return f"{peer_server[1].url}/hook"


@pytest.fixture
def client(server: RunningServer, peer: Peer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        yield client


def scene() -> Image.Image:
    """White background, a red disc on the left, a blue square on the right."""
    image = Image.new("RGB", SIZE, WHITE)
    draw = ImageDraw.Draw(image)
    (cx, cy), r = DISC_CENTRE, DISC_RADIUS
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=RED)
    draw.rectangle((44, 16, 55, 31), fill=BLUE)
    return image


def rgb(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    pixel = image.getpixel(xy)
    assert isinstance(pixel, tuple)
    return pixel


def data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def pixels_where(image: Image.Image, predicate: Callable[[Any], bool]) -> set[tuple[int, int]]:
    return {
        (x, y) for y in range(image.height) for x in range(image.width) if predicate(image.getpixel((x, y)))
    }


def run_sync(client: httpx.Client, params: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
    body.setdefault("image", data_uri(scene()))
    body.setdefault("apply_mask", False)
    response = client.post(SUBMIT, json={**body, "enable_sync_mode": True}, params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def output_of(client: httpx.Client, data: dict[str, Any]) -> httpx.Response:
    assert data["status"] == "completed", data
    response = client.get(data["outputs"][0])
    assert response.status_code == 200
    return response


def mask_of(client: httpx.Client, **body: Any) -> Image.Image:
    image = Image.open(io.BytesIO(output_of(client, run_sync(client, **body)).content))
    assert image.size == SIZE
    return image.convert("L")


def put_faults(client: httpx.Client, **faults: Any) -> None:
    response = client.put("/_emulator/faults", json={"latency_s": [0.0, 0.02], **faults})
    assert response.status_code == 200, response.text


# -- wire shapes ---------------------------------------------------------------------------------


def test_emulator_submit_answers_the_documented_envelope(client: httpx.Client, server: RunningServer) -> None:
    response = client.post(SUBMIT, json={"image": data_uri(scene()), "prompt": "the disc"})

    assert response.status_code == 200
    envelope = response.json()
    assert envelope["code"] == 200
    assert envelope["message"] == "success"
    data = envelope["data"]
    assert data["model"] == "wavespeed-ai/sam3-image"
    assert data["status"] == "created"
    assert data["outputs"] == [] and data["has_nsfw_contents"] == []
    assert data["error"] == ""
    assert data["urls"] == {"get": f"{server.url}/api/v3/predictions/{data['id']}/result"}
    assert isinstance(data["timings"]["inference"], int)
    assert datetime.fromisoformat(data["created_at"].replace("Z", "+00:00")).tzinfo is not None


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", f"Basic {API_KEY}"])
def test_emulator_refuses_a_missing_or_wrong_key(
    server: RunningServer, peer: Peer, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with httpx.Client(base_url=server.url, headers=headers) as anonymous:
        responses = [
            anonymous.post(SUBMIT, json={"image": data_uri(scene()), "prompt": "x"}),
            anonymous.get("/api/v3/predictions/abc/result"),
            anonymous.get("/api/v3/webhook/secret"),
        ]

    assert [r.status_code for r in responses] == [401, 401, 401]
    assert all(r.json()["code"] == 401 for r in responses)


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "no image"},
        {"image": "ftp://example.com/cat.png", "prompt": "x"},
        {"image": "data:image/png;base64,AAAA"},
        {
            "image": "data:image/png;base64,AAAA",
            "box_prompts": [{"x_min": 5, "y_min": 0, "x_max": 5, "y_max": 9}],
        },
        {"image": "data:image/png;base64,AAAA", "point_prompts": [{"x": -1, "y": 2, "label": 1}]},
        {"image": "data:image/png;base64,AAAA", "point_prompts": [{"x": 1, "y": 2, "label": 2}]},
        {"image": "data:image/png;base64,AAAA", "prompt": "x", "output_format": "gif"},
        {"image": "data:image/png;base64,AAAA", "prompt": "x", "apply_mask": "yes"},
        ["not", "an", "object"],
    ],
)
def test_emulator_rejects_invalid_input_with_400(client: httpx.Client, body: Any) -> None:
    response = client.post(SUBMIT, json=body)

    assert response.status_code == 400
    assert response.json()["code"] == 400
    assert client.get("/_emulator/stats").json()["submissions"] == 0


def test_emulator_rejects_malformed_json_with_400(client: httpx.Client) -> None:
    response = client.post(SUBMIT, content=b"{not json", headers={"Content-Type": "application/json"})

    assert response.status_code == 400


def test_emulator_unknown_prediction_is_404(client: httpx.Client) -> None:
    response = client.get("/api/v3/predictions/does-not-exist/result")

    assert response.status_code == 404
    assert response.json()["code"] == 404


def test_emulator_webhook_secret_is_served(client: httpx.Client) -> None:
    response = client.get("/api/v3/webhook/secret")

    assert response.status_code == 200
    assert response.json()["data"] == {"secret": SECRET}


def test_emulator_prediction_completes_and_its_result_lists_served_outputs(
    client: httpx.Client, server: RunningServer, peer: Peer, hook_url: str
) -> None:
    # given: an asynchronous submit whose callback tells us when it is done
    created = client.post(
        SUBMIT, params={"webhook": hook_url}, json={"image": data_uri(scene()), "prompt": "x"}
    ).json()["data"]
    peer.wait_for_deliveries(1)
    # when
    result = client.get(created["urls"]["get"])
    # then
    data = result.json()["data"]
    assert result.status_code == 200
    assert data["status"] == "completed"
    assert data["outputs"] == [f"{server.url}/outputs/{created['id']}/0.png"]
    assert data["has_nsfw_contents"] == [False]
    assert client.get(data["outputs"][0]).headers["content-type"] == "image/png"


# -- masks ---------------------------------------------------------------------------------------


def test_emulator_box_prompt_masks_exactly_the_box(client: httpx.Client) -> None:
    mask = mask_of(client, box_prompts=[{"x_min": 10, "y_min": 5, "x_max": 30, "y_max": 20}])

    expected = {(x, y) for x in range(10, 30) for y in range(5, 20)}
    assert pixels_where(mask, lambda v: v == 255) == expected
    assert pixels_where(mask, lambda v: v not in (0, 255)) == set()


def test_emulator_point_inside_the_disc_grows_the_disc(client: httpx.Client) -> None:
    mask = mask_of(client, point_prompts=[{"x": DISC_CENTRE[0], "y": DISC_CENTRE[1], "label": 1}])

    assert pixels_where(mask, lambda v: v == 255) == pixels_where(scene(), lambda p: p == RED)


def test_emulator_negative_point_takes_its_region_away(client: httpx.Client) -> None:
    whole = {"x_min": 0, "y_min": 0, "x_max": SIZE[0], "y_max": SIZE[1]}
    negative = {"x": DISC_CENTRE[0], "y": DISC_CENTRE[1], "label": 0}

    mask = mask_of(client, box_prompts=[whole], point_prompts=[negative])

    assert pixels_where(mask, lambda v: v == 255) == pixels_where(scene(), lambda p: p != RED)


def test_emulator_text_prompt_marks_the_foreground_deterministically(client: httpx.Client) -> None:
    first = mask_of(client, prompt="the shapes")  # no colour named: every object
    second = mask_of(client, prompt="the shapes")

    white = pixels_where(first, lambda v: v == 255)
    assert white == pixels_where(
        scene(), lambda p: max(abs(a - b) for a, b in zip(p, WHITE, strict=True)) > 48
    )
    assert white and white == pixels_where(second, lambda v: v == 255)


def test_emulator_text_prompt_naming_a_colour_marks_only_its_objects(client: httpx.Client) -> None:
    red = pixels_where(mask_of(client, prompt="the red disc"), lambda v: v == 255)
    assert red and red == pixels_where(scene(), lambda p: p == RED)


@pytest.mark.parametrize(
    ("output_format", "content_type", "is_magic"),
    [
        ("png", "image/png", lambda b: b.startswith(b"\x89PNG\r\n\x1a\n")),
        ("jpeg", "image/jpeg", lambda b: b.startswith(b"\xff\xd8\xff")),
        ("webp", "image/webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
    ],
)
def test_emulator_output_formats_carry_their_magic_bytes(
    client: httpx.Client, output_format: str, content_type: str, is_magic: Callable[[bytes], bool]
) -> None:
    data = run_sync(client, prompt="x", output_format=output_format)

    response = output_of(client, data)
    assert data["outputs"][0].endswith(f"/0.{output_format}")
    assert response.headers["content-type"] == content_type
    assert is_magic(response.content)


def test_emulator_apply_mask_cuts_the_image_out_with_alpha(client: httpx.Client) -> None:
    box = {"x_min": 10, "y_min": 5, "x_max": 30, "y_max": 20}
    data = run_sync(client, box_prompts=[box], apply_mask=True)

    cutout = Image.open(io.BytesIO(output_of(client, data).content)).convert("RGBA")
    inside = {(x, y) for x in range(10, 30) for y in range(5, 20)}
    source = scene()
    assert pixels_where(cutout, lambda p: p[3] == 255) == inside
    assert all(rgb(cutout, xy)[:3] == rgb(source, xy) for xy in inside)


def test_emulator_apply_mask_in_jpeg_blacks_out_the_background(client: httpx.Client) -> None:
    data = run_sync(
        client, point_prompts=[{"x": 50, "y": 20, "label": 1}], apply_mask=True, output_format="jpeg"
    )

    cutout = Image.open(io.BytesIO(output_of(client, data).content)).convert("RGB")
    assert max(rgb(cutout, (2, 2))) < 16  # background → black
    assert rgb(cutout, (50, 24))[2] > 150  # the blue square stays


# -- fetching the image --------------------------------------------------------------------------


def test_emulator_fetches_a_presigned_loopback_url(
    client: httpx.Client, peer: Peer, peer_server: tuple[Peer, RunningServer]
) -> None:
    buffer = io.BytesIO()
    scene().save(buffer, format="PNG")
    peer.images["key.png"] = buffer.getvalue()
    url = f"{peer_server[1].url}/bucket/key.png?X-Amz-Signature=abc&X-Amz-Expires=300"

    data = run_sync(client, image=url, box_prompts=[{"x_min": 0, "y_min": 0, "x_max": 4, "y_max": 4}])

    assert data["status"] == "completed"
    by_image = client.get("/_emulator/stats").json()["submissions_by_image"]
    assert by_image == {f"{peer_server[1].url}/bucket/key.png": 1}


@pytest.mark.parametrize(
    ("image", "error"),
    [
        ("http://127.0.0.1:9/bucket/none.png", "failed to download image"),
        (
            "data:image/png;base64," + base64.b64encode(b"not an image at all").decode(),
            "failed to decode image",
        ),
    ],
)
def test_emulator_fails_a_prediction_whose_image_is_unusable(
    client: httpx.Client, image: str, error: str
) -> None:
    data = run_sync(client, image=image, prompt="x")

    assert data["status"] == "failed"
    assert error in data["error"]
    assert data["outputs"] == []


def test_emulator_fails_an_image_url_the_peer_does_not_have(
    client: httpx.Client, peer_server: tuple[Peer, RunningServer]
) -> None:
    data = run_sync(client, image=f"{peer_server[1].url}/bucket/missing.png", prompt="x")

    assert data["status"] == "failed"
    assert "HTTP 404" in data["error"]


# -- callbacks -----------------------------------------------------------------------------------


def test_emulator_callback_is_signed_with_wavespeed_v3(
    client: httpx.Client, peer: Peer, hook_url: str
) -> None:
    data = run_sync(client, params={"webhook": hook_url}, prompt="x")

    [(headers, body)] = peer.wait_for_deliveries(1)
    expected = hmac.new(
        SECRET.removeprefix("whsec_").encode("utf-8"),
        f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body,
        hashlib.sha256,
    ).hexdigest()
    assert headers["webhook-signature"] == f"v3,{expected}"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    payload = json.loads(body)
    assert "code" not in payload and "data" not in payload
    assert payload["id"] == data["id"]
    assert payload["status"] == "completed"
    assert payload["outputs"] == data["outputs"]


# -- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "status"), [("submit_429", 429), ("submit_5xx", 503)])
def test_emulator_submit_faults_refuse_before_a_prediction_exists(
    client: httpx.Client, fault: str, status: int
) -> None:
    put_faults(client, **{fault: 1.0})

    response = client.post(SUBMIT, json={"image": data_uri(scene()), "prompt": "x"})

    assert response.status_code == status
    assert response.json()["code"] == status
    if status == 429:
        assert int(response.headers["retry-after"]) >= 1
    stats = client.get("/_emulator/stats").json()
    assert stats["submissions"] == 0
    assert sum(stats["predictions_by_status"].values()) == 0


def test_emulator_result_5xx_fails_the_read_not_the_prediction(client: httpx.Client) -> None:
    data = run_sync(client, prompt="x")
    put_faults(client, result_5xx=1.0)

    response = client.get(data["urls"]["get"])

    assert response.status_code in (500, 503)
    assert client.get("/_emulator/stats").json()["result_5xx"] == 1


def test_emulator_prediction_failed_ends_failed_with_http_200(client: httpx.Client) -> None:
    put_faults(client, prediction_failed=1.0)

    data = run_sync(client, prompt="x")

    assert data["status"] == "failed"
    assert data["error"]
    assert client.get(data["urls"]["get"]).json()["data"]["status"] == "failed"


def test_emulator_stuck_prediction_never_leaves_processing(peer: Peer, hook_url: str) -> None:
    stuck_emulator = WaveSpeedEmulator(api_key=API_KEY, latency_s=(0.0, 0.0), sync_timeout_s=0.2)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with (
        serve_in_thread(stuck_emulator.app) as server,
        httpx.Client(base_url=server.url, headers=headers) as client,
    ):
        put_faults(client, stuck=1.0, latency_s=[0.0, 0.0])
        stuck = run_sync(client, prompt="x")
        put_faults(client, latency_s=[0.0, 0.0])
        body = {"image": data_uri(scene()), "prompt": "x"}
        client.post(SUBMIT, params={"webhook": hook_url}, json=body)
        [(_, later)] = peer.wait_for_deliveries(1)

        assert stuck["status"] == "processing"
        assert "Sync mode timed out" in stuck["error"]
        assert json.loads(later)["status"] == "completed"  # a later prediction finished meanwhile
        assert client.get(stuck["urls"]["get"]).json()["data"]["status"] == "processing"
    stuck_emulator.close()


def test_emulator_bad_output_serves_a_broken_file(client: httpx.Client) -> None:
    put_faults(client, bad_output=1.0)

    content = output_of(client, run_sync(client, prompt="x")).content

    assert not content.startswith(b"\x89PNG")
    with pytest.raises(OSError):
        Image.open(io.BytesIO(content)).load()


def test_emulator_drop_callback_sends_nothing(client: httpx.Client, peer: Peer, hook_url: str) -> None:
    put_faults(client, drop_callback=1.0)
    dropped = run_sync(client, params={"webhook": hook_url}, prompt="x")
    put_faults(client)
    delivered = run_sync(client, params={"webhook": hook_url}, prompt="x")

    eventually(lambda: client.get("/_emulator/stats").json()["callbacks_dropped"] == 1)
    deliveries = peer.wait_for_deliveries(1)
    ids = [json.loads(body)["id"] for _, body in deliveries]
    assert ids == [delivered["id"]]
    assert dropped["id"] not in ids


def test_emulator_duplicate_callback_reuses_the_webhook_id(
    client: httpx.Client, peer: Peer, hook_url: str
) -> None:
    put_faults(client, duplicate_callback=1.0)

    run_sync(client, params={"webhook": hook_url}, prompt="x")

    first, second = peer.wait_for_deliveries(2)
    assert first[0]["webhook-id"] == second[0]["webhook-id"]
    assert first[1] == second[1]
    eventually(lambda: client.get("/_emulator/stats").json()["callbacks_sent"] == 2)


@pytest.mark.parametrize(
    "faults",
    [{"stuck": 1.5}, {"submit_429": -0.1}, {"latency_s": [1.0, 0.5]}, {"unknown_fault": 0.1}, [0.5]],
)
def test_emulator_rejects_invalid_faults(client: httpx.Client, faults: Any) -> None:
    response = client.put("/_emulator/faults", json=faults)

    assert response.status_code == 400
    assert client.get("/_emulator/faults").json()["stuck"] == 0.0


def test_emulator_faults_put_replaces_and_patch_merges(client: httpx.Client) -> None:
    client.put("/_emulator/faults", json={"stuck": 0.25})
    client.patch("/_emulator/faults", json={"bad_output": 0.5})

    faults = client.get("/_emulator/faults").json()

    assert faults["stuck"] == 0.25 and faults["bad_output"] == 0.5
    assert client.put("/_emulator/faults", json={"bad_output": 0.1}).json()["stuck"] == 0.0


def test_emulator_seeded_faults_repeat_exactly(peer: Peer) -> None:
    def statuses() -> list[int]:
        emulator = WaveSpeedEmulator(api_key=API_KEY, seed=42, latency_s=(0.0, 0.0))
        headers = {"Authorization": f"Bearer {API_KEY}"}
        with (
            serve_in_thread(emulator.app) as server,
            httpx.Client(base_url=server.url, headers=headers) as client,
        ):
            put_faults(client, submit_429=0.5, latency_s=[0.0, 0.0])
            body = {"image": data_uri(scene()), "prompt": "x"}
            codes = [client.post(SUBMIT, json=body).status_code for _ in range(12)]
        emulator.close()
        return codes

    first, second = statuses(), statuses()

    assert first == second
    assert {200, 429} == set(first)


# -- stats and reset -----------------------------------------------------------------------------


def test_emulator_stats_count_submissions_polls_and_statuses(client: httpx.Client) -> None:
    image_a, image_b = data_uri(scene()), data_uri(Image.new("RGB", SIZE, RED))
    first = run_sync(client, image=image_a, prompt="x")
    run_sync(client, image=image_a, prompt="y")
    run_sync(client, image=image_b, prompt="x")
    client.get(first["urls"]["get"])
    client.get(first["urls"]["get"])

    stats = client.get("/_emulator/stats").json()

    def key(uri: str) -> str:
        return "data:sha256:" + hashlib.sha256(uri.encode()).hexdigest()[:16]

    assert stats["submissions"] == 3
    assert stats["submissions_by_image"] == {key(image_a): 2, key(image_b): 1}
    assert stats["polls"] == 2
    assert stats["predictions_by_status"]["completed"] == 3


def test_emulator_reset_forgets_predictions_and_faults(client: httpx.Client) -> None:
    data = run_sync(client, prompt="x")
    put_faults(client, stuck=1.0)

    assert client.post("/_emulator/reset").status_code == 200

    assert client.get(data["urls"]["get"]).status_code == 404
    assert client.get("/_emulator/faults").json()["stuck"] == 0.0
    assert client.get("/_emulator/stats").json()["submissions"] == 0
