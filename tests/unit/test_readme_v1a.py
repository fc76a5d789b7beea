"""The README's "Verifying v1a" code, run as printed: its Python function and its Node function each
accept what maskgate's v1a signer sends (one key, or both keys during a rotation) and refuse a changed
body, a changed or stale timestamp and another endpoint's key. The Node part needs ``node`` on PATH."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from maskgate.webhooks.signing import new_key_pair, new_secret, signature_header

ROOT = Path(__file__).resolve().parents[2]
BODY = b'{"type":"segmentation.succeeded","timestamp":"2026-12-07T01:02:03Z","data":{"id":"seg_x"}}'


def _snippet(language: str) -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**Verifying v1a.**") :]
    section = section[: section.index("**Delivery to endpoints.**")]
    [code] = re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)
    return code


def _headers(
    keys: list[str], *, body: bytes = BODY, msg_id: str = "msg_x", at: int | None = None
) -> dict[str, str]:
    timestamp = int(time.time()) if at is None else at
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(keys, msg_id=msg_id, timestamp=timestamp, body=body),
    }


def _cases() -> list[tuple[str, str, dict[str, str], bytes, bool]]:
    """(name, public key, headers, body, accepted?) for one key pair, then a rotation."""
    private, public = new_key_pair()
    new_private, new_public = new_key_pair()
    signed = _headers([private])
    rotating = _headers([new_private, private])
    return [
        ("signed", public, signed, BODY, True),
        ("changed body", public, signed, BODY.replace(b"seg_x", b"seg_y"), False),
        ("changed timestamp", public, signed | {"webhook-timestamp": str(int(time.time()) + 1)}, BODY, False),
        ("changed id", public, signed | {"webhook-id": "msg_y"}, BODY, False),
        ("stale", public, _headers([private], at=int(time.time()) - 3600), BODY, False),
        ("another key", new_key_pair()[1], signed, BODY, False),
        ("rotation, new key", new_public, rotating, BODY, True),
        ("rotation, old key", public, rotating, BODY, True),
        ("beside a v1 signature", public, _headers([new_secret(), private]), BODY, True),
        ("only v1", public, _headers([new_secret()]), BODY, False),
        ("garbled", public, signed | {"webhook-signature": "v1a,!!notbase64 v1a,AAAA"}, BODY, False),
    ]


def test_the_python_snippet_verifies_what_maskgate_signs() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(_snippet("python"), "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    verify_v1a = namespace["verify_v1a"]
    for name, public, headers, body, accepted in _cases():
        if accepted:
            assert verify_v1a(public, headers, body) == body, name
        else:
            with pytest.raises(ValueError):  # the snippet raises ValueError, with its reason
                verify_v1a(public, headers, body)


@pytest.mark.skipif(
    shutil.which("node") is None, reason="node is not installed: the README's Node code is not run"
)
def test_the_node_snippet_verifies_what_maskgate_signs(tmp_path: Path) -> None:
    (tmp_path / "verify.mjs").write_text(_snippet("js"))
    (tmp_path / "main.mjs").write_text(
        """import { readFileSync } from "node:fs";
import { verifyV1a } from "./verify.mjs";

const cases = JSON.parse(readFileSync(0, "utf8"));
const verdicts = cases.map(({ publicKey, headers, body }) => {
  const raw = Buffer.from(body, "base64");
  try {
    return verifyV1a(publicKey, headers, raw).equals(raw);
  } catch (error) {
    return String(error.message);
  }
});
console.log(JSON.stringify(verdicts));
"""
    )
    cases = _cases()
    sent = [{"publicKey": p, "headers": h, "body": base64.b64encode(b).decode()} for _, p, h, b, _ in cases]
    done = subprocess.run(  # noqa: S603 - node on the README's code, in a scratch directory
        [str(shutil.which("node")), "main.mjs"],
        cwd=tmp_path,
        input=json.dumps(sent),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    verdicts = json.loads(done.stdout)
    for (name, _, _, _, accepted), verdict in zip(cases, verdicts, strict=True):
        if accepted:
            assert verdict is True, (name, verdict)
        else:
            assert isinstance(verdict, str), (name, verdict)  # an Error, with its reason
