"""Sommelier's web page: static HTML/CSS/JS plus the config.js that tells it where the API is.

Locally Flask (under gunicorn) serves these files; in AWS the same static files are
served from the S3 website bucket with a generated config.js.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort

STATIC = Path(__file__).parent / "static"


def _api_settings(app: Flask) -> dict[str, Any]:
    """API URL and key: from FRONTEND_API_URL/FRONTEND_API_KEY, or from the stack info file."""
    url, key = app.config.get("API_URL"), app.config.get("API_KEY")
    info_file = app.config.get("STACK_INFO_FILE")
    if (not url or not key) and info_file:
        try:
            info = json.loads(Path(info_file).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            info = {}
        # the page's own key (stricter usage plan), never the demo/admin key
        url, key = url or info.get("api_url"), key or info.get("frontend_api_key")
    return {"apiUrl": url, "apiKey": key}


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config.from_prefixed_env("FRONTEND")
    if test_config:
        app.config.update(test_config)

    @app.get("/")
    def index() -> Response:
        return app.send_static_file("index.html")

    @app.get("/config.js")
    def config_js() -> Response:
        settings = _api_settings(app)
        if not settings["apiUrl"]:
            abort(503, "the API URL is not known yet: is the stack provisioned?")
        body = f"window.SOMMELIER_CONFIG = {json.dumps(settings)};\n"
        return Response(body, mimetype="application/javascript", headers={"Cache-Control": "no-store"})

    @app.get("/favicon.ico")
    def favicon() -> Response:  # browsers that ask before reading the page's <link rel="icon">
        return app.send_static_file("favicon.svg")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.after_request
    def security_headers(resp: Response) -> Response:
        # the page loads only its own files and talks only to the API; nothing may frame it
        api = urlsplit(_api_settings(app)["apiUrl"] or "")
        api_origin = f"{api.scheme}://{api.netloc}" if api.scheme and api.netloc else ""
        resp.headers["Content-Security-Policy"] = (f"default-src 'self'; connect-src 'self' {api_origin}; img-src 'self' data:; "
                                                   "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "no-referrer"
        return resp

    return app
