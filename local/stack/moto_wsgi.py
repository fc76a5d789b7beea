"""moto's WSGI app, and the same app without Flask for the requests this process answers itself.

moto's server is a dispatcher (`DomainDispatcherApplication`) that picks a Flask app per service, whose
every route is a `convert_to_flask_response` around a response class's handler. For each request Flask
pushes a request and an app context, runs its before- and after-request hooks (flask-cors only; no
other hook is registered), dispatches to the view and pops both contexts again: about a tenth of the
local stack's CPU per job, for requests that never came over HTTP.

`FlasklessApp` answers the same environ with the same steps, minus Flask's contexts:
- the dispatcher picks the service's app and its URL map picks the view;
- the view's handler is called as `convert_to_flask_response.__call__` calls it (moto's request class,
  the request recorder, a `ClientError` answered 400), and its result becomes the same `flask.Response`;
- an `HTTPException` the handler raises (moto's `RESTError` is one) is answered as Flask answers it
  (the exception's own response, or raised again where the app traps it);
- the one header flask-cors adds to a response for a request without an ``Origin``
  (``Access-Control-Allow-Origin: *``, unless the response has its own) is added.

Anything else goes to the Flask app, which answers it as it always did: a request with an ``Origin``
(flask-cors answers a browser by its origin), no route, a method the route does not take, a redirect,
a view that is not moto's converter, moto's own API.

The server on the stack's port keeps the Flask app (the CLI, tests' processes and a browser reach it).
The converter's source and the apps' hooks are pinned by `tests/contract/test_moto_canary.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def moto_app() -> Any:
    """moto's server app: one dispatcher in front of a Flask app per service (moto imported here, late)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


class FlasklessApp:
    """The WSGI app that answers as `dispatcher` does, calling moto's handlers without Flask."""

    def __init__(self, dispatcher: Any) -> None:
        from flask import Response
        from moto.core.utils import convert_to_flask_response
        from moto.moto_api import recorder
        from moto.settings import DISABLE_GLOBAL_CORS
        from werkzeug.exceptions import BadRequestKeyError, HTTPException
        from werkzeug.routing import RequestRedirect

        self._dispatcher = dispatcher
        self._converter = convert_to_flask_response
        self._response = Response
        self._recorder = recorder
        self._not_routed = (HTTPException, RequestRedirect)
        self._http_exception = HTTPException
        self._bad_request_key = BadRequestKeyError
        self._cors = not DISABLE_GLOBAL_CORS

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        app = self._dispatcher.get_application(environ)
        if "HTTP_ORIGIN" in environ:  # flask-cors answers a browser's request by its origin
            return app(environ, start_response)  # type: ignore[no-any-return]
        try:
            endpoint, _ = app.url_map.bind_to_environ(environ).match()
        except self._not_routed:
            return app(environ, start_response)  # type: ignore[no-any-return]  # Flask answers as it did
        view = app.view_functions.get(endpoint)
        if type(view) is not self._converter or getattr(app, "service", None) == "moto_api":
            return app(environ, start_response)  # type: ignore[no-any-return]
        request = app.request_class(environ)
        try:
            response = self._view(view, request)
        except self._http_exception as exc:  # as Flask answers one (moto's RESTError is one)
            trap_key_errors = app.debug or app.config["TRAP_BAD_REQUEST_ERRORS"]
            if isinstance(exc, self._bad_request_key) and trap_key_errors:
                exc.show_exception = True
            if app.trap_http_exception(exc):
                raise
            response = self._response.force_type(exc, environ)  # type: ignore[arg-type]  # a WSGI app, as Flask passes it
        if self._cors:
            response.headers.setdefault("Access-Control-Allow-Origin", "*")
        answer: Iterable[bytes] = response(environ, start_response)
        return answer

    def _view(self, view: Any, request: Any) -> Any:
        """What ``convert_to_flask_response.__call__`` does with the request, as a ``flask.Response``."""
        from botocore.exceptions import ClientError

        self._recorder._record_request(request)
        try:
            result = view.callback(request, request.raw_url, dict(request.headers))
        except ClientError as exc:
            result = 400, {}, exc.response["Error"]["Message"]
        if len(result) == 3:
            status, headers, content = result
        else:
            status, headers, content = 200, {}, result
        response = self._response(response=content, status=status, headers=headers)
        if request.method == "HEAD" and "content-length" in headers:
            response.headers["Content-Length"] = headers["content-length"]
        return response
