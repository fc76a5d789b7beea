"""The local stack's control server (its own loopback port, ``control_url`` in the ready file).

``GET /crashes`` lists every crash point with its description, rate and injected count;
``PUT /crashes`` with ``{"<function>.<point>": rate, ...}`` sets those rates (all or nothing: an unknown
point or a rate that is not a number in [0, 1] is a 400 and changes nothing); ``POST /reset`` sets every
rate and count back to 0. Each answers the listing. Local only: no authentication.

``GET /docs-assets/<file>`` serves Swagger UI's script and styles from the ``swagger-ui-bundle-v2``
package, so the API's ``/docs`` page renders with no network (in AWS it loads them from a CDN).
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from maskgate_local.stack.crashes import CrashRegistry, InvalidRates


class ControlServer:
    """The control endpoints over one ``CrashRegistry``, as an ASGI ``app``."""

    def __init__(self, crashes: CrashRegistry) -> None:
        self._crashes = crashes
        self.app = Starlette(
            routes=[
                Route("/crashes", self._get_crashes, methods=["GET"]),
                Route("/crashes", self._put_crashes, methods=["PUT"]),
                Route("/reset", self._reset, methods=["POST"]),
                Mount("/docs-assets", StaticFiles(directory=_swagger_ui_path()), name="docs-assets"),
            ]
        )

    async def _get_crashes(self, _request: Request) -> Response:
        return JSONResponse(self._crashes.listing())

    async def _put_crashes(self, request: Request) -> Response:
        try:
            rates = json.loads(await request.body())
        except ValueError:
            return _bad_request('the body must be JSON: {"<function>.<point>": rate, ...}')
        try:
            self._crashes.set_rates(rates)
        except InvalidRates as exc:
            return _bad_request(str(exc))
        return JSONResponse(self._crashes.listing())

    async def _reset(self, _request: Request) -> Response:
        self._crashes.reset()
        return JSONResponse(self._crashes.listing())


def _swagger_ui_path() -> str:
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

    return str(swagger_ui_path)


def _bad_request(message: str) -> Response:
    return JSONResponse({"message": message}, 400)
