"""Files people bring to the CLI: read whatever their packaging (gzip, BOM, UTF-16, Windows-1252), or refused in one
line that says what is wrong, before anything is sent; never a traceback. Every command that takes a file is fed a
binary file and a truncated CSV."""

from __future__ import annotations

import codecs
import gzip

import pytest
from click.testing import CliRunner

from sommelier_client.cli import column_name, explanation_text, main
from sommelier_contract.files import NotText, decode

CSV = "country,description,price\nItaly,cherry and tar,20\nFrance,chalky and mineral,\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.mark.parametrize("body", [
    CSV.encode(), codecs.BOM_UTF8 + CSV.encode(), CSV.encode("utf-16"), gzip.compress(CSV.encode()), CSV.encode("cp1252"),
], ids=["utf-8", "utf-8 with BOM", "utf-16 with BOM", "gzip", "windows-1252"])
def test_text_is_read_whatever_its_packaging(body):
    assert decode(body, "f.csv") == CSV


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
    truncated = tmp_path / "cut.csv"
    truncated.write_text(CSV + "Spain,smoky")  # the last row stops half-way
    renamed = tmp_path / "shot.csv"
    renamed.write_bytes(PNG)  # a picture that claims to be a CSV
    return {"png": png, "truncated": truncated, "renamed": renamed}


COMMANDS = {
    "predict --file": lambda f: ["predict", "--file", str(f)],
    "evaluate": lambda f: ["evaluate", str(f), "--label", "country"],
    "dataset push --dry-run": lambda f: ["dataset", "push", str(f), "--name", "bad", "--target", "country", "--dry-run"],
    "dataset push": lambda f: ["dataset", "push", str(f), "--name", "bad", "--target", "country", "--bucket", "nowhere"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("kind, said", [("png", "is a PNG image"), ("renamed", "is a PNG image"), ("truncated", "row 4 has 2 fields")])
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


def test_skip_bad_rows_lets_predict_and_evaluate_read_a_cut_off_download_and_says_which_rows_it_left_out(tmp_path, capsys):
    """A real download ends mid-row: without the flag the row is named with the way out; with it, the row is left out
    and named on stderr, and every complete row is kept."""
    from sommelier_client import cli

    path = tmp_path / "cut.csv"
    path.write_text(CSV + "Spain,smoky")
    with pytest.raises(cli.InputError, match="row 4 has 2 fields, the header has 3 .*--skip-bad-rows"):
        cli._read_records(path)
    rows = cli._read_records(path, skip_bad_rows=True)
    assert len(rows) == len(CSV.strip().splitlines()) - 1 and all(len(r) == 3 for r in rows)
    assert "cut.csv: 1 row(s) with the wrong number of fields left out (--skip-bad-rows): row 4" in capsys.readouterr().err
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
