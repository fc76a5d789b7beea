"""BatchGetItem to the end: unprocessed keys asked for again after a growing backoff, then an error."""

from __future__ import annotations

from typing import Any

import pytest

from maskgate.errors import MaskgateError
from maskgate.stores.batch import TRIES, batch_get


class Throttling:
    """A DynamoDB client whose BatchGetItem answers one key per call, the rest unprocessed; or none."""

    def __init__(self, *, serve: bool = True) -> None:
        self.requests: list[Any] = []
        self.serve = serve

    def batch_get_item(self, RequestItems: Any) -> dict[str, Any]:  # boto3 names it so
        self.requests.append(RequestItems)
        keys = RequestItems["t"]["Keys"]
        served, rest = (keys[:1], keys[1:]) if self.serve else ([], keys)
        answer: dict[str, Any] = {"Responses": {"t": [{**key, "v": {"S": "x"}} for key in served]}}
        if rest:
            answer["UnprocessedKeys"] = {"t": {**RequestItems["t"], "Keys": rest}}
        return answer


def test_what_is_left_unprocessed_is_asked_for_again_after_a_growing_backoff() -> None:
    client, slept = Throttling(), []
    keys = [{"pk": {"S": f"k{n}"}} for n in range(3)]
    items = batch_get(client, "t", keys, consistent=True, sleep=slept.append)  # type: ignore[arg-type]
    assert [item["pk"]["S"] for item in items] == ["k0", "k1", "k2"]
    assert slept == [0.05, 0.1]
    assert all(request["t"]["ConsistentRead"] for request in client.requests)


def test_keys_kept_unprocessed_through_every_try_are_an_error() -> None:
    client, slept = Throttling(serve=False), []
    with pytest.raises(MaskgateError, match="unprocessed"):
        batch_get(client, "t", [{"pk": {"S": "k"}}], sleep=slept.append)  # type: ignore[arg-type]
    assert len(client.requests) == TRIES and "ConsistentRead" not in client.requests[0]["t"]
