"""MiniStack with checkpoints and a journal: its state survives a crash, not only a clean stop.

MiniStack (PERSIST_STATE=1) saves each service's state to STATE_DIR when it shuts down cleanly and
loads it when it starts; S3 objects (S3_PERSIST=1) are written at put time. A kill -9, an OOM kill
or a power cut therefore loses every other change since the start: DynamoDB items, API Gateway
keys, the CloudFormation stack. This runs MiniStack unchanged and adds two things, from inside its
event loop:

- checkpoints: the same state files, saved after every burst of changes, at most
  `CHECKPOINT_SECONDS` (1 s) after a mutating request, only for the services that changed (known
  from the request's SigV4 scope; an API invocation touches API Gateway, Lambda and its logs;
  anything unrecognised saves everything), one save at a time. Logs and metrics, the bulk of the state and the least
  precious, are saved at most every `OBSERVABILITY_CHECKPOINT_SECONDS` (30 s). A save runs in a
  forked child (a copy-on-write snapshot of the process, as Redis saves), so MiniStack keeps
  answering while a large state is written (a 100,000-item table takes seconds to serialise).
  MiniStack writes each file to a temporary name and renames it, so a kill during a save leaves
  the previous file whole;
- a journal of DynamoDB writes (PutItem, BatchWriteItem, UpdateItem, DeleteItem, TransactWriteItems):
  each is appended to `dynamodb-journal.jsonl` before MiniStack applies it, and the entries a
  checkpoint covers are dropped from it. After a crash, MiniStack loads the last checkpoint and
  the journal is replayed on top (writes are idempotent or conditional, so one that the
  checkpoint already holds changes nothing), so no acknowledged write is lost to a killed process.
  A line is written before its write is applied, so a line a crash tore (a kill -9 mid-`write()`, a
  power cut) belongs to a write nobody was told succeeded: replay skips it, says so, keeps a copy
  of the journal as it found it, and the next append starts on a line of its own. Nothing in the
  journal can stop replay or the checkpoints after it: an entry that fails is logged and passed.

Standalone (it imports only MiniStack and the modules beside it): the embedded runtime and the emulator image both start
MiniStack through it.
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import json
import logging
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import alarms  # noqa: E402  (beside this file, in the image as in the repository)
import image_functions  # noqa: E402  (beside it too)
import ministack.app as ministack
import snapstart  # noqa: E402  (beside it too)
import task_credentials  # noqa: E402  (beside it too)

log = logging.getLogger("checkpoint")
INTERVAL = float(os.environ.get("CHECKPOINT_SECONDS", "1"))
SLOW_INTERVAL = float(os.environ.get("OBSERVABILITY_CHECKPOINT_SECONDS", "30"))
_READS = {"GET", "HEAD", "OPTIONS"}
_BULKY = {"cloudwatch_logs", "cloudwatch"}  # saved on the slow cadence
# SigV4 signing name -> MiniStack state files it can change
_SERVICES = {"dynamodb": {"dynamodb", "dynamodb_streams"}, "logs": {"cloudwatch_logs"}, "monitoring": {"cloudwatch"},
             "s3": {"s3"}, "lambda": {"lambda", "cloudwatch_logs"}, "apigateway": {"apigateway", "apigateway_v1"},
             "cloudformation": {"cloudformation"}, "kms": {"kms"}, "events": {"eventbridge"}, "iam": {"iam"}, "sts": {"sts"}}
_INVOKE = {"apigateway", "apigateway_v1", "lambda", "cloudwatch_logs"}
EVERYTHING = "*"


def touched(scope: dict) -> set[str]:
    """The state files a mutating request may change."""
    if "/_user_request_" in scope.get("path", "") or "/execute-api/" in scope.get("path", ""):
        return _INVOKE
    auth = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"authorization"), "")
    if "Credential=" in auth:
        parts = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(parts) >= 5 and parts[3] in _SERVICES:
            return _SERVICES[parts[3]]
    return {EVERYTHING}
_JOURNALED = {f"DynamoDB_20120810.{op}" for op in ("PutItem", "BatchWriteItem", "UpdateItem", "DeleteItem", "TransactWriteItems")}


def disk_note(path: Path) -> str:
    """How much room the state folder's disk has, in words."""
    try:
        usage = shutil.disk_usage(path)
    except OSError as err:
        return f"the state folder {path} cannot be read ({err})"
    return f"{usage.free / 2**20:.1f} MiB free of {usage.total / 2**20:.0f} MiB on the disk of {path}"


async def refuse(send, message: str) -> None:
    """A 503 in DynamoDB's error shape: the SDK retries it, then the caller (the predictor: a 503 that says why) gives up."""
    log.error("refused a write: %s", message)
    body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ServiceUnavailableException", "message": message}).encode()
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/x-amz-json-1.0"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class Checkpointer:
    def __init__(self, interval: float, state_dir: Path) -> None:
        self.interval = interval
        self.changes = 0  # mutating requests started or finished (reads never change state)
        self.saved_changes = 0
        self.in_flight = 0
        self.task: asyncio.Task | None = None
        self.started = asyncio.Event()
        self.last_seconds = 0.0
        self.saves = 0
        self.dirty: set[str] = set()
        self.child: dict | None = None  # the save running in a forked child
        self.slow_saved_at = time.monotonic()
        self.journal_path = state_dir / "dynamodb-journal.jsonl"
        self.journal = None
        self.seq = 0
        self.pending: dict[int, str] = {}  # journal lines no checkpoint covers yet
        self.applied: set[int] = set()
        self.failure: str | None = None  # why the last checkpoint did not save, until one does

    # --- checkpoints ----------------------------------------------------------------------------
    @staticmethod
    def write_verified(services: dict) -> list[str]:
        """MiniStack's save_all, each file checked afterwards: the services whose state file was not replaced by this
        save. MiniStack's save_state logs a failed write (a full disk) and returns as if it had saved, so an exit code
        or a return proves nothing: a file whose inode did not change was not written (it writes a temporary file and
        renames it over the old one, a new inode each time)."""
        from ministack.core import persistence

        failed = []
        for name, get_state in services.items():
            path = Path(persistence.STATE_DIR) / f"{name}.json"
            before = path.stat().st_ino if path.exists() else None
            try:
                state = get_state()
            except Exception:
                failed.append(name)
                continue
            if state is None:  # nothing to save (as save_all: a module that failed to import keeps its last file)
                continue
            persistence.save_state(name, state)
            if not path.exists() or path.stat().st_ino == before:
                failed.append(name)
        return failed

    def save(self, everything: bool = False, background: bool = True) -> None:
        """Save the changed services' state (all of them with `everything`); in a forked child unless
        `background` is False. The bookkeeping (what is saved, which journal lines it covers) is done when
        the child has succeeded (`poll`)."""
        if self.child is not None:
            return
        services = ministack._build_persistence_save_dict()
        slow_due = time.monotonic() - self.slow_saved_at >= SLOW_INTERVAL
        if not everything and EVERYTHING not in self.dirty:
            wanted = {k for k in self.dirty if k not in _BULKY or slow_due}
            services = {k: v for k, v in services.items() if k in wanted}
        job = {"seen": self.changes, "covered": [s for s in self.pending if s in self.applied], "saved": set(services),
               "everything": everything or EVERYTHING in self.dirty, "started": time.perf_counter()}
        self.dirty = set() if job["everything"] else self.dirty - job["saved"]  # changes from now on are the next save's
        if background:
            parent = os.getpid()
            pid = os.fork()
            if pid == 0:  # the child: a frozen copy of the state; write it and leave without touching the parent's world
                code = 1
                try:
                    # die with the emulator: an orphan finishing an old snapshot after a restart would overwrite newer state
                    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
                    if os.getppid() != parent:
                        os._exit(1)
                    logging.disable(logging.CRITICAL)  # MiniStack logs a line per service saved
                    code = 1 if self.write_verified(services) else 0
                finally:
                    os._exit(code)
            self.child = {**job, "pid": pid}
            return
        quiet = logging.getLogger("persistence")
        level, quiet.level = quiet.level, logging.WARNING
        try:
            failed = self.write_verified(services)
        finally:
            quiet.level = level
        if failed:
            self._unsaved(job, f"the state of {', '.join(failed)} was not written")
            return
        self._saved(job)

    def poll(self) -> None:
        """Finish the bookkeeping of a background save that has ended (or give up on one that hangs)."""
        if self.child is None:
            return
        job = self.child
        done, status = os.waitpid(job["pid"], os.WNOHANG)
        if done == 0:
            if time.perf_counter() - job["started"] > 300:  # a child stuck on a lock it inherited mid-use
                os.kill(job["pid"], 9)
                os.waitpid(job["pid"], 0)
                self.child = None
                self._unsaved(job, f"checkpoint child {job['pid']} hung and was killed")
            return
        self.child = None
        if os.waitstatus_to_exitcode(status) != 0:
            self._unsaved(job, f"checkpoint child {job['pid']} could not write or verify every state file")
            return
        self._saved(job)

    def _unsaved(self, job: dict, why: str) -> None:
        """A save that did not verify: nothing it was to cover counts as saved (its journal lines stay), and the next
        checkpoint retries it."""
        self.dirty |= job["saved"] | ({EVERYTHING} if job["everything"] else set())
        self.failure = f"{why}; {disk_note(self.journal_path.parent)}"
        log.error("checkpoint not saved: %s; the journal keeps every write since the last checkpoint, the next one retries",
                  self.failure)

    def _saved(self, job: dict) -> None:
        self.failure = None
        self.saved_changes = max(self.saved_changes, job["seen"])
        for s in job["covered"]:
            self.pending.pop(s, None)
            self.applied.discard(s)
        self._rewrite_journal()
        if job["saved"] & _BULKY or job["everything"]:
            self.slow_saved_at = time.monotonic()
        self.last_seconds = time.perf_counter() - job["started"]
        self.saves += 1
        if self.saves == 1 or self.last_seconds > 2:
            log.info("checkpoint %d saved in %.3f s (%s)", self.saves, self.last_seconds, self.journal_path.parent)

    async def run(self) -> None:
        await self.started.wait()
        try:
            await self.replay()
        except Exception:  # never the end of checkpoints: the journal is kept as it was for a person to look at
            log.exception("replaying the DynamoDB journal failed; checkpoints go on (journal kept in %s)", self.journal_path)
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.poll()
                if self.child is None and (self.changes != self.saved_changes or self.in_flight or self.failure
                                           or (self.dirty and time.monotonic() - self.slow_saved_at >= SLOW_INTERVAL)):
                    self.save()  # forks: the child writes a snapshot taken between two requests
            except Exception:  # never the end of checkpoints
                log.exception("checkpoint failed; the next one retries")

    # --- the journal ----------------------------------------------------------------------------
    def _append(self, scope: dict, body: bytes) -> int:
        self.seq += 1
        line = json.dumps({"seq": self.seq, "path": scope.get("path", "/"), "query": scope.get("query_string", b"").decode("latin-1"),
                           "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope.get("headers", [])],
                           "body": base64.b64encode(body).decode()}) + "\n"
        if self.journal is None:
            self.journal = self._open_journal()
        left = memoryview(line.encode())
        try:
            while left:  # unbuffered: each write() is in the OS's hands (a killed process loses nothing; a power cut may)
                left = left[self.journal.write(left):]
        except OSError:  # a full disk: nothing of it stays buffered, and the next append starts on a line of its own
            self.journal.close()
            self.journal = None
            raise
        self.pending[self.seq] = line
        return self.seq

    def _open_journal(self):
        """The journal for appending, on a line of its own: a torn last line (a crash mid-write) gets its newline
        first, so the next entry is never glued to it."""
        torn = False
        if self.journal_path.exists() and self.journal_path.stat().st_size:
            with open(self.journal_path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
        journal = open(self.journal_path, "ab", buffering=0)  # noqa: SIM115 - kept open, appended to
        if torn:
            journal.write(b"\n")
        return journal

    def _rewrite_journal(self) -> None:
        """The journal without the lines a checkpoint covers. When it cannot be written (a full disk), the journal stays
        as it is: replaying lines a checkpoint already holds changes nothing."""
        tmp = self.journal_path.with_suffix(".tmp")
        try:
            tmp.write_text("".join(self.pending[s] for s in sorted(self.pending)), encoding="utf-8")
        except OSError as err:
            log.warning("the journal was not shortened (%s); it keeps lines the checkpoint covers", err)
            tmp.unlink(missing_ok=True)
            return
        if self.journal is not None:
            self.journal.close()
        os.replace(tmp, self.journal_path)
        self.journal = self._open_journal()

    async def replay(self) -> None:
        """The writes a crash kept out of the last checkpoint, applied on top of it, then a checkpoint."""
        if not self.journal_path.exists():
            return
        raw = self.journal_path.read_bytes()
        lines = raw.split(b"\n")
        entries, unreadable = [], []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
                         "path": entry["path"], "raw_path": entry["path"].encode(), "query_string": entry["query"].encode("latin-1"),
                         "headers": [[k.encode("latin-1"), v.encode("latin-1")] for k, v in entry["headers"]],
                         "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0)}
                entries.append((number, scope, base64.b64decode(entry["body"], validate=True)))
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                unreadable.append(number)
                last = number == len(lines) or all(not rest.strip() for rest in lines[number:])
                log.warning("journal line %d of %s is %s (%s); skipped: %s", number, self.journal_path,
                            "torn (a crash mid-write: its write was never applied nor acknowledged)" if last else "unreadable",
                            type(err).__name__, "nothing was lost" if last else "that one write cannot be replayed")
        if unreadable:  # the journal as found, for a person to look at; the rewrite after the checkpoint drops the bad lines
            kept = self.journal_path.with_name(f"{self.journal_path.stem}.unreadable-{int(time.time())}.jsonl")
            kept.write_bytes(raw)
            log.warning("the journal as it was found is kept in %s", kept)
        if not entries:
            if unreadable:
                self.save(everything=True, background=False)  # rewrites the journal without the bad lines
            return
        failed = 0
        for number, scope, body in entries:
            sent: list[dict] = []

            async def receive(body: bytes = body) -> dict:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict, sent: list = sent) -> None:
                sent.append(message)

            try:
                await inner(scope, receive, send)
            except Exception:
                failed += 1
                log.exception("journal line %d could not be replayed; going on with the rest", number)
        log.warning("replayed %d DynamoDB write(s) from the journal on top of the last checkpoint%s", len(entries) - failed,
                    f" ({failed} failed, logged above)" if failed else "")
        self.pending.clear()
        self.save(everything=True, background=False)

    # --- the ASGI wrapper -----------------------------------------------------------------------
    async def app(self, scope, receive, send):
        if scope["type"] == "lifespan":
            if self.task is None and os.environ.get("PERSIST_STATE") == "1":
                self.task = asyncio.get_running_loop().create_task(self.run())

            async def watch(message: dict) -> None:
                if message.get("type") == "lifespan.startup.complete":
                    self.started.set()
                await send(message)

            return await inner(scope, receive, watch)
        if scope["type"] != "http" or scope.get("method") in _READS:
            return await inner(scope, receive, send)
        seq = None
        target = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"x-amz-target"), "")
        if target in _JOURNALED and os.environ.get("PERSIST_STATE") == "1":
            chunks, more = [], True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            body = b"".join(chunks)
            try:
                seq = self._append(scope, body)
            except OSError as err:  # the write could not be kept: refuse it rather than acknowledge it
                return await refuse(send, f"the emulator cannot keep this write: its journal could not be written ({err}); "
                                          f"{disk_note(self.journal_path.parent)}")
            delivered = False

            async def receive_again() -> dict:
                nonlocal delivered
                if not delivered:
                    delivered = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            receive = receive_again
        self.dirty |= touched(scope)
        self.changes += 1
        self.in_flight += 1
        try:
            return await inner(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.changes += 1  # a request that finished after a save began is saved by the next one
            if seq is not None:
                self.applied.add(seq)


WORKER_RESERVE_MIB = float(os.environ.get("WORKER_RESERVE_MIB", "64"))


def keep_room_for_the_journal() -> None:
    """A Lambda worker unpacks its code into a folder of its own under TMPDIR (the state folder's tmp/ in the embedded
    runtime, on the journal's disk): with less than WORKER_RESERVE_MIB free there, no new worker is started, and the
    invocation fails saying so, so the last bytes stay the journal's and an acknowledged write is never refused for room a
    worker took (issue 52). Workers already running go on serving."""
    import errno
    import tempfile

    from ministack.core import lambda_runtime

    spawn = lambda_runtime.Worker._spawn

    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        folder = tempfile.gettempdir()
        free = shutil.disk_usage(folder).free
        if free < WORKER_RESERVE_MIB * 2**20:
            raise OSError(errno.ENOSPC, f"no room to start a Lambda worker: {free / 2**20:.1f} MiB free in {folder}, where the "
                                        f"last {WORKER_RESERVE_MIB:g} MiB are kept for the DynamoDB journal; free some space")
        return spawn(self, *args, **kwargs)

    lambda_runtime.Worker._spawn = guarded  # ProvidedWorker's own _spawn is for image runtimes, whose folders are the engine's


keep_room_for_the_journal()
alarms.install()  # evaluated as CloudWatch does, not over every stored point on every put (alarms.py)
task_credentials.install()  # ECS tasks get a key botocore can use (task_credentials.py)
snapstart.install()  # a SnapStart version's workers forked from its snapshot (snapstart.py)
image_functions.install()  # an image function invoked without engine calls that grew with its pool and its log (image_functions.py)
inner = ministack.app
checkpointer = Checkpointer(INTERVAL, Path(os.environ.get("STATE_DIR", "/tmp/ministack-state")))
ministack.app = checkpointer.app  # main() serves the module's `app`

if __name__ == "__main__":
    ministack.main()
