"""The api's cold start: building the app and answering requests never imports ``pydantic.v1`` (about
70 ms), while FastAPI's v1-model checks still answer truly once ``pydantic.v1`` is imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_building_the_app_and_answering_imports_no_pydantic_v1() -> None:
    script = textwrap.dedent(
        """
        import sys
        from fastapi.testclient import TestClient
        from maskgate.api.app import create_app

        app = create_app()
        client = TestClient(app)
        assert client.get("/v1/health").json() == {"status": "ok"}
        assert client.get("/v1/segmentations").status_code == 401  # a problem document, encoded
        assert "/v1/segmentations" in client.get("/openapi.json").json()["paths"]
        print("pydantic.v1" in sys.modules)
        """
    )
    done = subprocess.run(  # noqa: S603 - a fresh interpreter: this process imported pydantic.v1 long ago
        [sys.executable, "-W", "ignore", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "",
            "PYTHONPATH": str(ROOT / "shared"),
            "AWS_DEFAULT_REGION": "us-east-1",
            "MASKGATE_TABLE": "jobs",  # settings are read by the body size limit; nothing is called
            "MASKGATE_BUCKET": "bucket",
            "MASKGATE_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
        },
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_fastapis_v1_checks_still_answer_once_pydantic_v1_is_imported() -> None:
    import warnings

    from fastapi import encoders
    from fastapi._compat import shared

    from maskgate.api.app import create_app

    create_app()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pydantic import v1

    class Old(v1.BaseModel):
        x: int = 1

    assert shared.is_pydantic_v1_model_class(Old) and shared.annotation_is_pydantic_v1(list[Old])
    assert shared.is_pydantic_v1_model_instance(Old()) and encoders.is_pydantic_v1_model_instance(Old())
    assert not shared.is_pydantic_v1_model_class(int)


def test_importing_the_api_handler_imports_no_http_client() -> None:
    """httpx (and h11 under it, about 45 ms) come with the webhook sender: only cancel and redelivery
    need it, so they import it when called, never when the handler is imported."""
    script = textwrap.dedent(
        """
        import sys
        import app  # functions/api/app.py, as the Lambda runtime imports it

        print(sorted(m for m in ("httpx", "maskgate.webhooks.sender") if m in sys.modules))
        """
    )
    done = subprocess.run(  # noqa: S603 - a fresh interpreter, as a cold start
        [sys.executable, "-W", "ignore", "-c", script],
        cwd=ROOT / "functions" / "api",
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "",
            "PYTHONPATH": f"{ROOT / 'functions' / 'api'}:{ROOT / 'shared'}",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MASKGATE_TABLE": "jobs",
            "MASKGATE_BUCKET": "bucket",
            "MASKGATE_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
        },
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
