"""`sommelier`: predict, history, feedback and model from the command line.

Exit codes: 0 ok, 2 bad input, 3 key refused, 4 rate limited, 5 API failed or unreachable.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from tabulate import tabulate
from tqdm import tqdm

from sommelier_client.client import ApiError, Client, find_connection, unreachable_message


class InputError(click.ClickException):
    """Bad input caught before anything was sent."""

    exit_code = 2


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


def _read_records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    if path.suffix.lower() == ".json":
        doc = json.loads(text)
        if isinstance(doc, dict):
            doc = doc.get("instances") or [doc.get("features", doc)]
        return list(doc)
    return list(csv.DictReader(io.StringIO(text)))


def _emit(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
    else:
        click.echo(tabulate(rows, headers="keys", floatfmt=".3f") if rows else "(nothing)")


FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)


@main.command()
@click.option("--feature", "-f", "pairs", multiple=True, metavar="NAME=VALUE", help="one feature (repeat for each)")
@click.option("--json", "as_json", metavar="OBJECT", help="one record as a JSON object")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="a CSV or JSON file of records")
@click.option("--example", is_flag=True, help="predict the model's example record")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=1000, show_default=True)
@FORMAT
@click.pass_obj
def predict(client_factory, pairs, as_json, path, example, batch_size, fmt) -> None:
    """Predict one record (flags, --json, --example) or every record of a file."""
    client: Client = client_factory()
    model = client.model()
    schema = {f["name"]: f["type"] for f in model["features"]}
    if sum(map(bool, (pairs, as_json, path, example))) != 1:
        raise click.UsageError("give exactly one of --feature, --json, --file or --example")
    if path:
        records = [_coerce(r, schema, f"{path.name} row {i + 2 if path.suffix != '.json' else i}") for i, r in enumerate(_read_records(path))]
    elif as_json:
        records = [json.loads(as_json)]
    elif example:
        records = [model["example"]]
    else:
        record = dict(p.split("=", 1) for p in pairs if "=" in p)
        if len(record) != len(pairs):
            raise click.UsageError("--feature takes NAME=VALUE")
        records = [_coerce(record, schema, "--feature")]
    results: list[dict[str, Any]] = []
    with tqdm(total=len(records), unit="rec", disable=len(records) <= batch_size, file=sys.stderr) as bar:
        for start in range(0, len(records), batch_size):
            chunk = records[start:start + batch_size]
            try:
                results += client.predict_batch(chunk)["predictions"]
            except ApiError as err:
                for d in err.details:  # make batch indexes refer to the whole file
                    if d["field"].startswith("instances["):
                        index, rest = d["field"][10:].split("]", 1)
                        d["field"] = f"record {start + int(index)}{rest}"
                raise
            bar.update(len(chunk))
    rows = [{"record": i, "label": r["label"], "confidence": r["confidence"],
             **{f"p_{c}": p for c, p in r["probabilities"].items()}, "prediction_id": r["prediction_id"]}
            for i, r in enumerate(results)]
    _emit(rows, fmt)


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
