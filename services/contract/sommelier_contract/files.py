"""Files people bring, read as text or refused in one line that says why: never a decoding traceback.

A CSV or JSON file may arrive gzip-compressed (read transparently), as the one CSV of a zip archive, with a byte-order
mark (UTF-8 or UTF-16, as spreadsheet programs write them), with lines ended by CR alone (old Mac programs), or be
something else altogether (a picture, a workbook, a truncated download): those are refused with what they look like.
Standard library only: the CLI's predict path and the predictor's neighbours import it without pandas.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import math
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence

# what a few common non-text files start with, to say what a refused file looks like
_SIGNATURES = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"%PDF": "a PDF document",
    b"BZh": "a bzip2 archive",
    b"\xfd7zXZ": "an xz archive", b"7z\xbc\xaf": "a 7-Zip archive", b"\x7fELF": "a program",
}


class NotText(ValueError):
    """The file is not text this project can read; the message says what it looks like."""


# A compressed file is unpacked as a stream and refused, in words, as soon as it is larger than any data this project reads
# in one piece, or more compressed than data is: a 4.7 MB zip of 3 GiB of rows was unpacked whole and the process killed
# at 8 GiB, and a 122 KB zip of 10.5 million rows was accepted (issue 52). The whole public reviews file, 48 MB of CSV, zips
# to about 15 MB (3x); text rarely compresses past 20x, bombs do 1,000x.
MAX_UNPACKED = 512 * 2**20  # bytes a compressed file may unpack to
MAX_RATIO = 50  # ... and at most this many times its own size, beyond SMALL_UNPACKED
SMALL_UNPACKED = 32 * 2**20  # a file unpacking to less is read whatever its ratio (a small file of repeated rows)


def _unpacked(read: Callable[[int], bytes], packed: int, where: str) -> bytes:
    """What a compressed stream (its `read`) unpacks to, a megabyte at a time, refused (NotText) past the limits above."""
    limit = min(MAX_UNPACKED, max(SMALL_UNPACKED, packed * MAX_RATIO))
    out = bytearray()
    while chunk := read(2**20):
        out += chunk
        if len(out) > limit:
            raise NotText(f"{where} unpacks to more than {limit / 2**20:,.0f} MiB ({len(out) / max(packed, 1):,.0f} times its "
                          f"{packed / 2**20:,.1f} MiB, and more to come): larger, or more compressed, than any data this reads "
                          f"(at most {MAX_UNPACKED / 2**20:,.0f} MiB, {MAX_RATIO} times the file). If it really is your data, "
                          "split it or give it uncompressed")
    return bytes(out)


def _unzipped(body: bytes, where: str) -> bytes:
    """The one CSV file a zip archive holds (the public wine-reviews file is downloaded as one), else NotText saying what
    the archive holds: a workbook (.xlsx is a zip) or several files, one of which the person must choose."""
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/") and not n.startswith("__MACOSX/")]
            if "[Content_Types].xml" in names:
                raise NotText(f"{where} is a spreadsheet workbook (.xlsx or similar), not a CSV file: save it as CSV")
            csvs = [n for n in names if n.lower().endswith(".csv")]
            if len(csvs) != 1:
                held = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
                raise NotText(f"{where} is a zip archive of {len(names)} file(s) ({held or 'none'}), "
                              f"{'none' if not csvs else 'more than one'} of them a .csv: unzip it and give one CSV file")
            with archive.open(csvs[0]) as member:
                return _unpacked(member.read, len(body), where)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise NotText(f"{where} is a zip archive that cannot be read ({err}): is it complete?") from err


def decode(body: bytes, where: str) -> str:
    """The file's text: gzip undone, the one CSV of a zip archive taken, a BOM honoured (UTF-8, UTF-16), UTF-8
    otherwise."""
    if body[:4] == b"PK\x03\x04":
        body = _unzipped(body, where)
    if body[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(body)) as packed:
                body = _unpacked(packed.read, len(body), where)
        except (OSError, EOFError, zlib.error) as err:
            raise NotText(f"{where} is gzip-compressed but cannot be decompressed ({err}): is it complete?") from err
    for signature, what in _SIGNATURES.items():
        if body.startswith(signature):
            raise NotText(f"{where} is {what}, not a CSV or JSON text file")
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return body.decode("utf-16")
        except UnicodeDecodeError as err:
            raise NotText(f"{where} starts as UTF-16 text but byte {err.start} is not: is it complete?") from err
    if b"\x00" in body[:4096]:
        raise NotText(f"{where} holds binary data (NUL bytes), not a CSV or JSON text file")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        # not UTF-8: a spreadsheet program's Windows-1252 is the usual other (accents in names and notes)
        try:
            text = body.decode("cp1252")
        except UnicodeDecodeError:
            line = body[:err.start].count(b"\n") + 1
            raise NotText(f"{where} is neither UTF-8 nor Windows-1252 text: line {line} has byte 0x{body[err.start]:02x}; "
                          "save it as UTF-8 (most spreadsheet programs offer 'CSV UTF-8')") from err
    control = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\t\r\n")
    if control > len(text[:65536]) // 100:
        raise NotText(f"{where} holds binary data (control characters), not a CSV or JSON text file")
    if "\r" in text and "\n" not in text:  # lines ended by CR alone, as old Mac programs save CSV: read as lines
        return text.replace("\r", "\n")
    return text


# A cell a spreadsheet would run as a formula (OWASP, "CSV injection"): its first character. A text starting with one is
# written with a leading apostrophe, which spreadsheets show as text; so is a text starting with an apostrophe followed by
# one of them or by another apostrophe, so that reading undoes exactly what writing did. Numbers are written as numbers.
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """A value as the project writes it into a CSV: a text a spreadsheet would run (`=HYPERLINK(...)`, `@SUM(...)`, `-2+3`)
    behind an apostrophe; anything else as it is."""
    if isinstance(value, str) and value and not _number(value) and (value.startswith(FORMULA) or
                                                                    (value[0] == "'" and value[1:2] in (*FORMULA, "'"))):
        return "'" + value
    return value


def _number(text: str) -> bool:
    """A text that is a finite number ("-5", "+3.2e1"): a spreadsheet reads it as one, and so does the project."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def read_cell(text: str) -> str:
    """A cell of a CSV the project wrote, as it was before safe_cell (which never writes a number behind an apostrophe)."""
    return text[1:] if text[:1] == "'" and text[1:2] in (*FORMULA, "'") and not _number(text[1:]) else text


def row_key(fields: list[str]) -> str:
    """A data row's key: a hash of its fields as written (the dataset's evaluation rows are chosen by it, and
    `sommelier evaluate` knows the rows a model trained on by it), whatever types are later inferred."""
    return hashlib.sha1("\x1f".join(fields).encode()).hexdigest()[:20]


def wrong_width(number: int, fields: int, width: int) -> str:
    """A row whose field count is not the header's, in words, with the way out (dataset push, predict --file, evaluate)."""
    return (f"row {number} has {fields} field{'' if fields == 1 else 's'}, the header has {width} (a line cut off or a stray "
            "comma?); leave such rows out with --skip-bad-rows")


def ends_cut_off(text: str, fields: int, width: int) -> bool:
    """Whether the file's last row, of `fields` fields, is a download's cut-off end: fewer fields than the header's
    `width` and no line break after it (a file written whole ends its last row with one; one that was cut does not)."""
    return fields < width and not text.endswith(("\n", "\r"))


def cut_off_row(number: int) -> str:
    """What was done with a cut-off last row (ends_cut_off), in words: left out without being asked, and said."""
    return (f"the last row, {number}, stops part-way with no line break after it, as an interrupted download ends: left "
            "out (the rows before it are whole; check that the file is complete)")


class WrongWidth(ValueError):
    """A row whose field count is not the header's (wrong_width says which, and the way out)."""


class CsvRows:
    """The data rows of a CSV text as the csv module reads them, each with its number as a spreadsheet shows it (the
    header is row 1; blank lines are skipped), held to one rule for every reader of a file people bring (dataset push,
    the trainer, predict --file, evaluate): a row must have as many fields as the header. A cut-off last row
    (ends_cut_off) is left out whatever is asked and its number kept in `cut`; any other row of another width raises
    WrongWidth, or with `skip_bad_rows` is left out and its number kept in `bad`. csv.Error (a field beyond the csv
    module's limit) reaches the caller, `line_num` saying where."""

    def __init__(self, text: str, skip_bad_rows: bool = False):
        self.text = text
        self.skip_bad_rows = skip_bad_rows
        self._reader = csv.reader(io.StringIO(text))
        self.header: list[str] = next(self._reader, [])
        self.bad: list[int] = []
        self.cut: int | None = None

    @property
    def line_num(self) -> int:
        return self._reader.line_num

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        width = len(self.header)
        numbered = enumerate(self._reader, start=2)
        current = next(numbered, None)
        while current is not None:
            following = next(numbered, None)  # one row ahead: whether this one is the last
            number, row = current
            if row and len(row) != width:
                if following is None and ends_cut_off(self.text, len(row), width):
                    self.cut = number
                elif self.skip_bad_rows:
                    self.bad.append(number)
                else:
                    raise WrongWidth(wrong_width(number, len(row), width))
            elif row:
                yield number, row
            current = following


def left_out_rows(bad: Sequence[int], shown: int = 5) -> str:
    """What --skip-bad-rows left out: how many rows, and the first of their numbers."""
    return (f"{len(bad)} row(s) with the wrong number of fields left out (--skip-bad-rows): row "
            + ", ".join(map(str, bad[:shown])) + (" ..." if len(bad) > shown else ""))


def repeated_column(header: list[str]) -> str | None:
    """What is wrong with a header that names a column twice, or None: a CSV reader would rename one (pandas:
    `alcohol.1`) or keep only the last, and either way a value the person wrote is not the one used."""
    seen: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        key = name.strip()
        if key in seen and key:
            return (f"the header names column {key!r} twice (columns {seen[key]} and {i}); "
                    "rename or remove one of them")
        seen.setdefault(key, i)
    return None
