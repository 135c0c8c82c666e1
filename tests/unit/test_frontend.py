import json

from frontend import create_app


def test_config_js_comes_from_the_stack_info_file(tmp_path):
    info = tmp_path / "stack.json"
    info.write_text(json.dumps({"api_url": "http://api.example/v1", "api_key": "admin", "frontend_api_key": "k-123"}))
    client = create_app({"STACK_INFO_FILE": str(info)}).test_client()
    body = client.get("/config.js").get_data(as_text=True)
    assert body.startswith("window.SOMMELIER_CONFIG = ")
    assert json.loads(body.split("= ", 1)[1].rstrip(";\n")) == {"apiUrl": "http://api.example/v1", "apiKey": "k-123"}


def test_config_js_is_503_before_the_stack_is_provisioned(tmp_path):
    client = create_app({"STACK_INFO_FILE": str(tmp_path / "missing.json")}).test_client()
    resp = client.get("/config.js")
    assert resp.status_code == 503
    assert "is the stack provisioned" in resp.get_data(as_text=True)


def test_the_page_and_its_assets_are_served():
    client = create_app({"API_URL": "http://x", "API_KEY": "k"}).test_client()
    page = client.get("/").get_data(as_text=True)
    assert '<script src="config.js">' in page  # relative: the same file works at an S3 website root
    for asset in ("/static/app.js", "/static/style.css", "/static/favicon.svg", "/favicon.ico"):
        assert client.get(asset).status_code == 200
    assert '<link rel="icon" type="image/svg+xml" href="static/favicon.svg">' in page  # relative, like the rest
    assert client.get("/favicon.ico").mimetype == "image/svg+xml"
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_every_response_carries_security_headers_allowing_only_the_api():
    client = create_app({"API_URL": "http://127.0.0.1:4566/restapis/x/v1/_user_request_", "API_KEY": "k"}).test_client()
    for path in ("/", "/config.js", "/static/app.js"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "connect-src 'self' http://127.0.0.1:4566;" in csp and "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"


def test_the_class_colours_are_twenty_distinct_ones_and_the_legend_matches_the_chart():
    """Issue 37: with 15 classes the class-mix chart repeated its 8 colours (US and Greece shared one). The chart's palette
    (app.js) and the legend's swatches (style.css, .mix-N) are one list of 20 distinct colours, in the same order."""
    import re

    client = create_app({"API_URL": "http://x", "API_KEY": "k"}).test_client()
    script = client.get("/static/app.js").get_data(as_text=True)
    palette = re.findall(r"#[0-9a-f]{6}", re.search(r"const MIX = \[(.*?)\];", script, re.S).group(1))
    css = client.get("/static/style.css").get_data(as_text=True)
    swatches = dict(re.findall(r"\.mix-(\d+) \{ background: (#[0-9a-f]{6}); \}", css))
    assert len(palette) == len(set(palette)) == 20
    assert [swatches[str(i)] for i in range(20)] == palette
