"""``maskgate dev --state-dir DIR``: jobs, keys and masks outlive the stack; restored uploads start no job."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from maskgate.stores.tenants import TenantStore
from maskgate_local.demo.sample import scene_png
from tests.e2e.conftest import TIMEOUT, aws_client, dev_subprocess
from tests.e2e.test_vertical_slice import BOX, data_uri

pytestmark = pytest.mark.e2e
FINISHED = {"succeeded", "failed", "canceled"}


def _api(
    ready: dict[str, Any], method: str, path: str, key: str | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or ready['api_key']}"}
    return httpx.request(method, ready["api_url"] + path, headers=headers, timeout=TIMEOUT, **kwargs)


def _jobs(ready: dict[str, Any]) -> dict[str, dict[str, Any]]:
    listed = _api(ready, "GET", "/v1/segmentations", params={"limit": 100}).raise_for_status().json()["data"]
    return {job["id"]: job for job in listed}


def _until_finished(ready: dict[str, Any], count: int, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = _jobs(ready)
        if len(jobs) >= count and all(job["status"] in FINISHED for job in jobs.values()):
            return jobs
        time.sleep(0.2)  # polling a condition with a deadline
    raise AssertionError(f"{count} jobs not finished within {timeout}s: {_jobs(ready)}")


def _mask(ready: dict[str, Any], job_id: str) -> bytes:
    [mask] = _api(ready, "GET", f"/v1/segmentations/{job_id}").raise_for_status().json()["masks"]
    return httpx.get(mask["url"], timeout=TIMEOUT).raise_for_status().content


def test_jobs_keys_and_masks_are_there_after_a_restart_with_the_same_state_dir(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with dev_subprocess(tmp_path / "first", "--quiet", "--state-dir", str(state_dir)) as (ready, log):
        assert "restored 0 items, 0 objects" in log.read_text()
        created = _api(ready, "POST", "/v1/segmentations", json={"image": data_uri(), "box_prompts": [BOX]})
        assert created.status_code == 202, created.text
        upload = {"maskgate": json.dumps({"box_prompts": [BOX]})}
        s3 = aws_client(ready, "s3")
        s3.put_object(Bucket=ready["bucket"], Key="uploads/kept.png", Body=scene_png(), Metadata=upload)
        tenants = TenantStore(table=ready["table"], client=aws_client(ready, "dynamodb"))
        second_key = tenants.create_key("default").key
        before = _until_finished(ready, 2)
        mask = _mask(ready, created.json()["id"])
    assert (state_dir / "state.json").is_file()

    with dev_subprocess(tmp_path / "second", "--quiet", "--state-dir", str(state_dir)) as (again, log):
        assert again["api_key"] == ready["api_key"]  # the ready file names the same key
        assert again["aws_endpoint_url"] != ready["aws_endpoint_url"]  # a new stack on new ports
        assert "restored 0 items" not in log.read_text()
        after = _jobs(again)
        # the restored upload under uploads/ started no second job
        assert {i: (j["status"], j["created_at"]) for i, j in after.items()} == {
            i: (j["status"], j["created_at"]) for i, j in before.items()
        }
        assert _api(again, "GET", "/v1/segmentations", key=second_key).status_code == 200
        assert _mask(again, created.json()["id"]) == mask
        restored_upload = aws_client(again, "s3").get_object(Bucket=again["bucket"], Key="uploads/kept.png")
        assert restored_upload["Body"].read() == scene_png()
        assert restored_upload["Metadata"] == upload


def test_an_unreadable_state_dir_stops_the_start_with_one_line(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "state.json").write_text("{not json")
    with (
        pytest.raises(RuntimeError, match="exited with 2"),
        dev_subprocess(tmp_path, "--state-dir", str(state_dir)),
    ):
        pass
    output = (tmp_path / "dev.log").read_text()
    assert "maskgate dev: --state-dir: cannot read" in output and "Traceback" not in output
