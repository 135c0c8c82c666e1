"""Files people bring to the CLI: read whatever their packaging (gzip, BOM, UTF-16, Windows-1252), or refused in one
line that says what is wrong, before anything is sent; never a traceback. Every command that takes a file is fed a
binary file and a CSV with a short row; a download's cut-off last row is left out and said."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zipfile
import zlib

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from sommelier_client.cli import column_name, explanation_text, main
from sommelier_contract.files import NotText, decode

CSV = "country,description,price\nItaly,cherry and tar,20\nFrance,chalky and mineral,\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.mark.parametrize("body", [
    CSV.encode(), codecs.BOM_UTF8 + CSV.encode(), CSV.encode("utf-16"), gzip.compress(CSV.encode()), CSV.encode("cp1252"),
], ids=["utf-8", "utf-8 with BOM", "utf-16 with BOM", "gzip", "windows-1252"])
def test_text_is_read_whatever_its_packaging(body):
    assert decode(body, "f.csv") == CSV


def test_lines_ended_by_cr_alone_are_read_as_lines(tmp_path):
    """Old Mac programs save CSV with CR line ends; the csv module refused them in its own words ("new-line character
    seen in unquoted field")."""
    from sommelier_client import cli

    assert decode(CSV.replace("\n", "\r").encode(), "f.csv") == CSV
    path = tmp_path / "mac.csv"
    path.write_bytes(CSV.replace("\n", "\r").encode())
    assert [r["country"] for r in cli._read_records(path)] == ["Italy", "France"]


def _zip(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def test_the_one_csv_of_a_zip_archive_is_read_as_the_download_comes(tmp_path):
    """The public wine-reviews file is downloaded as a zip; a macOS zip carries __MACOSX/ copies beside it."""
    from sommelier_client import cli
    from sommelier_contract.dataset import read_csv

    body = _zip({"winemag.csv": CSV.encode(), "__MACOSX/._winemag.csv": b"\x00\x05\x16\x07", "notes/": b""})
    assert decode(body, "w.zip") == CSV
    path = tmp_path / "winemag.zip"
    path.write_bytes(body)
    assert [r["country"] for r in cli._read_records(path)] == ["Italy", "France"]
    assert list(read_csv(body, "w.zip")["country"]) == ["Italy", "France"]


@pytest.mark.parametrize("members, said", [
    ({"a.csv": b"x\n", "b.csv": b"y\n"}, "a zip archive of 2 file(s) (a.csv, b.csv), more than one of them a .csv"),
    ({"readme.txt": b"x"}, "a zip archive of 1 file(s) (readme.txt), none of them a .csv"),
    ({"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>"}, "a spreadsheet workbook (.xlsx or similar), not a CSV file"),
], ids=["two csvs", "no csv", "xlsx"])
def test_a_zip_without_exactly_one_csv_is_refused_saying_what_it_holds(members, said):
    with pytest.raises(NotText, match=said.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        decode(_zip(members), "f.zip")


def test_a_cut_off_zip_is_refused_asking_whether_it_is_complete():
    body = _zip({"winemag.csv": CSV.encode() * 200})
    with pytest.raises(NotText, match="zip archive that cannot be read .*is it complete"):
        decode(body[: len(body) // 2], "f.zip")


def test_accents_in_windows_1252_survive():
    assert decode("Rosé,Côtes\n".encode("cp1252"), "f.csv") == "Rosé,Côtes\n"


@pytest.mark.parametrize("body, said", [
    (PNG, "f.csv is a PNG image"),
    (b"PK\x03\x04" + b"\x00" * 50, "zip archive"),
    (b"country,description\x00\x00\x00\x01\x02", "binary data"),
    (gzip.compress(CSV.encode())[:20], "gzip-compressed but cannot be decompressed"),
    (bytes(range(1, 32)) * 100, "binary data (control characters)"),
])
def test_what_is_not_text_is_refused_saying_what_it_looks_like(body, said):
    with pytest.raises(NotText, match=said.replace("(", r"\(").replace(")", r"\)")):
        decode(body, "f.csv")


def test_an_empty_header_is_never_printed_empty():
    assert column_name("", 0) == "the unnamed column 1" and column_name(" ") == "the unnamed column" and column_name("price") == "price"


def test_an_explanation_reads_as_one_line():
    text = explanation_text({"method": "linear", "top": [{"feature": "variety", "contribution": 0.51},
                                                         {"feature": "description", "term": "cherry", "contribution": -0.2}]})
    assert text == 'variety +0.510; description "cherry" -0.200'
    assert explanation_text(None) == ""


@pytest.fixture
def bad_files(tmp_path):
    png = tmp_path / "shot.png"
    png.write_bytes(PNG)
    short = tmp_path / "short.csv"
    short.write_text(CSV + "Spain,smoky\nChile,herbal,9\n")  # a row stops half-way, and more follow: not a cut-off end
    renamed = tmp_path / "shot.csv"
    renamed.write_bytes(PNG)  # a picture that claims to be a CSV
    return {"png": png, "short row": short, "renamed": renamed}


COMMANDS = {
    "predict --file": lambda f: ["predict", "--file", str(f)],
    "evaluate": lambda f: ["evaluate", str(f), "--label", "country"],
    "dataset push --dry-run": lambda f: ["dataset", "push", str(f), "--name", "bad", "--target", "country", "--dry-run"],
    "dataset push": lambda f: ["dataset", "push", str(f), "--name", "bad", "--target", "country", "--bucket", "nowhere"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("kind, said", [("png", "is a PNG image"), ("renamed", "is a PNG image"), ("short row", "row 4 has 2 fields")])
def test_every_command_that_takes_a_file_refuses_a_bad_one_in_one_line_before_sending_anything(
        command, kind, said, bad_files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stack around: a command that reached the API or S3 would fail otherwise
    monkeypatch.setenv("SOMMELIER_API_URL", "http://127.0.0.1:9")  # nothing listens: sending anything is exit 5
    monkeypatch.setenv("SOMMELIER_API_KEY", "k")
    result = CliRunner().invoke(main, COMMANDS[command](bad_files[kind]))
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and said in lines[0], result.output
    assert "Traceback" not in result.output


def test_a_file_without_a_column_the_model_needs_is_one_line_naming_it(tmp_path, monkeypatch):
    from sommelier_client import cli

    model = {"version": "v1", "features": [{"name": "description", "type": "text"}, {"name": "variety", "type": "categorical"},
                                           {"name": "price", "type": "numeric", "imputed": True}]}
    path = tmp_path / "no-variety.csv"
    path.write_text("description\ncherry\ntar\n")
    with pytest.raises(cli.InputError, match="no-variety.csv has no column 'variety'"):
        cli._file_records(path, cli._read_records(path), model)


def test_a_column_named_twice_is_refused_naming_it(tmp_path):
    """Issue 23: pandas renamed the second `alcohol` to `alcohol.1` and the API then required that name."""
    from sommelier_contract.dataset import DataError, read_csv

    body = "alcohol,ash,alcohol,cultivar\n13.2,2.1,13.4,class_0\n12.1,2.0,12.0,class_1\n"
    with pytest.raises(DataError, match=r"names column 'alcohol' twice \(columns 1 and 3\)"):
        read_csv(body.encode(), "wines.csv")
    path = tmp_path / "wines.csv"
    path.write_text(body)
    for command in (["predict", "--file", str(path)], ["evaluate", str(path), "--label", "cultivar"],
                    ["dataset", "push", str(path), "--name", "twice", "--target", "cultivar"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code != 0 and "names column 'alcohol' twice (columns 1 and 3)" in result.output, (command, result.output)
        assert "Traceback" not in result.output


def test_a_bom_does_not_hide_the_first_column_from_predict_or_evaluate(tmp_path):
    from sommelier_client.cli import _read_records

    path = tmp_path / "excel.csv"
    path.write_bytes(codecs.BOM_UTF8 + b"alcohol,ash\n13.2,2.1\n")
    assert _read_records(path) == [{"alcohol": "13.2", "ash": "2.1"}]


@pytest.mark.parametrize("ending, cut", [("Spain,smoky", True), ('Spain,"smoky and', True), ("Spain,smoky\n", False),
                                          ("Spain,smoky\nChile,herbal", False), ("Spain,smoky,9", False)],
                         ids=["cut mid-row", "cut in a quote", "short row, then a line break", "short row, then more", "whole"])
def test_a_download_cut_off_mid_row_loses_only_its_last_row_and_says_so(tmp_path, capsys, ending, cut):
    """A real download ends mid-row (no line break after it, fewer fields than the header): predict --file and evaluate
    leave that row out without being asked and say so on stderr; a short row that ends with a line break was written so
    and is refused, naming it and the way out; a whole last row without a line break is a row."""
    from sommelier_client import cli

    path = tmp_path / "cut.csv"
    path.write_text(CSV + ending)
    whole = len(CSV.strip().splitlines()) - 1
    if cut:
        rows = cli._read_records(path)
        assert len(rows) == whole and all(len(r) == 3 for r in rows)
        assert capsys.readouterr().err.strip() == ("cut.csv: the last row, 4, stops part-way with no line break after it, as an "
                                                   "interrupted download ends: left out (the rows before it are whole; check "
                                                   "that the file is complete)")
    elif ending.endswith("\n") or ending.count("\n"):
        with pytest.raises(cli.InputError, match="row 4 has 2 fields, the header has 3 .*--skip-bad-rows"):
            cli._read_records(path)
    else:
        assert cli._read_records(path)[-1] == {"country": "Spain", "description": "smoky", "price": "9"}
        assert capsys.readouterr().err == ""


def test_skip_bad_rows_leaves_out_short_rows_anywhere_and_says_which(tmp_path, capsys):
    from sommelier_client import cli

    path = tmp_path / "short.csv"
    path.write_text(CSV + "Spain,smoky\nChile,herbal,9\nPeru\n")
    rows = cli._read_records(path, skip_bad_rows=True)
    assert [r["country"] for r in rows] == ["Italy", "France", "Chile"]
    assert "short.csv: 2 row(s) with the wrong number of fields left out (--skip-bad-rows): row 4, 6" in capsys.readouterr().err
    result = CliRunner().invoke(main, ["predict", "--json", "{}", "--skip-bad-rows"])
    assert result.exit_code == 2 and "--skip-bad-rows is for --file" in result.output


def test_the_cli_finds_the_stack_a_make_up_with_a_state_dir_started(tmp_path, monkeypatch):
    """`SOMMELIER_STATE_DIR=/x make up` then `sommelier ...` in the same shell: the CLI reads /x/stack.json, as `make`
    does; SOMMELIER_STACK_INFO still wins."""
    from sommelier_client.client import find_connection

    monkeypatch.chdir(tmp_path)  # no .sommelier/ here or above
    for name in ("SOMMELIER_API_URL", "SOMMELIER_API_KEY", "SOMMELIER_STACK_INFO"):
        monkeypatch.delenv(name, raising=False)
    state = tmp_path / "state"
    state.mkdir()
    (state / "stack.json").write_text('{"api_url": "http://127.0.0.1:1/restapis/a/v1/_user_request_/", "api_key": "k1"}')
    monkeypatch.setenv("SOMMELIER_STATE_DIR", str(state))
    assert find_connection() == ("http://127.0.0.1:1/restapis/a/v1/_user_request_", "k1")
    other = tmp_path / "other.json"
    other.write_text('{"api_url": "http://127.0.0.1:2/x", "api_key": "k2"}')
    monkeypatch.setenv("SOMMELIER_STACK_INFO", str(other))
    assert find_connection() == ("http://127.0.0.1:2/x", "k2")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12) | st.sampled_from(["=HYPERLINK(\"http://x\",\"y\")", "=cmd|' /C calc'!A0", "@SUM(A1)", "+1+1", "-2+3",
                                               "'=x", "''", "'", "\t=1", "-5", "+3.2e1", "'-5", "=", "Hello"]))
def test_a_cell_the_project_writes_is_never_a_formula_and_reads_back_as_it_was(text):
    """Issue 52 (3): a value starting with =, +, -, @, tab or CR went raw into `predict --file --format csv`, `history
    --format csv` and the page's download, and a spreadsheet ran it (OWASP's CSV injection)."""
    from sommelier_contract.files import FORMULA, _number, read_cell, safe_cell

    written = safe_cell(text)
    assert read_cell(written) == text
    assert not (written.startswith(FORMULA) and not _number(written)), written
    assert safe_cell(3.5) == 3.5 and safe_cell(-2) == -2  # numbers stay numbers


def test_predictions_written_as_csv_are_safe_to_open_and_read_back_as_they_were(tmp_path, capsys):
    from sommelier_client.cli import _emit, _read_records

    rows = [{"description": "=HYPERLINK(\"http://evil\",\"click\")", "points": -5, "variety": "@SUM(A1)", "=label": "-2+3"}]
    _emit(rows, "csv")
    written = capsys.readouterr().out
    assert all(not cell.startswith(("=", "@", "+")) and not (cell.startswith("-") and cell not in ("-5",))
               for line in written.splitlines() for cell in next(csv.reader([line])))
    path = tmp_path / "predictions.csv"
    path.write_text(written)
    assert _read_records(path) == [{"description": "=HYPERLINK(\"http://evil\",\"click\")", "points": "-5", "variety": "@SUM(A1)",
                                    "=label": "-2+3"}]


def _gzip_of_zeros(mib: int) -> bytes:
    """A gzip of `mib` MiB of one repeated row, made a megabyte at a time (never held whole)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    row = b"1,2,3\n" * (2**20 // 6)
    return b"".join([packer.compress(row) for _ in range(mib)] + [packer.flush()])


@pytest.mark.parametrize("packing", ["gzip", "zip", "zip of a gzip"])
def test_a_decompression_bomb_is_refused_in_words_without_unpacking_it(packing):
    """Issue 52 (2): a 4.7 MB zip or gzip that unpacks to 3 GiB was unpacked whole (killed at 8 GiB), a 122 KB zip of 10.5
    million rows accepted. Unpacked as a stream, it is refused as soon as it passes the limits: here 250 MiB of rows that
    pack into a few hundred KB, read without ever holding more than the limit."""
    import resource

    if packing == "gzip":
        bomb = _gzip_of_zeros(250)
    elif packing == "zip":
        bomb = _zip_of_rows(250)
    else:  # the gzip inside, named as the CSV the zip should hold
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("rows.csv", _gzip_of_zeros(250))
        bomb = out.getvalue()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(NotText, match=r"unpacks to more than \d+ MiB \(\d+ times its 0\.\d MiB, and more to come\)"):
        decode(bomb, "bomb")
    grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # MiB
    assert grew < 200, grew


def _zip_of_rows(mib: int) -> bytes:
    out = io.BytesIO()
    row = b"1,2,3\n" * (2**20 // 6)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("rows.csv", "w") as member:
        for _ in range(mib):
            member.write(row)
    return out.getvalue()


def test_the_reviews_file_zipped_or_gzipped_is_still_read():
    """Real text packs 3-4 times (the whole 130,000-row file: 48 MB of CSV in a ~15 MB zip), far from the limits; 20,000
    rows of it here, packed as much."""
    from bench.reviews import generate

    body = generate(20_000)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("winemag-data-130k-v2.csv", body)
    assert len(body) / len(out.getvalue()) < 6
    assert decode(out.getvalue(), "reviews.zip") == decode(gzip.compress(body), "reviews.csv.gz") == body.decode()


class _AnsweringClient:
    """A stand-in for the API: a reviews model, and predictions that went without what each record left out."""

    FEATURES = [{"name": n, "type": t, "absent": True} for n, t in
                (("description", "text"), ("variety", "categorical"), ("winery", "categorical"))]

    def model(self):
        return {"version": "v1", "features": self.FEATURES}

    def predict_batch(self, records, explain=False):
        names = [f["name"] for f in self.FEATURES]
        return {"predictions": [{"label": "Chile", "confidence": 0.6, "probabilities": {"Chile": 0.6, "Spain": 0.4},
                                 "prediction_id": f"p{i}", **({"absent": went} if (went := [n for n in names if n not in r]) else {})}
                                for i, r in enumerate(records)]}


def test_predict_says_on_stderr_what_the_answer_went_without(tmp_path, monkeypatch):
    """Issue 50 (1): the API says which features a prediction went without; the table has no column for it, so the CLI
    says it beside the table, in words (one record), or how many records and an example (a file)."""
    from sommelier_client import cli

    monkeypatch.setattr(cli, "find_connection", lambda url, key: ("http://api", "key"))
    monkeypatch.setattr(cli, "Client", lambda url, key: _AnsweringClient())
    runner = CliRunner()
    one = runner.invoke(main, ["predict", "--json", '{"description": "cherry and tar"}'])
    assert one.exit_code == 0, one.output
    assert "answered without variety and winery (not given)" in one.stderr
    assert "answered without" not in one.stdout
    whole = runner.invoke(main, ["predict", "--json", '{"description": "tar", "variety": "Malbec", "winery": "Trapiche"}'])
    assert whole.exit_code == 0 and "answered without" not in whole.stderr
    path = tmp_path / "reviews.csv"
    path.write_text("description,variety\ncherry,Malbec\ntar,\n")  # a column missing is absent; a blank cell is empty
    many = runner.invoke(main, ["predict", "--file", str(path)])
    assert many.exit_code == 0, many.output
    assert "2 of 2 records were answered without some of the model's features (not given), e.g. record 0 without winery" in many.stderr


def test_sommelier_train_whose_answer_is_lost_says_what_is_not_known(monkeypatch):
    """Issue 52 (6): `sommelier train` killed with the emulator exited 5 'Connection was closed' though the version was
    written; the training may or may not have finished, and the message says so and where to look."""
    import boto3
    from botocore.exceptions import ConnectionClosedError

    class Lambda:
        def invoke(self, **_):
            raise ConnectionClosedError(endpoint_url="http://127.0.0.1:4566/2015-03-31/functions/trainer/invocations")

    monkeypatch.setattr(boto3, "client", lambda *a, **k: Lambda())
    result = CliRunner().invoke(main, ["train", "--function", "trainer", "--dataset", "reviews"])
    assert result.exit_code == 5
    assert "the connection was lost while trainer trained" in result.output
    assert "whether it wrote or promoted a version is not known here" in result.output and "make history" in result.output
    assert "Traceback" not in result.output
