"""A dataset: a CSV with a header and a spec (target, features with types, columns to ignore).

Reading is strict (every row as wide as the header), checks name the row and the column, and a
spec can be inferred from the data. The trainer, `sommelier dataset push` and the seeding hook
all go through here, so data refused at push would be refused at training, and the other way round.
Needs pandas: the predictor never imports this module.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sommelier_contract import columns, layout
from sommelier_contract.artifacts import read_json
from sommelier_contract.files import CsvRows, NotText, WrongWidth, cut_off_row, decode, left_out_rows, repeated_column, row_key
from sommelier_contract.manifest import Manifest
from sommelier_contract.records import TRAINABLE
from sommelier_contract.words import words

FEATURE_TYPES = {"numeric", "categorical", "text"}
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
MAX_CATEGORIES = 30  # a categorical feature with at most this many values lists them, and the API enforces the list
MAX_SUGGESTIONS = 50  # beyond that: the most frequent values, offered by the page but not enforced


class DataError(ValueError):
    """The data or its spec cannot be used; the message names the row, the column or the key."""


def check_name(name: str) -> str:
    if not NAME.match(name or ""):
        raise DataError(f"dataset name {name!r} must be 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
    return name


def check_spec(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise DataError("the spec must be a JSON object")
    for key in ("target", "features"):
        if key not in spec:
            raise DataError(f"the spec has no {key!r}")
    if not isinstance(spec["features"], list) or not spec["features"]:
        raise DataError("the spec's 'features' must be a non-empty list")
    seen = set()
    for i, f in enumerate(spec["features"]):
        if not isinstance(f, dict) or "name" not in f:
            raise DataError(f"spec feature #{i} has no name")
        if f.get("type") not in FEATURE_TYPES:
            raise DataError(f"spec feature {f['name']!r} has type {f.get('type')!r}; expected {words(sorted(FEATURE_TYPES), 'or')}")
        if f["name"] in seen or f["name"] == spec["target"]:
            raise DataError(f"spec feature {f['name']!r} is listed twice or is the target")
        if not isinstance(f.get("required", False), bool):
            raise DataError(f"spec feature {f['name']!r} has 'required': {f['required']!r}; expected true or false (the default: "
                            "a record may leave it out and the model answers without it)")
        seen.add(f["name"])
    ignore = spec.get("ignore", [])
    if not isinstance(ignore, list) or not all(isinstance(c, str) for c in ignore):
        raise DataError("the spec's 'ignore' must be a list of column names")
    clash = sorted(set(ignore) & (seen | {spec["target"]}))
    if clash:
        raise DataError(f"the spec's 'ignore' names feature or target column(s) {clash}")
    if spec.get("bad_rows", "refuse") not in ("refuse", "skip"):
        raise DataError(f"the spec's 'bad_rows' is {spec['bad_rows']!r}; expected 'refuse' (the default) or 'skip'")
    for seg in spec.get("segments", []):
        if not isinstance(seg, dict) or seg.get("feature") not in seen:
            raise DataError(f"spec segment {seg!r} does not name a feature of the spec")
    return spec


_UNNAMED = re.compile(r"^Unnamed: \d+$")  # pandas' name for a column with an empty header


def index_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that are a row index written out with the data: no header (pandas' `Unnamed: N`, or empty) and a
    whole number in every row, no two alike, in any order (ids of rows shuffled or sampled from a larger file
    are an index too, not a measurement): never features."""
    found = []
    for column in frame.columns:
        values = frame[column]
        if (_UNNAMED.match(str(column)) or not str(column).strip()) and pd.api.types.is_integer_dtype(values) \
                and len(values) and values.is_unique:
            found.append(column)
    return found


KEY_FORMAT = "csv-row-sha1"  # how row keys are made (evaluation.json records it)


def _scan(body: bytes, skip_bad_rows: bool = False, good: list[int] | None = None) -> tuple[str | None, list[str], list[int], int | None]:
    """One pass over the file under files.CsvRows' rule (a row has the header's field count; pandas would pad a short
    row silently): the first problem, a key per data row (a hash of its fields as written, so a row keeps its key
    whatever types are inferred and whatever a spec later ignores), the numbers of the rows `skip_bad_rows` left out,
    and the number of a cut-off last row, left out whatever is asked (`good`, when given, gets the numbers of the rows
    kept). Blank lines, which pandas skips, get no key."""
    good = [] if good is None else good
    keys: list[str] = []
    try:
        rows = CsvRows(body.decode("utf-8", errors="replace"), skip_bad_rows)
    except csv.Error as err:  # the header itself
        return f"line 1: {err}", keys, [], None
    repeated = repeated_column(rows.header)
    if repeated:
        return repeated, keys, rows.bad, None
    try:
        for number, row in rows:
            keys.append(row_key(row))
            good.append(number)
    except WrongWidth as err:
        return str(err), keys, rows.bad, None
    except csv.Error as err:  # e.g. a field beyond the csv module's size limit
        return f"line {rows.line_num}: {err}", keys, rows.bad, None
    return None, keys, rows.bad, rows.cut


def stored_keys(body: bytes, where: str) -> set[str]:
    """The row keys of a data file as stored (kept as sent: gzip, zip, UTF-16, ...), read as any file is."""
    return set(_scan(decode(body, where).encode(), True)[1])


def _without(body: bytes, bad: list[int]) -> bytes:
    """The file less the rows `bad` names (file row numbers as _scan counts them), written again by the csv module."""
    skip = set(bad)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for number, row in enumerate(csv.reader(io.StringIO(body.decode("utf-8", errors="replace"))), start=1):
        if row and number not in skip:
            writer.writerow(row)
    return out.getvalue().encode()


def read_rows(body: bytes, where: str, skip_bad_rows: bool = False) -> tuple[pd.DataFrame, list[str], list[int], int | None]:
    """A strict CSV read (every row has as many fields as the header, unless `skip_bad_rows` leaves out those that
    do not), a key per row, the numbers of the rows left out, and the number of a cut-off last row (left out too, see
    _scan). Row numbers in messages are the file's lines as a spreadsheet shows them (the header is row 1)."""
    try:
        body = decode(body, where).encode()  # gzip undone, a BOM or UTF-16 honoured; binary refused in words
    except NotText as err:
        raise DataError(str(err)) from err
    if not body.strip():
        raise DataError(f"{where} is empty")
    numbers: list[int] = []
    problem, keys, bad, cut = _scan(body, skip_bad_rows, numbers)
    if problem:
        raise DataError(f"{where} is not a readable CSV: {problem}")
    if bad or cut:
        body = _without(body, [*bad, *([cut] if cut else [])])
    try:
        frame = pd.read_csv(io.BytesIO(body), index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{where} is not a readable CSV: {err}") from err
    if len(frame) != len(keys):  # e.g. a quoted field spanning lines that the two readers split differently
        raise DataError(f"{where} is not a readable CSV: {len(frame)} rows parsed but {len(keys)} rows scanned")
    frame.index = pd.Index(numbers, name="row")  # each row's number in the file, for messages that name it
    return frame, keys, bad, cut


def read_csv(body: bytes, where: str, skip_bad_rows: bool = False) -> pd.DataFrame:
    return read_rows(body, where, skip_bad_rows)[0]


def _first(mask: pd.Series) -> int:
    """The file's row number of the first row `mask` marks (frames from read_rows are indexed by it)."""
    position = int(mask.to_numpy().argmax())
    return int(mask.index[position]) if mask.index.name == "row" else position + 2


def check_target(frame: pd.DataFrame, target: str) -> None:
    if target not in frame.columns:
        raise DataError(f"the target column {target!r} is not in the data; its columns are {words(frame.columns)}")
    classes = frame[target][~no_target(frame, target)].astype(str).unique()
    if not len(classes):
        raise DataError(f"the target column {target!r} is empty in every row")
    if len(classes) < 2:
        raise DataError(f"the target column {target!r} has a single class ({classes[0]!r}); a classifier needs at least two")


def _empty(values: pd.Series) -> pd.Series:
    """Cells with nothing in them: missing, or only white space."""
    return values.isna() | (values.astype("string").str.strip() == "")


def no_target(frame: pd.DataFrame, target: str) -> pd.Series:
    """The rows whose target is empty: nothing to learn from, left out (and counted) wherever data is read."""
    return _empty(frame[target])


def check_frame(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """Columns as the spec declares them, values of the declared types; returns the frame with numeric
    columns as floats, other features as strings ("" for empty) and the target as strings."""
    if frame.empty:
        raise DataError("the data has no rows")
    frame = frame.drop(columns=[c for c in [*spec.get("ignore", []), *index_columns(frame)] if c in frame.columns])
    wanted = [f["name"] for f in spec["features"]] + [spec["target"]]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(f"the data lacks column(s) {words(missing)} that the spec declares; it has {words(frame.columns)}")
    extra = [c for c in frame.columns if c not in wanted]
    if extra:
        raise DataError(f"the data has column(s) {words(extra)} that the spec does not declare (list them under \"ignore\" to leave them out)")
    check_target(frame, spec["target"])
    empty = no_target(frame, spec["target"])
    if empty.any():  # admit() leaves these out before it checks
        raise DataError(f"row {_first(empty)}: the target column {spec['target']!r} is empty ({int(empty.sum())} row(s) like it)")
    frame = frame[wanted].copy()
    for f in spec["features"]:
        name = f["name"]
        if f["type"] == "numeric":
            values = pd.to_numeric(frame[name], errors="coerce")
            bad = values.isna() & frame[name].notna()
            if bad.any():
                raise DataError(f"row {_first(bad)}, column {name!r}: the spec says numeric but the value is {frame[name][bad].iloc[0]!r}")
            huge = ~(values.abs() <= TRAINABLE) & values.notna()
            if huge.any():
                raise DataError(f"row {_first(huge)}, column {name!r}: {values[huge].iloc[0]:g} is beyond what can be trained on "
                                f"(at most {TRAINABLE:g} either side of 0)")
            lo, hi = f.get("minimum"), f.get("maximum")
            for bound, outside in (("minimum", values < (-math.inf if lo is None else lo)), ("maximum", values > (math.inf if hi is None else hi))):
                if outside.any():
                    raise DataError(f"row {_first(outside)}, column {name!r}: {values[outside].iloc[0]:g} is outside the spec's "
                                    f"{bound} {f[bound]:g}")
            frame[name] = values.astype(float)
        else:
            frame[name] = frame[name].astype("string").fillna("").astype(object)
            if f.get("categories"):
                unknown = (frame[name] != "") & ~frame[name].isin([str(c) for c in f["categories"]])
                if unknown.any():
                    raise DataError(f"row {_first(unknown)}, column {name!r}: {frame[name][unknown].iloc[0]!r} is not one of the "
                                    f"spec's categories")
    frame[spec["target"]] = frame[spec["target"]].astype(str)
    return frame


MIN_CLASS_ROWS = 7  # rows a class needs for the trainer's 5-fold comparison and a holdout (its default folds + 2)
OTHER = "Other"  # the class that classes too small to learn on their own are grouped into


@dataclass(frozen=True)
class Admitted:
    """The rows a dataset version trains on, and every decision taken on the way, in words and in numbers."""

    frame: pd.DataFrame  # check_frame's: declared columns, typed values, small classes grouped
    keys: list[str]  # one per frame row
    notes: list[str] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)  # why -> rows
    grouped: dict[str, int] = field(default_factory=dict)  # class -> rows, now answered as OTHER
    gaps: list[str] = field(default_factory=list)  # features with a missing value in some row of the file, kept or not


def _listing(counts: dict[str, int], most: int = 8) -> str:
    shown = ", ".join(f"{c} {n}" for c, n in list(counts.items())[:most])
    return shown + (f" and {len(counts) - most} more" if len(counts) > most else "")


def admit(frame: pd.DataFrame, keys: list[str], spec: dict[str, Any], bad_rows: list[int] | tuple[int, ...] = (),
          min_class_rows: int = MIN_CLASS_ROWS, cut_row: int | None = None) -> Admitted:
    """The one check of what a dataset trains on: `dataset push` stores what passes it and the trainer reads the
    stored version through it again, so push never accepts what training refuses.

    Rows with an empty target are left out and counted (nothing to learn from them). Classes with fewer than
    `min_class_rows` rows, too few for every cross-validation fold and the holdout to see one, are grouped into
    one class, OTHER, when together they have enough rows (the model then answers "Other" for a country it could
    not learn on its own), else left out, named and counted. Everything else is check_frame's."""
    target = spec["target"]
    if target not in frame.columns:
        check_target(frame, target)
    notes: list[str] = []
    left_out: dict[str, int] = {}
    gaps = [f["name"] for f in spec["features"] if f["name"] in frame.columns and _empty(frame[f["name"]]).any()]
    if cut_row:
        left_out["cut-off last row"] = 1
        notes.append(cut_off_row(cut_row))
    if bad_rows:
        left_out["bad rows"] = len(bad_rows)
        notes.append(left_out_rows(bad_rows))
    empty = no_target(frame, target)
    if empty.any():
        left_out["no target"] = int(empty.sum())
        notes.append(f"{int(empty.sum())} row(s) with no {target!r} left out (the first is row {_first(empty)})")
        frame, keys = frame[~empty], [k for k, e in zip(keys, empty, strict=True) if not e]
    checked = check_frame(frame, spec)
    counts = checked[target].value_counts()
    small = {str(c): int(n) for c, n in counts.items() if n < min_class_rows and c != OTHER}
    grouped: dict[str, int] = {}
    if small:
        rows = sum(small.values())
        together = rows + int(counts.get(OTHER, 0))
        is_small = checked[target].isin(list(small)).to_numpy()
        if together >= min_class_rows and len(counts) - len(small) >= 1:
            grouped = small
            checked.loc[is_small, target] = OTHER
            notes.append(f"{len(small)} class(es) with fewer than {min_class_rows} rows each ({_listing(small)}) grouped as "
                         f"{OTHER!r}: {rows} row{'' if rows == 1 else 's'} the model learns as one class and answers {OTHER!r} for")
        else:
            left_out["classes too small"] = rows
            notes.append(f"{len(small)} class(es) with fewer than {min_class_rows} rows each ({_listing(small)}) left out: "
                         f"{rows} row{'' if rows == 1 else 's'}, too few to learn even grouped together")
            checked, keys = checked[~is_small], [k for k, s in zip(keys, is_small, strict=True) if not s]
    if checked.empty:  # every class too small: nothing is left to name
        raise DataError(f"no class of {target!r} has {min_class_rows} rows or more ({_listing(small)}); a classifier needs at least two "
                        "classes that do")
    if checked[target].nunique() < 2:
        raise DataError(f"the target column {target!r} has a single class a model can learn ({checked[target].iloc[0]!r}); "
                        "a classifier needs at least two")
    return Admitted(frame=checked, keys=list(keys), notes=notes, left_out=left_out, grouped=grouped, gaps=gaps)


def _is_text(values: pd.Series) -> bool:
    """Free text rather than a label: four or more words per value on average (labels rarely have that many),
    or long values that are mostly distinct."""
    words = values.str.split().str.len().mean()
    return bool(words >= 4 or (values.str.len().mean() > 30 and values.nunique() > 0.5 * len(values)))


def _nice(x: float) -> float:
    if x == 0 or not math.isfinite(x):
        return 0.0
    step = 10 ** math.floor(math.log10(abs(x)))
    return float(round(x / step * 2) / 2 * step)  # to a half of its leading digit: 23.7 -> 25, 0.413 -> 0.4


def _above(x: float) -> float:
    """The first round number (a half of x's leading digit) at or above x: 5100 -> 5500, 0.43 -> 0.45, -120 -> -100."""
    if x == 0:
        return 0.0
    step = 10 ** math.floor(math.log10(abs(x))) / 2
    return float(math.ceil(x / step) * step)


def span(lo: float, hi: float) -> float:
    """The width of a numeric column's observed range, by which bounds and screens widen it: its size, or (every row
    had one value) that value's size, at least 1."""
    return hi - lo or max(abs(hi), 1.0)


def bounds(lo: float, hi: float) -> dict[str, float]:
    """The range the API accepts for a number observed from `lo` to `hi`: the observed range widened by its own width
    on each side (by its size, or 1, when every row had one value), rounded out; never below 0 for a column that was
    never negative (a count, a price, a concentration). A value far outside what was trained on is refused naming
    its field, rather than answered by extrapolation."""
    width = span(lo, hi)
    return {"minimum": 0 if lo >= 0 else -_above(width - lo), "maximum": _above(hi + width)}


def infer_spec(frame: pd.DataFrame, name: str, target: str, ignore: list[str] | tuple[str, ...] = (),
               description: str | None = None) -> dict[str, Any]:
    """A spec from the data: a type per column, observed ranges, known categories, an example record,
    suggested segments. Index columns and `ignore`d ones are left out (and listed under "ignore")."""
    missing = [c for c in ignore if c not in frame.columns]
    if missing:
        raise DataError(f"--ignore names column(s) {words(missing)} that are not in the data; its columns are {words(frame.columns)}")
    check_target(frame, target)
    frame = frame[~no_target(frame, target)]
    why = {str(c): "a row index written with the data" for c in index_columns(frame)}
    strings = frame[[c for c in frame.columns if pd.api.types.is_string_dtype(frame[c]) and c != target]]
    for column in frame.columns:
        if column != target and column not in ignore and str(column) not in why:
            reason = columns.identifier(str(column), frame[column], strings.drop(columns=[column], errors="ignore"))
            if reason:
                why[str(column)] = reason
    if len(why) + len(ignore) >= len(frame.columns) - 1:  # keep something to learn from: identifiers only when others remain
        why = {c: r for c, r in why.items() if r.startswith("a row index")}
    dropped = [*why, *ignore]
    features: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    complete = frame.drop(columns=dropped).dropna()
    example_row = complete.iloc[0] if len(complete) else None
    for column in frame.columns:
        if column in dropped or column == target:
            continue
        values = frame[column]
        present = values.dropna()
        if present.empty:
            raise DataError(f"column {column!r} has no values in any row; leave it out with --ignore {column}")
        numbers = pd.to_numeric(present, errors="coerce")
        feature: dict[str, Any] = {"name": str(column), "label": str(column).replace("_", " ").capitalize()}
        if numbers.notna().all() and not pd.api.types.is_bool_dtype(values):
            lo, hi = float(numbers.min()), float(numbers.max())
            feature |= {"type": "numeric", "observed": {"min": lo, "max": hi, "missing": int(values.isna().sum())}}
            feature |= bounds(lo, hi)
            quartiles = sorted({_nice(q) for q in numbers.quantile([0.25, 0.5, 0.75])})
            if len(segments) < 3 and len(quartiles) >= 2 and numbers.nunique() > 10:
                segments.append({"name": f"{column}_range", "feature": str(column), "edges": quartiles})
        else:
            strings = present.astype(str)
            if _is_text(strings):
                feature |= {"type": "text", "max_length": int(max(5000, strings.str.len().max() * 2))}
            else:
                counts = strings.value_counts()
                feature["type"] = "categorical"
                if len(counts) <= MAX_CATEGORIES:
                    feature["categories"] = sorted(counts.index.tolist())
                    if len(segments) < 3 and len(counts) <= 12:
                        segments.append({"name": str(column), "feature": str(column)})
                else:
                    feature["suggestions"] = counts.index[:MAX_SUGGESTIONS].tolist()
                feature = columns.bounded(feature, len(counts))
                feature["observed"] = {"distinct": int(len(counts)), "missing": int(values.isna().sum())}
        if example_row is not None:
            value = example_row[column]
            feature["example"] = float(value) if feature["type"] == "numeric" else str(value)
        features.append(feature)
    if not features:
        raise DataError(f"the data has no column to learn from besides the target {target!r}")
    spec: dict[str, Any] = {"name": name, "description": description or f"{name}: predicts {target} from {len(features)} column(s)",
            "target": target, "features": features, "segments": segments}
    if dropped:
        spec["ignore"] = [str(c) for c in dropped]
    if why:
        spec["ignored_because"] = why  # said in the push summary; `--spec` with the column as a feature overrides it
    return check_spec(spec)


def describe(frame: pd.DataFrame, spec: dict[str, Any]) -> dict[str, Any]:
    """What `dataset show` prints: rows, classes and their counts, and missing values per feature."""
    counts = frame[spec["target"]].value_counts()
    empty = {f["name"]: int((frame[f["name"]].isna() | (frame[f["name"]] == "")).sum()) for f in spec["features"] if f["name"] in frame.columns}
    return {"rows": int(len(frame)), "classes": {str(k): int(v) for k, v in counts.items()},
            "missing": {name: n for name, n in empty.items() if n}}


# --- in the dataset bucket ------------------------------------------------------------------------

EVALUATION_FRACTION = 0.2


def _rank(key: str) -> str:
    return hashlib.sha1(("evaluation:" + key).encode()).hexdigest()


def choose_evaluation(keys: list[str], labels: list[str], fraction: float) -> set[str]:
    """A stratified, deterministic choice of evaluation rows: in each class, the `fraction` of rows whose
    keys hash lowest (at least one for a class of two or more), so the same rows are chosen on every run."""
    by_class: dict[str, list[str]] = {}
    for key, label in zip(keys, labels, strict=True):
        by_class.setdefault(label, []).append(key)
    chosen: set[str] = set()
    for members in by_class.values():
        members = sorted(set(members), key=_rank)
        take = max(1, round(fraction * len(members))) if len(members) >= 2 else 0
        chosen.update(members[:take])
    return chosen


def _put(s3, bucket: str, key: str, body: bytes, content_type: str) -> dict[str, Any]:
    digest = hashlib.sha256(body).hexdigest()
    resp = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata={"sha256": digest})
    return {"bucket": bucket, "key": key, "version_id": resp.get("VersionId"), "sha256": digest}


def read_evaluation(s3, bucket: str, prefix: str) -> dict[str, Any] | None:
    """The dataset's frozen evaluation rows, or None when there are none, or none whose keys are made as ours are."""
    evaluation = read_json(s3, bucket, layout.evaluation_key(prefix))
    return evaluation if evaluation is not None and evaluation.get("key_format") == KEY_FORMAT else None


def new_evaluation(keys: list[str], labels: list[str], fraction: float, now: str) -> dict[str, Any]:
    """evaluation.json for rows chosen now (stratified, deterministic: `choose_evaluation`)."""
    chosen = choose_evaluation(keys, labels, fraction)
    return {"created_at": now, "fraction": fraction, "key_format": KEY_FORMAT, "rows": len(chosen), "keys": sorted(chosen)}


def current(s3, bucket: str, prefix: str) -> dict[str, Any] | None:
    """The dataset's pointer (current.json: its version number and file keys), or None for one never pushed:
    then its files are <prefix>/data.csv and spec.json (how the deploy seeds the default dataset)."""
    return read_json(s3, bucket, layout.current_key(prefix))


def files(s3, bucket: str, prefix: str) -> tuple[dict[str, Any] | None, str, str]:
    pointer = current(s3, bucket, prefix)
    if pointer:
        return pointer, pointer["data"]["key"], pointer["spec"]["key"]
    return None, layout.data_key(prefix), layout.spec_key(prefix)


@dataclass(frozen=True)
class Accepted:
    """A file as `dataset push` takes it: its spec, the rows training will use, and the likely proxies of the target
    (with a quick estimate of the accuracy with and without them)."""

    name: str
    body: bytes  # the file as sent: what is stored
    spec: dict[str, Any]
    admitted: Admitted
    proxies: list[columns.Proxy] = field(default_factory=list)
    estimate: dict[str, float] | None = None
    gaps: list[columns.TellingGap] = field(default_factory=list)  # columns whose emptiness gives the target away
    gaps_estimate: dict[str, float] | None = None  # with their emptiness, and with it read as not given

    def report(self) -> dict[str, Any]:
        return _report(self.spec, self.admitted, [p.as_dict() for p in self.proxies], self.estimate,
                       [g.as_dict() for g in self.gaps], self.gaps_estimate)


def _report(spec: dict[str, Any], admitted: Admitted, proxies: list[dict[str, Any]], estimate: dict[str, float] | None,
            gaps: list[dict[str, Any]] | None = None, gaps_estimate: dict[str, float] | None = None) -> dict[str, Any]:
    """What was decided about a dataset version, as push says it and the pointer records it."""
    return {"notes": admitted.notes, "left_out": admitted.left_out, "grouped": admitted.grouped,
            "ignored_because": spec.get("ignored_because", {}), "proxies": proxies, "estimate": estimate,
            "gaps": gaps or [], "gaps_estimate": gaps_estimate}


def accept(body: bytes, name: str, spec: dict[str, Any] | None, target: str | None, ignore: list[str] | tuple[str, ...] = (),
           description: str | None = None, skip_bad_rows: bool = False) -> Accepted:
    """What `dataset push` (and its dry run) checks before anything is stored: the file, the spec (given or inferred),
    the rows the trainer will train on (admit) and the columns that give the target away."""
    check_name(name)
    frame, keys, bad, cut = read_rows(body, "the file", skip_bad_rows)
    if spec is None:
        if not target:
            raise DataError("give --target COLUMN (the column to predict) or --spec FILE")
        spec = infer_spec(frame, name, target, ignore, description)
    else:
        spec = check_spec({**spec, "name": name, **({"ignore": sorted({*spec.get("ignore", []), *ignore})} if ignore else {})})
        if target and target != spec["target"]:
            raise DataError(f"--target {target!r} disagrees with the spec's target {spec['target']!r}")
    if skip_bad_rows:
        spec = {**spec, "bad_rows": "skip"}  # the trainer reads the stored file as push did
    admitted = admit(frame, keys, spec, bad, cut_row=cut)
    if not choose_evaluation(admitted.keys, admitted.frame[spec["target"]].astype(str).tolist(), EVALUATION_FRACTION):
        raise DataError(f"no class has two different rows ({len(set(admitted.keys)):,} different row(s) in {len(admitted.keys):,}), "
                        "so none can be kept aside to evaluate a model on: a file of one row repeated cannot train a model")
    found = columns.proxies(admitted.frame, spec)
    gaps = columns.telling_gaps(admitted.frame, spec)
    variants = {**({"proxies": ([p.column for p in found], [])} if found else {}),
                **({"gaps": ([], [g.column for g in gaps])} if gaps else {})}
    scores = columns.estimate(admitted.frame, spec, variants) if variants else None  # the score with every feature once
    estimate = {"with": scores["with"], "without": scores["proxies"]} if scores and found else None
    gaps_estimate = {"with": scores["with"], "without": scores["gaps"]} if scores and gaps else None
    return Accepted(name=name, body=body, spec=spec, admitted=admitted, proxies=found, estimate=estimate, gaps=gaps,
                    gaps_estimate=gaps_estimate)


def push(s3, bucket: str, name: str, body: bytes, spec: dict[str, Any] | None, target: str | None,
         ignore: list[str] | tuple[str, ...] = (), description: str | None = None, now: str = "",
         skip_bad_rows: bool = False) -> dict[str, Any]:
    """Check (accept) and store (store) a new version of dataset `name`."""
    return store(s3, bucket, accept(body, name, spec, target, ignore, description, skip_bad_rows), now)


def store(s3, bucket: str, accepted: Accepted, now: str = "") -> dict[str, Any]:
    """Store a file `accept` took as a new version of its dataset: its data and spec in their own folder, the
    evaluation rows extended to the new rows, then the pointer. A crash before the pointer leaves the previous
    version current."""
    name, body, spec, checked, keys = accepted.name, accepted.body, accepted.spec, accepted.admitted.frame, accepted.admitted.keys
    summary = describe(checked, spec)
    prefix = layout.dataset_prefix(name)
    previous, old_data_key, _ = files(s3, bucket, prefix)
    number = (previous["version"] if previous else 0) + 1
    evaluation = read_evaluation(s3, bucket, prefix)  # keys made another way cannot be matched: then choose again
    labels = checked[spec["target"]].tolist()
    if evaluation is None:
        evaluation, added = new_evaluation(keys, labels, EVALUATION_FRACTION, now), None
        chosen = set(evaluation["keys"])
    else:  # rows that are new in this version join the evaluation rows in the same proportion; old choices stand
        try:
            old = stored_keys(s3.get_object(Bucket=bucket, Key=old_data_key)["Body"].read(), old_data_key)
        except s3.exceptions.NoSuchKey:  # the previous data is gone: every row counts as new
            old = set()
        fresh = [(k, y) for k, y in zip(keys, labels, strict=True) if k not in old]
        chosen = choose_evaluation([k for k, _ in fresh], [y for _, y in fresh], float(evaluation.get("fraction", EVALUATION_FRACTION)))
        added = len(chosen)
    evaluation["keys"] = sorted(set(evaluation["keys"]) | chosen)
    held = evaluation_rows(keys, evaluation)
    evaluation.update({"rows": held, "updated_at": now, "dataset_version": number})
    folder = layout.version_folder(prefix, number)
    data_src = _put(s3, bucket, layout.data_key(folder), body, "text/csv")
    spec_src = _put(s3, bucket, layout.spec_key(folder), json.dumps(spec, indent=2).encode(), "application/json")
    _put(s3, bucket, layout.evaluation_key(prefix), json.dumps(evaluation).encode(), "application/json")
    pointer = {"name": name, "version": number, "pushed_at": now, "data": data_src, "spec": spec_src, "target": spec["target"],
               "rows": summary["rows"], "classes": summary["classes"], "evaluation_rows": held,
               "evaluation_rows_added": added, "previous": previous["version"] if previous else None, **accepted.report()}
    _put(s3, bucket, layout.current_key(prefix), json.dumps(pointer, indent=2).encode(), "application/json")
    return {**pointer, "spec": spec, "missing": summary["missing"]}


def names(s3, bucket: str) -> list[str]:
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=layout.DATASETS, Delimiter="/"):
        found += [cp["Prefix"][len(layout.DATASETS):].rstrip("/") for cp in page.get("CommonPrefixes", [])]
    return sorted(found)


def evaluation_rows(keys: list[str], evaluation: dict[str, Any] | None) -> int:
    """How many of the rows (their keys, a row repeated in the file counted each time) are evaluation rows: as the
    trainer holds them out (a row's key decides), so push, the trainer and `dataset show` say the same number."""
    chosen = set((evaluation or {}).get("keys", []))
    return sum(1 for k in keys if k in chosen)


def trained_keys(s3, manifest: Manifest) -> set[str]:
    """The keys of the dataset rows a model was trained on: the rows of the version it read as the trainer admitted them
    (rows with no target, for one, never were) less the dataset's frozen evaluation rows. Feedback rows, which join
    training too, are not among them."""
    info = manifest.dataset
    read = {}
    for source in info.sources:
        extra = {"VersionId": source["version_id"]} if source.get("version_id") else {}
        read[source.get("key", "")] = s3.get_object(Bucket=source["bucket"], Key=source["key"], **extra)["Body"].read()
    data = next((k for k in read if not k.endswith(".json")), None)
    spec_key = next((k for k in read if k.endswith(".json")), None)
    if data is None:
        return set()
    if spec_key is None:  # a version read before the spec was recorded with it: every row of its file
        keys = stored_keys(read[data], data)
    else:
        folds = int((manifest.reproduce or {}).get("cv_folds", MIN_CLASS_ROWS - 2))  # the trainer admits with its folds + 2
        keys = set(_admitted(read[spec_key], spec_key, read[data], data, folds + 2)[1].keys)
    evaluation = read_evaluation(s3, (info.sources or [{}])[0].get("bucket", ""), info.prefix or "") if keys else None
    return keys - set((evaluation or {}).get("keys", []))


def load(s3, bucket: str, prefix: str, min_class_rows: int = MIN_CLASS_ROWS
         ) -> tuple[dict[str, Any], Admitted, list[dict[str, Any]], dict[str, Any] | None]:
    """(spec, its rows as admit() admits them, the objects read with their versions, the pointer) of the current version."""
    pointer, data_key, spec_key = files(s3, bucket, prefix)
    sources = []
    docs = []
    for key in (spec_key, data_key):
        try:
            obj = s3.get_object(Bucket=bucket, Key=key)
        except s3.exceptions.NoSuchKey as err:
            raise DataError(f"s3://{bucket}/{key} does not exist (`sommelier dataset list` shows the datasets)") from err
        docs.append(obj["Body"].read())
        sources.append({"bucket": bucket, "key": key, "version_id": obj.get("VersionId"), "etag": obj.get("ETag", "").strip('"')})
    spec, admitted = _admitted(docs[0], f"s3://{bucket}/{spec_key}", docs[1], f"s3://{bucket}/{data_key}", min_class_rows)
    return spec, admitted, sources, pointer


def _admitted(spec_body: bytes, spec_where: str, data_body: bytes, data_where: str, min_class_rows: int) -> tuple[dict[str, Any], Admitted]:
    """A stored version's spec and its rows as admit() admits them: what the trainer trains on (load: the current
    version; trained_keys: the one a model read)."""
    try:
        spec = check_spec(json.loads(spec_body))
    except json.JSONDecodeError as err:
        raise DataError(f"{spec_where} is not valid JSON: {err}") from err
    frame, keys, bad, cut = read_rows(data_body, data_where, spec.get("bad_rows") == "skip")
    return spec, admit(frame, keys, spec, bad, min_class_rows, cut)


def show(s3, bucket: str, name: str) -> dict[str, Any]:
    spec, admitted, sources, pointer = load(s3, bucket, layout.dataset_prefix(check_name(name)))
    summary, keys = describe(admitted.frame, spec), admitted.keys
    evaluation = read_evaluation(s3, bucket, layout.dataset_prefix(name))
    return {"name": name, "version": pointer["version"] if pointer else None, "pushed_at": pointer and pointer.get("pushed_at"),
            "files": [s["key"] for s in sources], **summary, "evaluation_rows": evaluation_rows(keys, evaluation),
            "spec": spec,
            # what was decided about it, as push said: its rows now, the proxies found at push (pushes before them: none)
            "report": _report(spec, admitted, (pointer or {}).get("proxies", []), (pointer or {}).get("estimate"),
                              (pointer or {}).get("gaps", []), (pointer or {}).get("gaps_estimate"))}
