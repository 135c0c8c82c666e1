"""`sommelier`: predict, evaluate, history, feedback, model, datasets and training from the command line.

Exit codes: 0 ok, 2 bad input, 3 key refused, 4 rate limited, 5 API failed or unreachable.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from tabulate import tabulate
from tqdm import tqdm

from sommelier_client.client import ApiError, Client, find_connection, unreachable_message
from sommelier_contract.files import CsvRows, NotText, WrongWidth, cut_off_row, decode, left_out_rows, read_cell, repeated_column, safe_cell
from sommelier_contract.results import TrainingResult
from sommelier_contract.words import words


def quiet_closed_stdout() -> None:
    """After the reader of a pipe has gone, Python's own flush at exit would complain again: point stdout at nothing."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class InputError(click.ClickException):
    """Bad input caught before anything was sent."""

    exit_code = 2


class LostAnswer(click.ClickException):
    """A request was sent and its answer lost: the message says what is not known (exit 5, like an unreachable stack)."""

    exit_code = 5


def _exit_code(err: ApiError) -> int:
    if err.status == 403:
        return 3
    if err.status == 429:
        return 4
    if 400 <= err.status < 500:
        return 2
    return 5


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(_exit_code(err))
        except BrokenPipeError:  # `sommelier history | head`: the reader has all it wanted
            quiet_closed_stdout()
            ctx.exit(0)
        except (BotoCoreError, ClientError) as err:  # `sommelier metrics` reads CloudWatch directly
            click.echo(f"error: {unreachable_message(str(getattr(err, 'kwargs', {}).get('endpoint_url', '')), err)}"
                       if isinstance(err, EndpointConnectionError) else f"error: {err}", err=True)
            ctx.exit(5)


@click.group(cls=_Group)
@click.option("--api-url", envvar="SOMMELIER_API_URL", help="API base URL (default: the running local stack)")
@click.option("--api-key", envvar="SOMMELIER_API_KEY", help="API key (default: the local stack's demo key)")
@click.pass_context
def main(ctx: click.Context, api_url: str | None, api_key: str | None) -> None:
    """Talk to the Sommelier wine-classification API."""
    ctx.obj = lambda: Client(*find_connection(api_url, api_key))


def _coerce(record: dict[str, Any], schema: dict[str, str], where: str) -> dict[str, Any]:
    out = {}
    for name, value in record.items():
        if schema.get(name) == "numeric" and isinstance(value, str) and not value.strip():
            value = None  # an empty CSV cell: missing, which the model imputes
        elif schema.get(name) == "numeric" and isinstance(value, str):
            try:
                value = float(value)
            except ValueError as err:
                raise InputError(f"{where}: {name} must be a number, got {value!r}") from err
        out[name] = value
    return out


def invoked_as() -> str:
    """This command as the user can type it again from where they are: `sommelier` when that is what their shell finds,
    else the path they ran it by, else the interpreter with -m (a printed command must work as printed)."""
    ran = sys.argv[0] if sys.argv else ""
    found = shutil.which("sommelier")
    if ran and found and Path(found).resolve() == Path(ran).resolve():
        return "sommelier"
    if ran and Path(ran).name == "sommelier" and Path(ran).exists():
        return shlex.quote(ran)
    return f"{shlex.quote(sys.executable)} -m sommelier_client"


def column_name(name: Any, position: int | None = None) -> str:
    """A column as people can read it: an empty header is 'the unnamed column' (and where it stands), never ''."""
    text = "" if name is None else str(name)
    if text.strip():
        return text
    return "the unnamed column" + (f" {position + 1}" if position is not None else "")


def explanation_text(explanation: dict[str, Any] | None) -> str:
    """The API's {"method", "top": [{feature, term?, contribution}]} as one readable line."""
    parts = []
    for e in (explanation or {}).get("top", []):
        name = f"{e['feature']} \"{e['term']}\"" if e.get("term") else e["feature"]
        parts.append(f"{name} {e['contribution']:+.3f}")
    return "; ".join(parts)


def _read_records(path: Path, skip_bad_rows: bool = False) -> list[dict[str, Any]]:
    """Rows of a CSV or JSON file (gzip, BOM and UTF-16 read as they come); anything else is one line that says why.
    A download's cut-off last row (files.ends_cut_off) is left out and said on stderr; any other row with more or fewer
    fields than the header is refused, naming it, or with `skip_bad_rows` left out and said on stderr."""
    try:
        text = decode(path.read_bytes(), path.name)
    except NotText as err:
        raise InputError(str(err)) from err
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from err
    if path.suffix.lower() in (".json", ".jsonl") or path.name.lower().endswith(".json.gz"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{path.name} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") from err
        if isinstance(doc, dict):
            doc = doc.get("instances") or [doc.get("features", doc)]
        if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
            raise InputError(f"{path.name}: expected a record (an object of feature values), a list of them, or "
                             '{"instances": [...]}')
        return list(doc)
    try:
        reader = CsvRows(text, skip_bad_rows)
        repeated = repeated_column(reader.header)
        if repeated:
            raise InputError(f"{path.name}: {repeated}")
        names = [column_name(read_cell(h), i) for i, h in enumerate(reader.header)]
        rows = [dict(zip(names, map(read_cell, row), strict=True)) for _, row in reader]  # as written, before safe_cell
    except WrongWidth as err:
        raise InputError(f"{path.name} {err}") from err
    except csv.Error as err:
        raise InputError(f"{path.name} is not a readable CSV: {err}") from err
    if reader.cut:
        click.echo(f"{path.name}: {cut_off_row(reader.cut)}", err=True)
    if reader.bad:
        click.echo(f"{path.name}: {left_out_rows(reader.bad)}", err=True)
    return rows


def _emit(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[safe_cell(n) for n in rows[0]] if rows else [], lineterminator="\n")
        writer.writeheader()
        writer.writerows({safe_cell(k): safe_cell(v) for k, v in row.items()} for row in rows)  # nothing a spreadsheet runs
        click.echo(out.getvalue(), nl=False)
    else:
        click.echo(tabulate(rows, headers="keys", floatfmt=".3f") if rows else "(nothing)")


SKIP_BAD_ROWS = click.option("--skip-bad-rows", is_flag=True,
                             help="leave out CSV rows with too few or too many fields (e.g. a cut-off last line), saying which")
FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)


def _send(client: Client, records: list[dict[str, Any]], batch_size: int, explain: bool = False) -> list[dict[str, Any]]:
    """Predict records in batches with a progress bar; error fields name the record's index in the whole input."""
    results: list[dict[str, Any]] = []
    with tqdm(total=len(records), unit="rec", disable=len(records) <= batch_size, file=sys.stderr) as bar:
        for start in range(0, len(records), batch_size):
            chunk = records[start:start + batch_size]
            try:
                results += client.predict_batch(chunk, explain=explain)["predictions"]
            except ApiError as err:
                for d in err.details:  # make batch indexes refer to the whole file
                    if d["field"].startswith("instances["):
                        index, rest = d["field"][10:].split("]", 1)
                        d["field"] = f"record {start + int(index)}{rest}"
                raise
            bar.update(len(chunk))
    return results


def _file_records(path: Path, rows: list[dict[str, Any]], model: dict[str, Any],
                  leave_out: str | None = None) -> list[dict[str, Any]]:
    """The records to send from a file's rows (read first, with _read_records, before anything is asked of the API):
    a file may carry columns the model does not take (an index, the label, notes); they are kept in the output but
    not sent."""
    from sommelier_contract.records import required_features  # numpy: loaded only for a file of records

    schema = {f["name"]: f["type"] for f in model["features"]}
    if not rows:
        raise InputError(f"{path.name} holds no records")
    columns = list(dict.fromkeys(c for r in rows for c in r))
    absent = [name for name in required_features(model["features"]) if name not in columns]
    if absent:
        raise InputError(f"{path.name} has no column {', '.join(map(repr, absent))} (the model takes "
                         f"{', '.join(schema)}; its columns are {', '.join(columns) or 'none'})")
    extra = [c for c in columns if c not in schema and c != leave_out]
    if extra:
        click.echo(f"not sent (the model does not take them): {', '.join(map(str, extra))}", err=True)
    return [_coerce({k: v for k, v in r.items() if k in schema}, schema, f"{path.name} row {i + 2 if path.suffix != '.json' else i}")
            for i, r in enumerate(rows)]


def decision_lines(result: TrainingResult) -> list[str]:
    """A training run's outcome as the decision it is: promoted; kept for a person, with the one command that serves it;
    or refused by the gate, the champion serving on."""
    version, reason = result.version, result.reason
    if result.promoted:
        return [f"model {version}: promoted ({reason})"]
    if reason.startswith("not promoted automatically: "):
        why = reason.removeprefix("not promoted automatically: ").split("; `make promote", 1)[0].split("; review the feedback", 1)[0]
        confirm = " YES=1" if "the API would change" in why or "YES=1" in reason else ""  # promote refuses such a change unconfirmed
        return [f"model {version}: trained and kept; a person decides whether it serves, because {why}",
                f"  to serve it:  make promote VERSION={version}{confirm} WHY=\"<your reason, recorded with your name>\"",
                "  to leave it:  nothing to do; the champion serves on (make history lists both)"]
    return [f"model {version}: not promoted: {reason}; the champion serves on"]



@main.command()
@click.option("--feature", "-f", "pairs", multiple=True, metavar="NAME=VALUE", help="one feature (repeat for each)")
@click.option("--json", "as_json", metavar="OBJECT", help="one record as a JSON object")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="a CSV or JSON file of records")
@click.option("--example", is_flag=True, help="predict the model's example record")
@click.option("--explain", is_flag=True, help="add each prediction's top contributing features")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=1000, show_default=True)
@SKIP_BAD_ROWS
@FORMAT
@click.pass_obj
def predict(client_factory, pairs, as_json, path, example, explain, batch_size, skip_bad_rows, fmt) -> None:
    """Predict one record (flags, --json, --example) or every record of a file (its columns are kept in the output)."""
    if sum(map(bool, (pairs, as_json, path, example))) != 1:
        raise click.UsageError("give exactly one of --feature, --json, --file or --example")
    if skip_bad_rows and not path:
        raise click.UsageError("--skip-bad-rows is for --file")
    inputs: list[dict[str, Any]] = _read_records(path, skip_bad_rows) if path else []  # a bad file is said before anything is sent
    client: Client = client_factory()
    model = client.model()
    schema = {f["name"]: f["type"] for f in model["features"]}
    if path:
        records = _file_records(path, inputs, model)
    elif as_json:
        try:
            records = [json.loads(as_json)]
        except json.JSONDecodeError as err:
            raise InputError(f"--json is not valid JSON: {err.msg} at column {err.colno}") from err
    elif example:
        if not model.get("example"):
            raise InputError(f"model {model['version']} has no complete example record")
        records = [model["example"]]
    else:
        record = dict(p.split("=", 1) for p in pairs if "=" in p)
        if len(record) != len(pairs):
            raise click.UsageError("--feature takes NAME=VALUE")
        records = [_coerce(record, schema, "--feature")]
    results = _send(client, records, batch_size, explain)
    rows = [{"record": i, **(inputs[i] if inputs else {}), "label": r["label"], "confidence": r["confidence"],
             **{f"p_{c}": p for c, p in r["probabilities"].items()},
             **({"explanation": explanation_text(r.get("explanation"))} if explain else {}),
             "prediction_id": r["prediction_id"]}
            for i, r in enumerate(results)]
    _emit(rows, fmt)
    went = [r.get("absent") for r in results if r.get("absent")]
    if len(results) == 1 and went:  # what the API says beside the answer: the features it went without
        click.echo(f"answered without {words(went[0])} (not given)", err=True)
    elif went:
        click.echo(f"{len(went)} of {len(results)} records were answered without some of the model's features (not given), "
                   f"e.g. record {next(i for i, r in enumerate(results) if r.get('absent'))} without {words(went[0])}", err=True)


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--label", "label_column", required=True, help="the column holding the true class")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=1000, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--all", "score_all", is_flag=True, help="score every row, those the model was trained on too (flattering)")
@SKIP_BAD_ROWS
@click.pass_obj
def evaluate(client_factory, path, label_column, batch_size, fmt, score_all, skip_bad_rows) -> None:
    """Score the live model on labelled rows: accuracy, macro F1, per-class scores and the confusion matrix.
    (Each row is a real prediction, recorded in the history like any other.)"""
    rows = _read_records(path, skip_bad_rows)  # a bad file is said before anything is sent
    if rows and label_column not in rows[0]:
        raise InputError(f"{path.name} has no column {label_column!r} to take the true labels from "
                         f"(its columns are {', '.join(rows[0])}): name it with --label")
    client: Client = client_factory()
    model = client.model()
    if not score_all:
        rows = _unseen_rows(path, rows, model)
    labels = [str(r.get(label_column) or "").strip() for r in rows]
    unlabelled = [i + 2 for i, label in enumerate(labels) if not label]
    if unlabelled:  # nothing to score them against, as training left them out
        click.echo(f"left out {len(unlabelled)} row(s) with no {label_column!r} (the first is row {unlabelled[0]})", err=True)
        rows, labels = [r for r, label in zip(rows, labels, strict=True) if label], [label for label in labels if label]
    if not rows:
        raise InputError(f"{path.name}: no row has a {label_column!r} to score against")
    records = _file_records(path, rows, model, leave_out=label_column)
    # a class the model learnt grouped with other small ones is right when answered as their group ("Other")
    grouped = (model.get("dataset") or {}).get("grouped") or {}
    truth = [grouped.get(label, label) for label in labels]
    if grouped:
        click.echo(f"scored as {', '.join(sorted(set(grouped.values())))}, as the model learnt them: {', '.join(sorted(grouped))}", err=True)
    predicted = [r["label"] for r in _send(client, records, batch_size)]
    report = scores(truth, predicted)
    report["model_version"] = model["version"]
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"model {model['version']} on {report['rows']} labelled rows of {path.name}")
    click.echo(f"accuracy {report['accuracy']:.3f}, macro F1 {report['f1_macro']:.3f}\n")
    click.echo(tabulate([{"class": c, **v} for c, v in report["per_class"].items()], headers="keys", floatfmt=".3f"))
    labels = report["confusion_matrix"]["labels"]
    click.echo("\nconfusion matrix (rows: true, columns: predicted)")
    click.echo(tabulate([[t, *row] for t, row in zip(labels, report["confusion_matrix"]["matrix"], strict=True)], headers=["", *labels]))


def _unseen_rows(path: Path, rows: list[dict[str, Any]], model: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows the live model did not train on (a model scored on its own training rows flatters itself): matched by
    row key against the rows of the dataset version it was trained on, less that dataset's evaluation rows."""
    from sommelier_contract.artifacts import ArtifactRejected, read_manifest
    from sommelier_contract.dataset import trained_keys
    from sommelier_contract.files import row_key

    try:
        s3 = _s3()
        trained = trained_keys(s3, read_manifest(s3, _resource(None, "SOMMELIER_MODEL_BUCKET", "ModelBucketName"), model["version"]))
    except (InputError, BotoCoreError, ClientError, NotText, ArtifactRejected) as err:
        click.echo(f"note: could not tell which rows model {model['version']} trained on ({err}); scoring every row", err=True)
        return rows
    unseen = [r for r in rows if row_key([str(v) for v in r.values()]) not in trained]
    left_out = len(rows) - len(unseen)
    if left_out and not unseen:
        raise InputError(f"every row of {path.name} ({len(rows)}) was used to train model {model['version']}: its scores there "
                         "would flatter it. Evaluate on rows it never saw, or give --all to score them anyway")
    if left_out:
        click.echo(f"left out {left_out} of {len(rows)} rows that model {model['version']} was trained on; scoring the "
                   f"{len(unseen)} it never saw (--all scores every row)", err=True)
    return unseen


def scores(truth: list[str], predicted: list[str]) -> dict[str, Any]:
    labels = sorted(set(truth) | set(predicted))
    index = {c: i for i, c in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for t, p in zip(truth, predicted, strict=True):
        matrix[index[t]][index[p]] += 1
    per_class = {}
    for c, i in index.items():
        hit, said, real = matrix[i][i], sum(row[i] for row in matrix), sum(matrix[i])
        precision, recall = (hit / said if said else 0.0), (hit / real if real else 0.0)
        per_class[c] = {"precision": precision, "recall": recall,
                        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0, "support": real}
    present = [c for c in labels if per_class[c]["support"]]
    return {"rows": len(truth), "accuracy": sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth),
            "f1_macro": sum(per_class[c]["f1"] for c in present) / len(present), "per_class": per_class,
            "confusion_matrix": {"labels": labels, "matrix": matrix}}


@main.command()
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--all", "everything", is_flag=True, help="every page, not just the newest")
@click.option("--model-version")
@click.option("--since", help="ISO 8601 timestamp")
@click.option("--until", help="ISO 8601 timestamp")
@FORMAT
@click.pass_obj
def history(client_factory, limit, everything, model_version, since, until, fmt) -> None:
    """Recent predictions, newest first."""
    client: Client = client_factory()
    filters = {"model_version": model_version, "since": since, "until": until}
    items = list(client.iter_history(**filters)) if everything else client.history(limit=limit, **filters)["predictions"]
    _emit([{"created_at": p["created_at"], "prediction_id": p["prediction_id"], "label": p["label"], "confidence": p["confidence"],
            "model_version": p["model_version"], "feedback": (p.get("feedback") or {}).get("label", "")} for p in items], fmt)


@main.command()
@click.argument("prediction_id")
@click.argument("label")
@click.pass_obj
def feedback(client_factory, prediction_id, label) -> None:
    """Record the true LABEL of a prediction."""
    result = client_factory().feedback(prediction_id, label)["feedback"]
    click.echo(f"recorded: {prediction_id} was {result['label']} ({'the model was right' if result['correct'] else 'the model was wrong'})")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def model(client_factory, fmt) -> None:
    """The promoted model: version, scores and feature schema."""
    info = client_factory().model()
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    holdout = info["metrics"]["holdout"] or {}
    click.echo(f"model {info['version']} ({info['model'].get('name')}), trained {info['created_at']}")
    click.echo(f"classes: {', '.join(info['classes'])}")
    click.echo(f"holdout: accuracy {holdout.get('accuracy', 0):.3f}, macro F1 {holdout.get('f1_macro', 0):.3f}\n")
    click.echo(tabulate([{k: f.get(k, "") for k in ("name", "type", "unit", "minimum", "maximum", "example")} for f in info["features"]],
                        headers="keys"))


@main.command()
@click.option("--hours", type=click.FloatRange(0.05, 24 * 14), default=1, show_default=True)
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), help="also write a chart of latency and confidence")
def metrics(hours, png) -> None:
    """A summary of the custom metrics (the local stack's CloudWatch, or AWS's with your credentials)."""
    import boto3

    from sommelier_client.client import aws_connection
    from sommelier_client.observe import chart, fetch, summary

    data = fetch(boto3.client("cloudwatch", **aws_connection()), hours)
    click.echo(f"Sommelier metrics, last {hours:g} h\n")
    click.echo(tabulate(summary(data), headers=["metric", "value"]))
    if png:
        click.echo(f"\nchart written to {chart(data, png)}")


@main.command()
@click.option("--since", default="24h", show_default=True, help="compare the predictions of this window: 24h, 7d, 90m, or since an ISO time")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), help="also draw the report (drift per feature, class mix, accuracy)")
@click.option("--json", "as_json", is_flag=True, help="the whole report as JSON")
@click.option("--function", "function_name", envvar="SOMMELIER_MONITOR_FUNCTION", help="the monitoring function (default: the local stack's)")
def monitor(since, png, as_json, function_name) -> None:
    """Compare the champion's recent predictions with its training data: drift, data quality, accuracy."""
    import boto3
    from botocore.config import Config

    from sommelier_client.client import aws_connection
    from sommelier_client.monitoring import MonitorError, chart, invoke, text

    function_name = _resource(function_name, "SOMMELIER_MONITOR_FUNCTION", "MonitorFunctionName")
    lam = boto3.client("lambda", config=Config(read_timeout=330, retries={"max_attempts": 0}), **aws_connection())
    try:
        report = invoke(lam, function_name, since)
    except MonitorError as err:
        raise InputError(str(err)) from None
    click.echo(json.dumps(report.doc(), indent=2) if as_json else text(report))
    if png:
        click.echo(f"\nchart written to {chart(report, png)}", err=as_json)


# --- datasets and training: straight to the stack's AWS resources (the local stack's emulator, or AWS) ---

def _resource(option: str | None, env: str, output: str) -> str:
    """A resource name: the flag, the environment, or the running local stack's outputs."""
    import os

    from sommelier_client.client import stack_output

    value = option or os.environ.get(env) or stack_output(output)
    if not value:
        raise InputError(f"no {output} known: run `make up`, or set {env}")
    return value


def _s3():
    import boto3

    from sommelier_client.client import aws_connection

    return boto3.client("s3", **aws_connection())


BUCKET = click.option("--bucket", envvar="SOMMELIER_DATASET_BUCKET", help="the dataset bucket (default: the local stack's)")


@main.group()
def dataset() -> None:
    """Bring your own data: push a CSV as a dataset, list the datasets, show one."""


@dataset.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="the dataset's name (a new name, or a new version of an existing one)")
@click.option("--target", help="the column to predict (needed unless --spec names it)")
@click.option("--spec", "spec_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a spec to use instead of inferring one")
@click.option("--ignore", multiple=True, metavar="COLUMN", help="a column to leave out (repeat for each)")
@click.option("--description", help="one line saying what the data is (the page shows it)")
@click.option("--skip-bad-rows", is_flag=True, help="leave out rows with too few or too many fields (e.g. a cut-off last line), "
              "counted and recorded in the dataset version; by default such a row refuses the file")
@click.option("--dry-run", is_flag=True, help="check, and print what would be stored and decided, store nothing")
@BUCKET
def push(path, name, target, spec_path, ignore, description, skip_bad_rows, dry_run, bucket) -> None:
    """Check a CSV, infer its spec (or use --spec), and store it as a new version of dataset NAME. Every decision
    (columns ignored and why, rows left out, small classes grouped, likely proxies of the target) is printed."""
    from datetime import UTC, datetime

    from sommelier_contract import dataset as ds

    spec = None
    if spec_path:
        try:
            spec = json.loads(decode(spec_path.read_bytes(), spec_path.name))
        except NotText as err:
            raise InputError(str(err)) from err
        except json.JSONDecodeError as err:
            raise InputError(f"{spec_path.name} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") from err
    body = path.read_bytes()
    try:  # every check and decision first, the same for a dry run: what is wrong with the file is said before any stack is needed
        accepted = ds.accept(body, name, spec, target, ignore, description, skip_bad_rows)
        if dry_run:
            click.echo(_push_summary(accepted.spec, accepted.report(), str(path), name, target))
            summary = ds.describe(accepted.admitted.frame, accepted.spec)
            click.echo(f"\ndry run: {summary['rows']} rows, {len(summary['classes'])} classes; nothing stored")
            return
        pushed = ds.store(_s3(), _resource(bucket, "SOMMELIER_DATASET_BUCKET", "DatasetBucketName"), accepted,
                          now=datetime.now(UTC).isoformat(timespec="seconds"))
    except ds.DataError as err:
        raise InputError(f"{path.name}: {err}") from err
    click.echo(_push_summary(pushed["spec"], pushed, str(path), name, target))
    click.echo(f"\ndataset {name} version {pushed['version']}" + (f" (replaces version {pushed['previous']})" if pushed["previous"] else "")
               + f": {pushed['rows']} rows, target {pushed['target']!r}, {len(pushed['classes'])} classes: "
               + ", ".join(f"{c} {n}" for c, n in pushed["classes"].items()))
    click.echo(f"evaluation rows (never trained on): {pushed['evaluation_rows']}; stored at s3://{pushed['data']['bucket']}/"
               f"{pushed['data']['key'].rsplit('/', 1)[0]}/")
    click.echo(f"train on it: make train DATASET={name}   (or: {invoked_as()} train --dataset {shlex.quote(name)})")


def _push_summary(spec: dict[str, Any], report: dict[str, Any], file: str, name: str, target: str | None) -> str:
    """What push decided, for a person: each column's role (a table), the rows left out and classes grouped, and the
    columns that give the target away, with what the model scores without them and the command that leaves them out."""
    proxies = {p["column"]: p for p in report.get("proxies", [])}
    gaps = {g["column"]: g for g in report.get("gaps", [])}
    because = report.get("ignored_because", {})
    rows = [{"column": spec["target"], "role": "target", "type": "", "values": "", "missing": "", "note": ""}]
    for f in spec["features"]:
        observed = f.get("observed", {})
        detail = (f"{observed.get('min', ''):g} .. {observed.get('max', ''):g}" if f["type"] == "numeric" and observed else
                  f"{len(f['categories'])} categories" if f.get("categories") else
                  f"{observed.get('distinct'):,} values" if observed.get("distinct") else "")
        notes = []
        if f.get("max_categories"):
            notes.append(f"the {f['max_categories']} most frequent values kept, the rest as one")
        if f["name"] in proxies:
            p = proxies[f["name"]]
            notes.append(f"likely proxy of {spec['target']}: alone right {p['accuracy']:.1%} of the time on {p['coverage']:.0%} of rows")
        if f["name"] in gaps:
            notes.append(f"its emptiness tells {spec['target']}: empty in {gaps[f['name']]['share']:.0%} of {_classes(gaps[f['name']])} rows")
        rows.append({"column": f["name"], "role": "feature", "type": f["type"], "values": detail, "missing": observed.get("missing", ""),
                     "note": "; ".join(notes)})
    for column in spec.get("ignore", []):
        rows.append({"column": column, "role": "ignored", "type": "", "values": "", "missing": "",
                     "note": because.get(column, "--ignore")})
    lines = [tabulate(rows, headers="keys")]
    if report.get("notes"):
        lines += ["", "rows:"] + [f"  {note}" for note in report["notes"]]
    if proxies:
        lines += ["", f"likely proxies of {spec['target']!r}: {words(proxies)}. Each alone gives the answer away (a place name names its "
                  "country), so the model may lean on them rather than on what the other columns say."]
        estimate = report.get("estimate")
        if estimate:
            lines.append(f"  a quick estimate (3-fold, a linear model, up to 4,000 rows): accuracy {estimate['with']:.3f} with them, "
                         f"{estimate['without']:.3f} without")
        flags = " ".join(f"--ignore {shlex.quote(c)}" for c in [*proxies, *(i for i in spec.get("ignore", []) if i not in because)])
        lines.append(f"  to leave them out: {invoked_as()} dataset push {shlex.quote(file)} --name {shlex.quote(name)} "
                     f"--target {shlex.quote(target or spec['target'])} {flags}")
    if gaps:
        lines += ["", f"empty values that give {spec['target']!r} away: "
                  + "; ".join(f"{g['column']} is empty in {g['share']:.0%} of {_classes(g)} rows and in {g['elsewhere']:.1%} of the others"
                              for g in gaps.values()) + ".",
                  f"  A record that leaves {words(gaps, 'or')} out is answered without {'them' if len(gaps) > 1 else 'it'}; one that "
                  "sends it empty (\"\" or null) says the wine has none, and the model reads that as the data does."]
        estimate = report.get("gaps_estimate")
        if estimate:
            lines.append(f"  a quick estimate (3-fold, a linear model, up to 4,000 rows): accuracy {estimate['with']:.3f} with their "
                         f"emptiness, {estimate['without']:.3f} with an empty value read as not given")
    return "\n".join(lines)


def _classes(gap: dict[str, Any], shown: int = 4) -> str:
    """The classes a column is always empty in, as words: "Chile, Portugal and Austria", "Chile, Portugal, Austria and 5 more"."""
    names = list(gap["empty_in"])
    return words(names) if len(names) <= shown else words([*names[:shown - 1], f"{len(names) - shown + 1} more"])


@dataset.command(name="list")
@BUCKET
def list_datasets(bucket) -> None:
    """Every dataset in the bucket, with its current version."""
    from sommelier_contract import dataset as ds
    from sommelier_contract import layout

    s3, bucket = _s3(), _resource(bucket, "SOMMELIER_DATASET_BUCKET", "DatasetBucketName")
    rows = []
    for name in ds.names(s3, bucket):
        pointer = ds.current(s3, bucket, layout.dataset_prefix(name))
        rows.append({"name": name, "version": pointer["version"] if pointer else "seeded", "rows": pointer["rows"] if pointer else "",
                     "target": pointer["target"] if pointer else "", "classes": len(pointer["classes"]) if pointer else "",
                     "pushed at": pointer.get("pushed_at", "") if pointer else ""})
    _emit(rows, "table")


@dataset.command()
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@BUCKET
def show(name, fmt, bucket) -> None:
    """A dataset: rows, classes and their counts, missing values, the spec."""
    from sommelier_contract import dataset as ds

    try:
        info = ds.show(_s3(), _resource(bucket, "SOMMELIER_DATASET_BUCKET", "DatasetBucketName"), name)
    except ds.DataError as err:
        raise InputError(str(err)) from err
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    spec = info["spec"]
    click.echo(f"dataset {name}, version {info['version'] or 'seeded'}: {info['rows']} rows, target {spec['target']!r}")
    click.echo(spec.get("description", ""))
    click.echo("classes: " + ", ".join(f"{c} {n}" for c, n in info["classes"].items()))
    click.echo(f"evaluation rows (never trained on): {info['evaluation_rows']}")
    if info["missing"]:
        click.echo("missing values: " + ", ".join(f"{c} {n}" for c, n in info["missing"].items()))
    click.echo("")
    click.echo(_push_summary(spec, info["report"], "FILE.csv", name, spec["target"]))


@main.command()
@click.option("--dataset", "name", help="the dataset to train on (default: the function's configured one)")
@click.option("--function", "function_name", envvar="SOMMELIER_TRAINER_FUNCTION", help="the training function (default: the local stack's)")
def train(name, function_name) -> None:
    """Run the training function on a dataset: compare, evaluate, and promote if the gate passes."""
    import boto3
    from botocore.config import Config

    from sommelier_client.client import aws_connection

    function_name = _resource(function_name, "SOMMELIER_TRAINER_FUNCTION", "TrainerFunctionName")
    lam = boto3.client("lambda", config=Config(read_timeout=960, retries={"max_attempts": 0}), **aws_connection())
    click.echo(f"training {name or 'the default dataset'} with {function_name} (this waits for it) ...", err=True)
    try:
        resp = lam.invoke(FunctionName=function_name, Payload=json.dumps({"trigger": "cli", **({"dataset": name} if name else {})}))
    except (ConnectionClosedError, ReadTimeoutError) as err:  # sent, then the answer was lost: say what is and is not known
        raise LostAnswer(f"the connection was lost while {function_name} trained ({err}): whether it wrote or promoted a version "
                         "is not known here (a version is written whole or not at all); when the stack answers, `sommelier model` "
                         "names the model the API serves and `make history` lists every version") from err
    answer = json.loads(resp["Payload"].read() or b"null")
    if resp.get("FunctionError") or not isinstance(answer, dict):
        raise click.ClickException(f"the training function failed: {answer}")
    result = TrainingResult.parse(answer)
    if result.task:  # too big for the function: the ECS task trains it (`make logs`, the task's log group)
        click.echo(result.reason)
        return
    if not result.version:
        raise InputError(result.reason or "training failed")
    click.echo("\n".join(decision_lines(result)))
