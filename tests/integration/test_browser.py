"""The web page in a real headless Chromium against the running stack. Screenshots of every
state land in test-artifacts/screenshots/ for a reviewer to look at."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait
from werkzeug.serving import make_server

from frontend import create_app

from .conftest import free_port
from .test_monitoring import _monitor, _predict, _records, _since, training_rows  # noqa: F401  (a fixture)

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-component-update", "--disable-sync", "--window-size=1280,2000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    downloads = tmp_path_factory.mktemp("downloads")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.downloads = downloads  # where the page's downloads land
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page_url(stack) -> str:
    if stack.config is None:
        pytest.skip("the page is served by the embedded stack's frontend")
    return stack.config.frontend_url + "/"


def wait(driver, condition, timeout: float = 20):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def open_page(driver, url: str) -> None:
    driver.get(url)
    wait(driver, lambda d: d.find_element(By.ID, "api-status").text.startswith(("model", "API")))


@pytest.fixture
def serve_page():
    """A second frontend with other settings (a wrong key, an API that is down), over real HTTP."""
    servers = []

    def start(**config) -> str:
        port = free_port()
        server = make_server("127.0.0.1", port, create_app(config))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{port}/"

    yield start
    for server in servers:
        server.shutdown()


class RecordingApi:
    """A stand-in for the API over real HTTP (CORS and all) that serves given GET documents (by path: /model, and any
    other the page asks for) and records every POST body: what the page sends, exactly. POSTs are answered from
    `answers` in turn (status, body), then with a 400."""

    def __init__(self, model: dict, documents: dict[str, dict] | None = None, answers: list[tuple[int, dict]] | None = None):
        import http.server

        self.posted: list[dict] = []
        outer, gets, replies = self, {"/model": model, **(documents or {})}, list(answers or [])

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict | None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for name, value in (("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Headers", "Content-Type,X-Api-Key"),
                                    ("Access-Control-Allow-Methods", "GET,POST,OPTIONS"), ("Content-Type", "application/json"),
                                    ("Content-Length", str(len(data)))):
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_OPTIONS(self) -> None:  # noqa: N802
                self._answer(204, None)

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                if path in gets:
                    self._answer(200, gets[path])
                else:
                    self._answer(404, {"error": {"code": "not_found", "message": "not in this stand-in"}, "request_id": "r"})

            def do_POST(self) -> None:  # noqa: N802
                outer.posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                if replies:
                    self._answer(*replies.pop(0))
                else:
                    self._answer(400, {"error": {"code": "validation_error", "message": "recorded"}, "request_id": "r"})

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


def test_values_are_sent_as_typed_and_numbers_show_their_range(browser, serve_page, stack, tmp_path):
    """Issue 37: the page trimmed every value with JavaScript's trim(), which strips a non-breaking space too, so a real
    category (`@paulgwine\u00a0`, as the reviews file has it) was refused; the API, not the page, decides what a value means."""
    model = stack.get("/model").json()
    taster, note = "@paulgwine\u00a0", "  Crisp, with a note of cre\u0300me brûlée "
    model["features"] = [*model["features"],
                         {"name": "taster", "type": "categorical", "categories": ["Anne Krebiehl\u00a0MW", taster], "example": taster},
                         {"name": "note", "type": "text", "example": note}]
    model["features"][0] |= {"observed": {"min": 11.03, "max": 14.83, "missing": 0}}  # as an inferred spec has it
    api = RecordingApi(model)
    try:
        open_page(browser, serve_page(API_URL=api.url, API_KEY="k"))
        browser.find_element(By.ID, "example-button").click()
        browser.find_element(By.ID, "predict-button").click()
        wait(browser, lambda d: api.posted)
        sent = api.posted[0]["features"]
        assert (sent["taster"], sent["note"]) == (taster, note)
        first = model["features"][0]  # a number's hint: the range the data had, then what the API accepts
        hint = browser.find_element(By.ID, f"f-{first['name']}-hint").text
        assert hint.startswith(f"seen 11.03 to 14.83 · accepts {first['minimum']:g} to {first['maximum']:g}"), hint
        browser.find_element(By.ID, "fields").screenshot(str(SHOTS / "12-fields-as-typed.png"))
        csv_file = tmp_path / "rows.csv"
        header = [f["name"] for f in model["features"]]
        row = [str(model["example"][n]) for n in header[:-2]] + [taster, f'"{note}"']
        csv_file.write_text(",".join(header) + "\n" + ",".join(row) + "\n", encoding="utf-8")
        browser.find_element(By.ID, "batch-file").send_keys(str(csv_file))
        browser.find_element(By.ID, "batch-button").click()
        wait(browser, lambda d: len(api.posted) == 2)
        (record,) = api.posted[1]["instances"]
        assert (record["taster"], record["note"]) == (taster, note)
        assert all(isinstance(record[n], float | int) for n in header[:-2])  # numbers still read as numbers
    finally:
        api.server.shutdown()


REVIEWS_CARD = {  # GET /model of a model trained on the reviews file's 14 columns (the trainer's "absent": any may be left out)
    "version": "20261207T000000Z-review", "classes": ["Argentina", "Chile", "France", "US"], "target": "country",
    "model": {"name": "linear_svm_chars", "family": "linear_svm_chars"},
    "features": [{"name": "description", "type": "text", "absent": True, "example": "Ripe plum and violet, a Malbec of Mendoza."},
                 {"name": "points", "type": "numeric", "absent": True, "imputed": "median", "minimum": 70, "maximum": 110},
                 {"name": "region_1", "type": "categorical", "absent": True, "imputed": "missing", "suggestions": ["Mendoza", "Napa Valley"]},
                 {"name": "variety", "type": "categorical", "absent": True, "categories": ["Malbec", "Pinot Noir"], "example": "Malbec"},
                 {"name": "winery", "type": "categorical", "absent": True, "suggestions": ["Trapiche"], "example": "Trapiche"}],
    "example": {"description": "Ripe plum and violet, a Malbec of Mendoza.", "variety": "Malbec", "winery": "Trapiche"},
    "metrics": {"holdout": {"accuracy": 0.99, "f1_macro": 0.97, "rows": 200, "per_class": {},
                            "confusion_matrix": {"labels": [], "matrix": []}}, "cv": {}},
    "gate": {"passed": True, "reason": "first model"}, "promotions": [], "importances": None, "segments": [],
    "dataset": {"name": "reviews", "version": 1, "rows": 1000, "notes": [], "grouped": {}}, "serving": {"runtime": "onnx"},
}


def test_a_review_alone_is_answered_and_the_answer_says_what_it_went_without(browser, serve_page, tmp_path):
    """Issue 50 (5): the seed's own task on the page. With a reviews model, the description box alone is enough: every other
    field is marked optional, a blank one is left out of the record (absent, not empty), and the answer says what the
    model went without."""
    without = ["points", "region_1", "variety", "winery"]
    answer = {"request_id": "r1", "model_version": REVIEWS_CARD["version"], "prediction_id": "p1", "label": "Argentina",
              "confidence": 0.62, "probabilities": {"Argentina": 0.62, "Chile": 0.2, "France": 0.1, "US": 0.08}, "absent": without,
              "explanation": {"method": "linear", "top": [{"feature": "description", "term": "mendoza", "contribution": 1.2}]}}
    api = RecordingApi(REVIEWS_CARD, answers=[(200, answer)])
    try:
        open_page(browser, serve_page(API_URL=api.url, API_KEY="k"))
        for name in without:
            field = browser.find_element(By.ID, f"f-{name}")
            assert field.get_attribute("required") is None, name
            assert "optional: left blank, the model answers without it" in browser.find_element(By.ID, f"f-{name}-hint").text, name
        assert Select(browser.find_element(By.ID, "f-variety")).first_selected_option.text == "(not given)"
        browser.find_element(By.ID, "f-description").send_keys("Ripe plum and violet, a Malbec of Mendoza.")
        browser.find_element(By.ID, "predict-button").click()
        wait(browser, lambda d: d.find_element(By.ID, "answer-label").text == "Argentina")
        assert api.posted[0] == {"features": {"description": "Ripe plum and violet, a Malbec of Mendoza."}}
        said = browser.find_element(By.ID, "answer-absent").text
        assert said == "Answered without points, region_1, variety and winery: not given, so the model went without them.", said
        browser.find_element(By.ID, "predict-form").screenshot(str(SHOTS / "16-a-review-alone.png"))
        browser.find_element(By.ID, "answer").screenshot(str(SHOTS / "17-answered-without.png"))
    finally:
        api.server.shutdown()


def test_fill_the_form_and_see_a_prediction(browser, page_url, stack):
    open_page(browser, page_url)
    assert browser.find_element(By.ID, "api-status").text.startswith("model ")
    assert "Predict cultivar from 13 features (dataset wine)" in browser.find_element(By.ID, "dataset-title").text
    assert "cultivars" in browser.find_element(By.ID, "dataset-description").text  # the spec's own description
    browser.find_element(By.ID, "example-button").click()
    browser.find_element(By.ID, "predict-button").click()
    label = wait(browser, ec.visibility_of_element_located((By.ID, "answer-label"))).text
    assert label in {"class_0", "class_1", "class_2"}
    assert len(browser.find_elements(By.CSS_SELECTOR, "#answer svg rect.bar")) == 3
    why = browser.find_elements(By.CSS_SELECTOR, "#answer-why li")  # the top contributing features
    assert 1 <= len(why) <= 5 and all(w.text.split()[0] in stack.get("/model").json()["example"] for w in why)
    pid = browser.find_element(By.CSS_SELECTOR, "#answer .meta").text.split("prediction ")[1]
    assert stack.get(f"/predictions/{pid}", key=stack.key_value()).json()["prediction"]["label"] == label
    browser.save_screenshot(str(SHOTS / "01-prediction.png"))


def test_an_input_unlike_the_training_data_is_said_with_the_answer(browser, page_url):
    """Issue 37: a value far from anything trained on (ash 9.5: the spec allows up to 10, training saw 1.36 to 3.23) was
    answered with no hint that the answer is an extrapolation."""
    open_page(browser, page_url)
    browser.find_element(By.ID, "example-button").click()
    field = browser.find_element(By.ID, "f-ash")
    field.clear()
    field.send_keys("9.5")
    browser.find_element(By.ID, "predict-button").click()
    note = wait(browser, ec.visibility_of_element_located((By.ID, "answer-unusual"))).text
    assert note.startswith("Unlike the training data") and "ash 9.5 is outside the range training saw" in note
    browser.find_element(By.ID, "answer").screenshot(str(SHOTS / "13-unusual-input.png"))


def test_a_bad_value_is_shown_on_its_field(browser, page_url):
    open_page(browser, page_url)
    field = browser.find_element(By.ID, "f-magnesium")
    field.clear()
    field.send_keys("-5")
    browser.find_element(By.ID, "predict-button").click()
    wait(browser, lambda d: d.find_element(By.ID, "f-magnesium").get_attribute("aria-invalid") == "true")
    assert browser.find_element(By.ID, "f-magnesium-error").text == "must be >= 0, got -5"
    assert "see the marked fields" in browser.find_element(By.ID, "answer-error").text
    browser.save_screenshot(str(SHOTS / "02-field-error.png"))


def test_upload_a_csv_and_see_the_table(browser, page_url, example, tmp_path):
    csv_file = tmp_path / "wines.csv"
    names = list(example)
    rows = [",".join(names)] + [",".join(str(example[n] + (i if n == "proline" else 0)) for n in names) for i in range(12)]
    csv_file.write_text("\n".join(rows) + "\n")
    open_page(browser, page_url)
    browser.find_element(By.ID, "batch-file").send_keys(str(csv_file))
    browser.find_element(By.ID, "batch-button").click()
    wait(browser, lambda d: d.find_element(By.ID, "batch-status").text == "12 records predicted.")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#batch-table tbody tr")) == 12
    assert browser.find_element(By.ID, "batch-download").is_enabled()
    browser.find_element(By.ID, "batch").screenshot(str(SHOTS / "03-batch.png"))


def test_the_batch_download_neutralises_cells_a_spreadsheet_would_run(browser, page_url, example, tmp_path):
    """Issue 52 (3): the page's batch download wrote a file's `=HYPERLINK(...)` column raw, and a spreadsheet ran it. A
    value starting with =, +, -, @ is written behind a quote; a number (-5 in a notes column) stays a number."""
    names = list(example)
    rows = [",".join([*names, "note"]), ",".join([*(str(example[n]) for n in names), '"=HYPERLINK(""http://x.example"",""y"")"']),
            ",".join([*(str(example[n]) for n in names), "-5"])]
    (tmp_path / "notes.csv").write_text("\n".join(rows) + "\n")
    for old in browser.downloads.glob("sommelier-predictions*.csv"):
        old.unlink()
    open_page(browser, page_url)
    browser.find_element(By.ID, "batch-file").send_keys(str(tmp_path / "notes.csv"))
    browser.find_element(By.ID, "batch-button").click()
    wait(browser, lambda d: d.find_element(By.ID, "batch-status").text == "2 records predicted.")
    browser.find_element(By.ID, "batch-download").click()
    saved = wait(browser, lambda d: next(browser.downloads.glob("sommelier-predictions*.csv"), None))
    import csv

    written = list(csv.DictReader(saved.read_text().splitlines()))
    assert [r["note"] for r in written] == ["'=HYPERLINK(\"http://x.example\",\"y\")", "-5"]


def test_a_download_cut_off_mid_row_loses_its_last_row_only_and_a_short_row_elsewhere_is_refused(browser, page_url, example, tmp_path):
    """The CLI's rule on the page (sommelier_contract.files.CsvRows): the page padded a short row with empty values and
    predicted it. Rows are numbered as the file has them, a blank line counted."""
    names = list(example)
    line = ",".join(str(example[n]) for n in names)
    cut = tmp_path / "cut.csv"
    cut.write_text("\n".join([",".join(names), line, "", line, line, line[:12]]))  # no line break after the cut row
    open_page(browser, page_url)
    browser.find_element(By.ID, "batch-file").send_keys(str(cut))
    browser.find_element(By.ID, "batch-button").click()
    status = wait(browser, lambda d: d.find_element(By.ID, "batch-status").text.startswith("3 records") and d.find_element(By.ID, "batch-status").text)
    assert status == ("3 records predicted. The last row, 6, stops part-way with no line break after it, as an interrupted "
                      "download ends: left out.")
    assert [r.find_element(By.TAG_NAME, "td").text for r in browser.find_elements(By.CSS_SELECTOR, "#batch-table tbody tr")] == ["2", "4", "5"]
    browser.find_element(By.ID, "batch").screenshot(str(SHOTS / "15-batch-cut-off-download.png"))
    short = tmp_path / "short.csv"
    short.write_text("\n".join([",".join(names), line, line[:12], line]) + "\n")
    browser.find_element(By.ID, "batch-file").send_keys(str(short))
    browser.find_element(By.ID, "batch-button").click()
    wait(browser, lambda d: d.find_element(By.ID, "batch-status").text.startswith("Row 3"))
    assert browser.find_element(By.ID, "batch-status").text == (
        f"Row 3 has {len(line[:12].split(','))} field(s), the header has {len(names)} (a line cut off or a stray comma?): "
        "nothing was predicted.")
    assert not browser.find_element(By.ID, "batch-table").is_displayed() and not browser.find_element(By.ID, "batch-download").is_enabled()


def test_history_and_feedback(browser, page_url, stack):
    open_page(browser, page_url)
    assert "made with this page's API key" in browser.find_element(By.ID, "history-whose").text  # whose they are (issue 37)
    row = wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#history-table tbody tr[data-id] select")))
    pid = row.find_element(By.XPATH, "./ancestor::tr").get_attribute("data-id")
    send = row.find_element(By.XPATH, "following-sibling::button")
    assert Select(row).first_selected_option.text == "choose…" and not send.is_enabled()  # no label is sent by default
    version = stack.get(f"/predictions/{pid}", key=stack.key_value()).json()["prediction"]["model_version"]
    assert row.find_element(By.XPATH, "./ancestor::tr/td[@class='version']").text == version
    # the label a person confirms: these tests predict the dataset's own rows, whose true class the model answers; a
    # wrong label joins the next training (the canary test's candidate moved with one: 0.945 against 0.972 in CI)
    label = row.find_element(By.XPATH, "./ancestor::tr/td[2]").text
    Select(row).select_by_value(label)
    row.find_element(By.XPATH, "following-sibling::button").click()
    wait(browser, lambda d: f"✓ {label}" in d.find_element(By.CSS_SELECTOR, f"tr[data-id='{pid}']").text)
    assert stack.get(f"/predictions/{pid}", key=stack.key_value()).json()["prediction"]["feedback"]["label"] == label
    assert browser.execute_script("return window.innerWidth") == 1280
    overflow = browser.execute_script("const t = document.getElementById('history-table'); return t.scrollWidth - t.parentElement.clientWidth")
    assert overflow <= 0, f"the history table is {overflow} px wider than its card at 1280 px"
    browser.find_element(By.ID, "history").screenshot(str(SHOTS / "04-history-feedback.png"))


def test_the_history_shows_the_predictions_of_a_key_it_is_given(browser, page_url, stack, example):
    """Issue 37 (4): ~360 predictions made with the CLI's demo key, and the page said "No predictions yet". Given that key,
    it lists them (and sends feedback with it); a wrong one is refused in words; an empty field goes back to its own."""
    answer = stack.post("/predict", {"features": example}).json()  # the stack's demo key, as the CLI has it
    made, label = answer["prediction_id"], answer["label"]  # the label confirmed below: a true one (test_history_and_feedback)
    open_page(browser, page_url)
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#history-table tbody tr, #history-table caption"))
    assert not browser.find_elements(By.CSS_SELECTOR, f"tr[data-id='{made}']")  # the page's own key does not see it
    key = browser.find_element(By.ID, "history-key")
    key.send_keys(stack.api_key)
    browser.find_element(By.ID, "history-key-show").click()
    row = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"tr[data-id='{made}']"))[0]
    assert f"(…{stack.api_key[-4:]})" in browser.find_element(By.ID, "history-whose").text
    assert stack.api_key not in browser.page_source  # the key is never shown whole
    Select(row.find_element(By.TAG_NAME, "select")).select_by_value(label)
    row.find_element(By.TAG_NAME, "button").click()
    wait(browser, lambda d: f"✓ {label}" in d.find_element(By.CSS_SELECTOR, f"tr[data-id='{made}']").text)
    assert stack.get(f"/predictions/{made}").json()["prediction"]["feedback"]["label"] == label
    browser.find_element(By.ID, "history").screenshot(str(SHOTS / "14-history-another-key.png"))
    key.clear()
    key.send_keys("not-a-key")
    browser.find_element(By.ID, "history-key-show").click()
    wait(browser, lambda d: "refused the key you gave" in d.find_element(By.ID, "history-table").text)
    key.clear()
    browser.find_element(By.ID, "history-key-show").click()
    wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, f"tr[data-id='{made}']") and "this page's API key"
         in d.find_element(By.ID, "history-whose").text)


def test_the_model_card_shows_metrics_and_the_confusion_matrix(browser, page_url, stack):
    open_page(browser, page_url)
    version = stack.get("/model").json()["version"]
    wait(browser, lambda d: version in d.find_element(By.ID, "model-version").text)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#model-card svg[aria-label^='confusion'] rect")) == 9  # 3 x 3 cells
    assert browser.find_elements(By.CSS_SELECTOR, "#cv-table tbody tr.winner")  # the candidates compared, the winner marked
    assert browser.find_element(By.ID, "gate-reason").text  # why it was promoted
    assert len(browser.find_elements(By.CSS_SELECTOR, "#importance-chart rect")) == 12  # the 12 most important of 13
    assert "recall" in browser.find_element(By.CSS_SELECTOR, "#per-class caption").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#per-class tbody tr")) == 3
    card = browser.find_element(By.ID, "model")
    browser.execute_script("arguments[0].scrollIntoView()", card)  # below the fold at 1280 px: a shot shows what is in view
    card.screenshot(str(SHOTS / "05-model-card.png"))


def test_charts_are_legible_and_the_page_has_an_icon(browser, page_url):
    open_page(browser, page_url)
    browser.find_element(By.ID, "example-button").click()
    browser.find_element(By.ID, "predict-button").click()
    wait(browser, ec.visibility_of_element_located((By.ID, "answer-label")))
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#model-card svg text"))
    # the size each chart label is drawn at, in CSS pixels (font size times the SVG's scale)
    sizes = browser.execute_script("""return [...document.querySelectorAll('#model-card svg text, #answer svg text')].map(
        t => [t.textContent, parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a])""")
    small = [(text, round(px, 1)) for text, px in sizes if px < 11]
    assert sizes and not small, f"chart labels under 11 px at 1280 px: {small[:5]}"
    # each confusion cell's number against its own cell: the colour drawn (computed, so a CSS rule cannot win unseen)
    cells = browser.execute_script("""return [...document.querySelectorAll("#model-card svg[aria-label^='confusion'] rect")].map(r => {
        const t = r.nextElementSibling; return [getComputedStyle(r).fill, getComputedStyle(t).fill]; })""")
    ratios = [contrast(parse_rgb(back), parse_rgb(ink)) for back, ink in cells]
    assert len(ratios) == 9 and min(ratios) >= 4.5, f"confusion cells below 4.5:1 contrast: {sorted(ratios)[:3]}"
    icon = browser.execute_script("return document.querySelector(\"link[rel='icon']\").href")
    assert requests.get(icon, timeout=5).status_code == 200 and requests.get(page_url + "favicon.ico", timeout=5).status_code == 200
    browser.find_element(By.CSS_SELECTOR, "#model .charts").screenshot(str(SHOTS / "08-charts.png"))


def parse_rgb(css: str) -> tuple[int, int, int]:
    r, g, b = (int(float(v)) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])
    return r, g, b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG 2 contrast ratio of two sRGB colours."""
    def luminance(rgb):
        c = [v / 255 for v in rgb]
        c = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_a_wrong_key_says_so(browser, serve_page, stack):
    open_page(browser, serve_page(API_URL=stack.api_url, API_KEY="not-a-key"))
    banner = wait(browser, ec.visibility_of_element_located((By.ID, "banner")))
    assert "refused this page's key (403)" in banner.text
    browser.save_screenshot(str(SHOTS / "06-wrong-key.png"))


def test_an_api_that_is_down_says_so(browser, serve_page):
    open_page(browser, serve_page(API_URL=f"http://127.0.0.1:{free_port()}/v1", API_KEY="k"))
    banner = wait(browser, ec.visibility_of_element_located((By.ID, "banner")))
    assert "cannot be reached" in banner.text


def test_usable_on_a_phone_sized_screen(browser, page_url):
    browser.set_window_size(390, 844)
    try:
        open_page(browser, page_url)
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        labels = browser.execute_script("return [...document.querySelectorAll('#fields input')].every(i => i.labels.length === 1)")
        assert labels, "every input has its label"
        browser.save_screenshot(str(SHOTS / "07-phone.png"))
    finally:
        browser.set_window_size(1280, 2000)


def test_the_page_uses_its_own_key_not_the_demo_key(stack, page_url):
    config = requests.get(page_url + "config.js", timeout=5).text
    assert stack.api_key not in config


def test_the_same_page_is_published_to_the_website_bucket(stack):
    s3, bucket = stack.client("s3"), stack.outputs["FrontendBucketName"]
    static = Path(__file__).resolve().parents[2] / "services/frontend/frontend/static"
    index = s3.get_object(Bucket=bucket, Key="index.html")
    assert index["ContentType"] == "text/html" and index["Body"].read() == (static / "index.html").read_bytes()
    assert s3.get_object(Bucket=bucket, Key="static/app.js")["Body"].read() == (static / "app.js").read_bytes()
    config = s3.get_object(Bucket=bucket, Key="config.js")["Body"].read().decode()
    assert stack.api_url in config and stack.api_key not in config


def test_the_monitoring_panel_shows_a_shifted_sample(browser, page_url, stack, training_rows, eventually):  # noqa: F811
    # GIVEN the champion's own training rows with every number x1.6, predicted, and a monitoring pass over them
    manifest, rows = training_rows
    since = _since()
    # (the page calls the API with a key of its own, and each key sees the monitoring of its own predictions only)
    page_key = json.loads(requests.get(page_url + "config.js", timeout=5).text.split("=", 1)[1].strip().rstrip(";"))["apiKey"]
    _predict(stack, eventually, _records(manifest, rows, scale=1.6), manifest["version"], key=page_key)
    made = _monitor(stack, since)
    report = stack.get("/monitoring", key=page_key).json()["report"]
    assert report["at"] == made["at"] and report["status"] == "ok" and report["drifted_features"], report["message"]
    # WHEN the page is opened
    open_page(browser, page_url)
    status = wait(browser, lambda d: d.find_element(By.ID, "monitoring-status").text.startswith("Drift in") and
                  d.find_element(By.ID, "monitoring-status"))
    # THEN it names the drifted features, draws them red against their threshold, and shows the class mix beside the holdout's
    assert status.text == "Drift in " + ", ".join(report["drifted_features"])
    red = browser.find_elements(By.CSS_SELECTOR, "#drift-chart g.drifted")
    assert sorted(g.get_attribute("data-feature") for g in red) == sorted(report["drifted_features"])
    assert len(browser.find_elements(By.CSS_SELECTOR, "#drift-chart g.feature")) == len(manifest["features"])
    assert browser.find_element(By.ID, "monitoring-message").text == report["message"]
    mix = browser.find_element(By.ID, "class-mix-chart").get_attribute("aria-label")
    assert all(c in mix for c in report["prediction_drift"]["classes"])
    browser.execute_script("document.getElementById('monitoring').scrollIntoView()")
    browser.find_element(By.ID, "monitoring").screenshot(str(SHOTS / "09-monitoring.png"))


# the reviews file's countries, longest names included: what a 15-class model's labels look like
COUNTRIES = ["US", "France", "Italy", "Spain", "Portugal", "Chile", "Argentina", "Austria", "Australia", "Germany", "New Zealand",
             "South Africa", "Israel", "Greece", "Canada"]


def _as_classes(docs: dict, classes: list[str]) -> dict:
    """The stack's own documents (its 3-class wine model: 13 features) told for `classes`: the confusion matrix, the
    per-class table, every probability and the monitoring class mix, in the shapes the API gave."""
    import random

    rng, n = random.Random(len(classes)), len(classes)

    def spread(top: str) -> dict[str, float]:
        weights = {c: (30.0 if c == top else rng.random()) for c in classes}
        return {c: round(w / sum(weights.values()), 4) for c, w in weights.items()}

    def told(record: dict) -> dict:
        label = rng.choice(classes)
        probabilities = spread(label)
        return {**record, "label": label, "probabilities": probabilities, "confidence": probabilities[label]}

    model = json.loads(json.dumps(docs["model"]))
    holdout = model["metrics"]["holdout"]
    matrix = [[40 + rng.randrange(160) if i == j else rng.choice([0, 0, 1, 3, 12]) for j in range(n)] for i in range(n)]
    holdout["confusion_matrix"] = {"labels": classes, "matrix": matrix}
    holdout["per_class"] = {c: {"precision": 0.9, "recall": 0.85, "f1": 0.87, "support": sum(matrix[i])} for i, c in enumerate(classes)}
    report = json.loads(json.dumps(docs["monitoring"]))
    mix = report["report"]["prediction_drift"]
    mix["baseline_classes"] = spread(classes[0])
    mix["classes"] = spread(classes[1])
    trend = report["report"].setdefault("trend", [])
    while len(trend) < 6:
        trend.append({**(trend[-1] if trend else {"at": report["report"]["at"]}), "estimated_accuracy": 0.8 + 0.02 * len(trend)})
    for point in trend:
        point["classes"] = spread(rng.choice(classes))
    return {"/model": model, "/monitoring": report,
            "/predictions": {**docs["predictions"], "predictions": [told(p) for p in docs["predictions"]["predictions"]]},
            "answer": told(docs["answer"]), "batch": {**docs["batch"], "predictions": [told(p) for p in docs["batch"]["predictions"]]}}


@pytest.fixture(scope="module")
def stack_documents(stack, page_url, training_rows, eventually):  # noqa: F811
    """What the API answers the page's key: the model, a prediction and a batch, the recent predictions and a monitoring
    report (a pass over the champion's own rows)."""
    manifest, rows = training_rows
    page_key = json.loads(requests.get(page_url + "config.js", timeout=5).text.split("=", 1)[1].strip().rstrip(";"))["apiKey"]
    records = _records(manifest, rows)
    since = _since()
    batch = _predict(stack, eventually, records, manifest["version"], key=page_key)
    made = _monitor(stack, since)
    assert made.get("prediction_drift"), made.get("message")
    batch["predictions"] = batch["predictions"][:12]  # the page's file below has 12 rows
    return {"model": stack.get("/model").json(), "answer": stack.post("/predict?explain=true", {"features": records[0]}, key=page_key).json(),
            "batch": batch, "predictions": stack.get("/predictions?limit=15", key=page_key).json(),
            "monitoring": stack.get("/monitoring", key=page_key).json()}


# every text the page shows at the size it is drawn (CSS font size times an SVG's scale), and each chart label's box
# against its chart's: what a reader sees, measured
MEASURE = """
const out = {small: [], clipped: [], pageWider: document.documentElement.scrollWidth - window.innerWidth};
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const parent = node.parentElement;
  if (!node.textContent.trim() || !parent.getClientRects().length || parent.closest("[hidden], option, script, title")) continue;
  const scale = parent instanceof SVGElement && parent.getScreenCTM() ? parent.getScreenCTM().a : 1;
  const px = parseFloat(getComputedStyle(parent).fontSize) * scale;
  if (px < 11) out.small.push([node.textContent.trim().slice(0, 30), Math.round(px * 10) / 10]);
}
for (const t of document.querySelectorAll("svg text")) {
  const box = t.getBoundingClientRect(), chart = t.ownerSVGElement.getBoundingClientRect();
  if (box.left < chart.left - 1 || box.right > chart.right + 1 || box.top < chart.top - 1 || box.bottom > chart.bottom + 1)
    out.clipped.push(t.textContent);
}
out.tables = [...document.querySelectorAll(".table-wrap")].filter((w) => w.getClientRects().length)
  .map((w) => [w.firstElementChild.id, w.scrollWidth - w.clientWidth]);
out.figures = [...document.querySelectorAll("figure")]
  .map((f) => [f.querySelector("svg").getAttribute("aria-label").slice(0, 20), f.scrollWidth - f.clientWidth]);
out.swatches = [...document.querySelectorAll("ul.legend .swatch")].map((s) => getComputedStyle(s).backgroundColor);
return out;
"""


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("n", [4, 15])
def test_every_panel_reads_at_any_width_for_any_number_of_classes(browser, serve_page, stack_documents, tmp_path, width, n):
    """Issue 37 (3): at 390 px the nav was cut and the charts shrank to ~5 px text; at 1280 px a 15-class confusion
    matrix clipped its turned headers ("New Zeal"), colours repeated and batch errors were one wall of text."""
    classes = COUNTRIES[:n]
    docs = _as_classes(stack_documents, classes)
    problem = {"error": {"code": "validation_error", "message": "2 instance(s) are invalid", "details": [
        {"field": "instances[0].proline", "message": "must be >= 0, got -5"}, {"field": "instances[3].hue", "message": "is required"}]},
        "request_id": "r"}
    api = RecordingApi(docs["/model"], {k: v for k, v in docs.items() if k.startswith("/")},
                       answers=[(200, docs["answer"]), (200, docs["batch"]), (400, problem)])
    rows = tmp_path / "rows.csv"
    names = [f["name"] for f in docs["/model"]["features"]]
    rows.write_text(",".join(names) + "\n" + "\n".join(",".join(str(docs["/model"]["example"][c]) for c in names) for _ in range(12)) + "\n")
    browser.set_window_size(width, 4000)  # tall, so each panel's shot holds all of it
    try:
        open_page(browser, serve_page(API_URL=api.url, API_KEY="k"))
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#monitoring-report figure") and d.find_elements(By.CSS_SELECTOR, "#history-table tbody tr"))
        browser.find_element(By.ID, "predict-button").click()
        wait(browser, ec.visibility_of_element_located((By.ID, "answer-label")))
        browser.find_element(By.ID, "batch-file").send_keys(str(rows))
        browser.find_element(By.ID, "batch-button").click()
        wait(browser, lambda d: d.find_element(By.ID, "batch-status").text == "12 records predicted.")
        seen = browser.execute_script(MEASURE)
        assert seen["pageWider"] <= 1, f"the page scrolls sideways by {seen['pageWider']} px at {width} px"
        assert not seen["small"], f"text under 11 px at {width} px: {seen['small'][:5]}"
        assert not seen["clipped"], f"chart labels cut off at {width} px: {seen['clipped'][:5]}"
        assert not [t for t in seen["tables"] if t[1] > 1], f"tables wider than their panel at {width} px: {seen['tables']}"
        wide = [f for f in seen["figures"] if f[1] > 1]  # a chart may scroll in its figure only on a phone: 15 columns of cells
        assert not wide if width >= 1280 else all(f[0].startswith("confusion") for f in wide), wide
        assert len(seen["swatches"]) == n and len(set(seen["swatches"])) == n, f"classes share a colour: {seen['swatches']}"
        headers = browser.find_elements(By.CSS_SELECTOR, "svg[aria-label^='confusion'] text")
        assert {"New Zealand", "South Africa"} <= {h.text for h in headers} or n < 15
        for panel in ("predict", "batch", "history", "model", "monitoring"):
            section = browser.find_element(By.ID, panel)
            browser.execute_script("arguments[0].scrollIntoView()", section)
            section.screenshot(str(SHOTS / f"layout-{width}px-{n}-classes-{panel}.png"))
        # a file with problems: each one on its own line, by row and column
        browser.find_element(By.ID, "batch-button").click()
        items = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#batch-errors li"))
        assert [i.text for i in items] == ["row 2, column proline: must be >= 0, got -5", "row 5, column hue: is required"]
        assert not browser.find_element(By.ID, "batch-table").is_displayed()  # the earlier file's results are not shown beside them
        assert not browser.find_element(By.ID, "batch-download").is_enabled()
        if n == 15:
            browser.find_element(By.ID, "batch").screenshot(str(SHOTS / f"layout-{width}px-batch-errors.png"))
    finally:
        browser.set_window_size(1280, 2000)
        api.server.shutdown()
