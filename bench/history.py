"""History reads on a large table: `python -m bench.history [ROWS]` (default 100,000), part of `make bench`.

Starts its own embedded stack, writes ROWS prediction records for the demo key straight into the
table as the predictor lays them out (requests of 1, 1, 10 and 100 predictions in turn, spread over 30
days and three model versions, one of them rare), then times GET /predictions through API Gateway with
each kind of filter. Also reports how long the emulator's checkpoints take with a table that size (in
a forked child). Prints JSON.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from tqdm import tqdm

from bench.run import EXAMPLE, ROOT, summary, timed
from devstack.config import StackConfig
from devstack.embedded import Embedded
from devstack.runtime import free_port


def fill(info: dict, cfg: StackConfig, rows: int) -> None:
    sys.path[:0] = [str(ROOT / "services" / "predictor"), str(ROOT / "services" / "contract")]
    from predictor.api import caller
    from predictor.records import PredictionRecorder

    who = caller({"headers": {"x-api-key": info["api_key"]}})
    ddb = cfg.client("dynamodb")
    recorder = PredictionRecorder(ddb, info["outputs"]["PredictionsTableName"], 90)
    now = datetime.now(UTC)
    prediction = {"label": "class_0", "confidence": 0.9, "probabilities": {"class_0": 0.9, "class_1": 0.05, "class_2": 0.05}}
    items, i, sizes = [], 0, itertools.cycle((1, 1, 10, 100))  # singles and batches, as the page and clients send them
    while i < rows:
        size = min(next(sizes), rows - i)
        at = (now - timedelta(seconds=(i * 30 * 86400) // rows)).timestamp()
        version = "rare" if i // 10_000 != (i + size) // 10_000 else ("v-old" if (i // size) % 2 else "v-new")
        items += recorder.items(caller=who, model_version=version, now=at, predictions=[prediction] * size, inputs=[EXAMPLE] * size,
                                context={"request_id": "bench"})[1]
        i += size
    batches = [items[b:b + 25] for b in range(0, len(items), 25)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(tqdm(pool.map(recorder.put, batches), total=len(batches), desc=f"writing {rows} records ({len(items)} items)", file=sys.stderr))


def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as state:
        cfg = StackConfig(state_dir=Path(state), emulator_port=free_port(), frontend_port=free_port())
        info = Embedded(cfg).up()
        try:
            started = time.perf_counter()
            fill(info, cfg, rows)
            filled_s = time.perf_counter() - started
            session = requests.Session()
            session.headers["x-api-key"] = info["api_key"]
            api = info["api_url"]
            since = (datetime.now(UTC) - timedelta(days=2)).isoformat(timespec="seconds").replace("+00:00", "Z")
            queries = {"newest 20": "/predictions", "newest 100": "/predictions?limit=100",
                       "model_version, a rare one": "/predictions?limit=100&model_version=rare",
                       "model_version that does not exist": "/predictions?limit=100&model_version=nope",
                       "since 2 days ago": f"/predictions?limit=100&since={since}"}
            results = {}
            for name, path in queries.items():
                def get(path: str = path) -> None:
                    session.get(api + path, timeout=60).raise_for_status()
                get()
                results[name] = summary([timed(get) for _ in range(60)])
            token, pages = None, []
            for _ in range(20):  # paging: each page costs what the first did
                url = api + "/predictions?limit=100" + (f"&next_token={token}" if token else "")
                t = time.perf_counter()
                body = session.get(url, timeout=60).json()
                pages.append((time.perf_counter() - t) * 1000)
                token = body["next_token"]
            results["20 pages of 100"] = summary(pages)
            log = (cfg.logs_dir / "emulator.log").read_text()
            saves = [float(s) for s in re.findall(r"checkpoint \d+ saved in ([0-9.]+) s", log)]
        finally:
            Embedded(cfg).down()
    print(json.dumps({"rows": rows, "fill_s": round(filled_s, 1), "queries": results,
                      "checkpoint_s_max": max(saves, default=None), "checkpoints_logged": len(saves)}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
