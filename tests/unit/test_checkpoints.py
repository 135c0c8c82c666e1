"""containers/emulator/checkpointed.py when the disk cannot take a write (issue 36): with 6 MB free, 300 acknowledged
predictions were lost to a kill -9, because MiniStack's save_state logs a failed write and returns, the checkpoint
counted as saved and the journal lines it was to cover were dropped. Run in a process of its own: the module installs
itself into MiniStack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import asyncio, json, os, sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    import checkpointed
    import ministack.services.dynamodb  # a service the stack has used: its state is saved

    state = Path(os.environ["STATE_DIR"])
    out = {}

    def checkpointer():
        ck = checkpointed.Checkpointer(1, state)
        ck.journal_path.write_text('{"seq": 1}\\n')
        ck.pending, ck.applied, ck.dirty, ck.changes = {1: '{"seq": 1}\\n'}, {1}, {"dynamodb"}, 2
        return ck

    blocker = state / "dynamodb.json.tmp"  # where save_state writes first: a folder, so its write fails as on a full disk
    for mode in ("foreground", "background"):
        blocker.mkdir()
        ck = checkpointer()
        if mode == "foreground":
            ck.save(background=False)
        else:
            ck.save()
            for _ in range(600):
                ck.poll()
                if ck.child is None:
                    break
                time.sleep(0.05)
        out[mode] = {"pending": sorted(ck.pending), "journal": ck.journal_path.read_text(), "failure": ck.failure,
                     "saved_changes": ck.saved_changes}
        blocker.rmdir()
    ck.save(background=False)
    out["after"] = {"pending": sorted(ck.pending), "failure": ck.failure, "written": (state / "dynamodb.json").exists()}

    ck = checkpointed.Checkpointer(1, state)
    ck.journal_path = state / "journal-that-cannot-be-written"
    ck.journal_path.mkdir()
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"",
             "headers": [(b"x-amz-target", b"DynamoDB_20120810.PutItem")]}
    asyncio.run(ck.app(scope, receive, send))
    out["refused"] = {"status": sent[0]["status"], "body": json.loads(sent[1]["body"])}
    print(json.dumps(out))
''')


def test_a_checkpoint_that_was_not_written_keeps_its_journal_and_a_write_that_cannot_be_kept_is_refused(tmp_path):
    env = {**os.environ, "STATE_DIR": str(tmp_path), "PERSIST_STATE": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT / "containers" / "emulator")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for mode in ("foreground", "background"):
        assert out[mode]["pending"] == [1] and out[mode]["journal"] == '{"seq": 1}\n', (mode, out[mode])
        assert out[mode]["saved_changes"] == 0 and "MiB free" in out[mode]["failure"], (mode, out[mode])
    assert out["after"] == {"pending": [], "failure": None, "written": True}
    assert out["refused"]["status"] == 503
    assert out["refused"]["body"]["__type"].endswith("ServiceUnavailableException")
    assert "cannot keep this write" in out["refused"]["body"]["message"] and "MiB free" in out["refused"]["body"]["message"]


WORKER = textwrap.dedent('''
    import json, os, shutil, sys
    from collections import namedtuple
    sys.path.insert(0, sys.argv[1])
    import checkpointed
    from ministack.core import lambda_runtime

    Usage = namedtuple("Usage", "total used free")
    real = shutil.disk_usage
    out = {}
    for free_mib in (20, 200):
        shutil.disk_usage = lambda path, f=free_mib: Usage(10 * 2**30, 10 * 2**30 - f * 2**20, f * 2**20)
        worker = lambda_runtime.Worker("predictor", {"Runtime": "python3.11", "Handler": "app.handler"}, b"not a zip")
        try:
            worker._spawn()
            out[free_mib] = "spawned"
        except OSError as err:
            out[free_mib] = f"refused: {err.strerror}"
        except Exception as err:  # past the check: the code is not a zip, which is not what is tested
            out[free_mib] = f"past the check ({type(err).__name__})"
        finally:
            shutil.disk_usage = real
            worker._discard_tmpdir()
    print(json.dumps(out))
''')


def test_no_worker_folder_takes_the_last_bytes_the_journal_needs(tmp_path):
    """Issue 52 (5): on a full disk MiniStack's Lambda executor answered every call 502 [Errno 28] as it unpacked a new
    worker beside the journal. Under WORKER_RESERVE_MIB (64) free, no new worker is started and the failure says why."""
    env = {**os.environ, "STATE_DIR": str(tmp_path), "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", WORKER, str(ROOT / "containers" / "emulator")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["20"].startswith("refused: no room to start a Lambda worker: 20.0 MiB free in ")
    assert "the last 64 MiB are kept for the DynamoDB journal" in out["20"]
    assert not out["200"].startswith("refused"), out
