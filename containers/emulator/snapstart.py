"""SnapStart for MiniStack's local Python workers: a published SnapStart version is initialised once, and every worker of
it after that is a fork of that initialised process, as AWS restores an execution environment from its snapshot.

MiniStack 1.5.33 (the version this patches, `ministack==1.5.33` in requirements/) honours `SnapStart: ApplyOn:
PublishedVersions` in part: at publish it starts one worker, runs the `snapshot_restore_py` before-snapshot and then the
after-restore hooks in its init, and marks the version Active (a raising hook: State Failed). It takes no snapshot: every
further worker of the version is again a whole process start (imports, clients, the model: ~0.7 s of CPU for the
predictor), and it skips the hooks without a word when `snapshot_restore_py` cannot be imported. `install()` completes it:

- **The snapshot.** A published SnapStart version's first worker is started as MiniStack starts any, with a worker script
  whose SnapStart step imports `snapshot_restore_py` (missing: the init fails saying so, and the publish with it), runs
  the before-snapshot hooks (a raising one fails the publish with its words, as on AWS), freezes the garbage collector's
  objects (so that the children's collections do not write to the pages they share with it) and then serves no
  invocation: it waits on a Unix socket of its own for requests to fork. It exists from the publish (or, after the
  emulator restarts, from the first moment a version an alias names is provisioned again) and is what `make up` waits
  for; it counts as no worker.
- **Restored workers.** A request that finds no free worker of the version gets a new one forked from the snapshot, on
  demand (copy-on-write; no worker exists before something asks for it): the emulator hands the snapshot three pipes
  (SCM_RIGHTS), the child takes them as its stdin, stdout and stderr, gets an environment of its own (its log stream),
  runs the after-restore hooks and answers MiniStack's JSON-line protocol as any worker does. A raising after-restore
  hook fails that invocation with its words. A restored worker that dies (kill -9 included) is replaced by a new fork at
  the next request that needs it; a snapshot that dies is taken again.
- **What AWS refuses** is refused: SnapStart on an image function, and provisioned concurrency on a SnapStart version.

Configuration decides (the version's `SnapStart` as MiniStack reports it), never the caller. What would make this
unnecessary upstream: MiniStack forking its SnapStart workers from the one it initialises at publish, and failing the
init when `snapshot_restore_py` is missing rather than passing over the hooks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import select
import signal
import socket
import subprocess
import threading
import time
from typing import Any

log = logging.getLogger("snapstart")
FORK_TIMEOUT_SECONDS = 10.0

# Runs in the snapshot, in place of MiniStack's SnapStart step (between the handler's import and the "ready" line): it
# returns only in a forked child, after the after-restore hooks, which then goes on as any worker does.
SNAPSHOT_STEP = r'''
def _ms_snapshot(init, real_stdout):
    import gc, io, json, os, select, signal, socket, struct, sys
    from snapshot_restore_py import get_after_restore, get_before_snapshot  # missing: the init fails, saying so
    for fn, args, kwargs in reversed(get_before_snapshot()):
        fn(*args, **kwargs)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0" + init["snapshot_socket"])  # abstract: no file, no path length
    listener.listen(64)
    sys.stderr.flush()
    real_stdout.write(json.dumps({"status": "ready", "cold": True, "snapshot": os.getpid()}) + "\n")
    real_stdout.flush()
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the forks; the emulator watches them by pidfd
    uid = os.getuid()
    while True:
        ready, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in ready and not os.read(0, 4096):
            os._exit(0)  # the emulator is gone (its end of our stdin closed): so is the snapshot
        if listener not in ready:
            continue
        conn, _ = listener.accept()
        fds = []
        try:
            peer = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
            msg, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
            if peer[1] != uid or len(fds) != 3:
                raise OSError(f"refused a fork request (uid {peer[1]}, {len(fds)} descriptors)")
            env = json.loads(msg)
        except (OSError, ValueError) as err:
            sys.stderr.write(f"snapshot: {err}\n")
            for fd in fds:
                os.close(fd)
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            conn.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for target, fd in zip((0, 1, 2), fds):
                os.dup2(fd, target)
                os.close(fd)
            sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)))
            os.environ.update(env)
            for fn, args, kwargs in get_after_restore():
                fn(*args, **kwargs)
            return
        for fd in fds:
            os.close(fd)
        try:
            conn.sendall(json.dumps({"pid": pid}).encode())
        except OSError:
            pass
        conn.close()

'''
_MINISTACK_STEP_START = '        if init.get("snapstart"):\n'
_MINISTACK_STEP_END = '        _real_stdout.write(json.dumps({"status": "ready", "cold": True}) + "\\n")\n'
_OUR_STEP = ('        if init.get("snapstart"):\n            _ms_snapshot(init, _real_stdout)\n'
             '            init.pop("snapstart")\n')


def worker_script(script: str) -> str:
    """MiniStack's Python worker script with its SnapStart step replaced by `SNAPSHOT_STEP` (and `init` carrying the
    snapshot's socket name, which `install` adds). Refuses a script it does not recognise: the patch is for 1.5.33."""
    if script.count(_MINISTACK_STEP_START) != 1 or script.count(_MINISTACK_STEP_END) != 1:
        raise RuntimeError("MiniStack's worker script is not the one snapstart.py patches (ministack 1.5.33)")
    start, end = script.index(_MINISTACK_STEP_START), script.index(_MINISTACK_STEP_END)
    script = script[:start] + _OUR_STEP + script[end:]
    script = script.replace('    init = json.loads(sys.stdin.readline())\n',
                            '    init = json.loads(sys.stdin.readline())\n'
                            '    init.setdefault("snapshot_socket", os.environ.get("_MS_SNAPSHOT_SOCKET", ""))\n', 1)
    return SNAPSHOT_STEP + script


def socket_name(key: str, started: float) -> str:
    """The name of the snapshot's Unix socket (abstract: a NUL before it), by its version and when it was taken."""
    return "ministack-snapshot-" + hashlib.sha256(f"{os.getpid()}:{key}:{started}".encode()).hexdigest()[:32]


def is_snapshotted(config: dict) -> bool:
    """A published version of a Python function whose SnapStart is on (MiniStack says OptimizationStatus On)."""
    return ((config.get("SnapStart") or {}).get("OptimizationStatus") == "On" and config.get("Version", "$LATEST") != "$LATEST"
            and str(config.get("Runtime", "")).startswith("python"))


class Restored:
    """A forked worker as MiniStack's pool sees a subprocess (poll, terminate, kill, wait, its three pipes). It is the
    snapshot's child, not the emulator's: watched through a pidfd, which cannot name another process later."""

    def __init__(self, pid: int, stdin: int, stdout: int, stderr: int):
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = open(stdin, "w", buffering=1)  # noqa: SIM115  (owned by this object, closed when it ends)
        self.stdout = open(stdout)  # noqa: SIM115
        self.stderr = open(stderr)  # noqa: SIM115
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # it ended already (and was reaped)
            self._pidfd, self.returncode = None, -1

    def poll(self) -> int | None:
        return self.wait(0) if self.returncode is None else self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        if self.returncode is None and self._pidfd is not None:
            ready, _, _ = select.select([self._pidfd], [], [], timeout)
            if not ready:
                if timeout == 0:
                    return None
                raise subprocess.TimeoutExpired(f"restored worker {self.pid}", timeout or 0)
            self.returncode = -1  # its exit status is the snapshot's to collect
            self._close()
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None and self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _close(self) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            try:
                stream.close()
            except OSError:
                pass
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


class Snapshot:
    """One published SnapStart version's initialised process (MiniStack's own worker, started with our worker script)."""

    def __init__(self, worker: Any, key: str):
        self.worker, self.key = worker, key
        self.started = time.time()
        self.name = socket_name(key, self.started)

    def take(self) -> None:
        with _environ:  # one snapshot's name in the environment at a time: the spawn copies os.environ, the script reads it
            os.environ["_MS_SNAPSHOT_SOCKET"] = self.name
            try:
                self.worker._spawn()
            finally:
                os.environ.pop("_MS_SNAPSHOT_SOCKET", None)
        log.info("SnapStart: snapshot of %s taken in %.2f s (pid %s)", self.key, time.time() - self.started, self.worker._proc.pid)
        threading.Thread(target=self._relay, daemon=True, name=f"snapshot-log-{self.key}").start()

    def _relay(self) -> None:
        """The snapshot's own log lines (its init, the before-snapshot hooks) into the emulator's log, as AWS keeps a
        snapshot's init log."""
        lines = self.worker._stderr_queue
        while self.alive() or not lines.empty():
            try:
                log.info("snapshot %s: %s", self.key, lines.get(timeout=5))
            except queue.Empty:
                continue

    def alive(self) -> bool:
        proc = self.worker._proc
        return proc is not None and proc.poll() is None

    def fork(self, env: dict[str, str]) -> Restored:
        """A new worker forked from the snapshot, its stdin, stdout and stderr pipes of our own."""
        ends = [os.pipe() for _ in range(3)]
        theirs = [ends[0][0], ends[1][1], ends[2][1]]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(FORK_TIMEOUT_SECONDS)
                conn.connect("\0" + self.name)
                socket.send_fds(conn, [json.dumps(env).encode()], theirs)
                reply = b""
                while chunk := conn.recv(4096):
                    reply += chunk
        except OSError:
            for fd in (*theirs, ends[0][1], ends[1][0], ends[2][0]):
                os.close(fd)
            raise
        for fd in theirs:
            os.close(fd)
        try:
            pid = int(json.loads(reply)["pid"])
        except (ValueError, KeyError, TypeError) as err:
            for fd in (ends[0][1], ends[1][0], ends[2][0]):
                os.close(fd)
            raise RuntimeError(f"the snapshot of {self.key} did not fork: {reply[:200]!r}") from err
        return Restored(pid, ends[0][1], ends[1][0], ends[2][0])

    def kill(self) -> None:
        from ministack.core import lambda_runtime

        lambda_runtime.kill_workers([self.worker])


_snapshots: dict[str, Snapshot] = {}
_lock = threading.Lock()
_environ = threading.Lock()
_taking: dict[str, threading.Lock] = {}


def snapshot_for(worker: Any) -> Snapshot:
    """The version's snapshot, taken now if there is none or it died (one at a time per version: concurrent first
    requests wait for the same one)."""
    from ministack.core import lambda_runtime

    key = lambda_runtime._worker_key(worker.func_name, worker.config, worker.config.get("Version", "$LATEST"))
    with _lock:
        taking = _taking.setdefault(key, threading.Lock())
    with taking:
        with _lock:
            found = _snapshots.get(key)
        if found is not None and found.alive():
            return found
        if found is not None:
            log.warning("SnapStart: the snapshot of %s has died; taking it again", key)
        snapshot = Snapshot(lambda_runtime.Worker(worker.func_name, worker.config, worker.code_zip), key)
        snapshot.take()
        with _lock:
            _snapshots[key] = snapshot
        return snapshot


def drop_snapshots(match: Any = None) -> int:
    """Kill the snapshots whose key `match(key)` accepts (all without one)."""
    with _lock:
        doomed = [k for k in _snapshots if match is None or match(k)]
        gone = [_snapshots.pop(k) for k in doomed]
    for snapshot in gone:
        snapshot.kill()
    return len(gone)


def named_versions(func: dict | None) -> set[str]:
    """The versions a function's aliases send traffic to: each alias's version and those its routing weights name."""
    aliases = (func or {}).get("aliases") or {}
    return ({a.get("FunctionVersion") for a in aliases.values()}
            | {v for a in aliases.values() for v in ((a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})})


def install() -> None:
    """Patch MiniStack 1.5.33's local Lambda runtime (see the module's docstring)."""
    from ministack.core import lambda_runtime as rt
    from ministack.core.responses import error_response_json, new_uuid
    from ministack.services import lambda_svc as svc

    rt._PYTHON_WORKER_SCRIPT = worker_script(rt._PYTHON_WORKER_SCRIPT)  # _detect_runtime_binary reads it at each spawn

    class RestoredWorker(rt.Worker):
        """A worker of a SnapStart version: forked from the version's snapshot when a request needs it."""

        def _spawn(self) -> None:
            started = time.perf_counter()
            snapshot = snapshot_for(self)
            self._tmpdir = None
            self._proc = snapshot.fork({"AWS_LAMBDA_LOG_STREAM_NAME": new_uuid()})
            self._stderr_queue = queue.Queue()
            self._stderr_thread = threading.Thread(target=self._read_stderr, daemon=True, name=f"stderr-{self.func_name}")
            self._stderr_thread.start()
            response = None
            for _ in range(200):
                line = self._proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"Worker init failed: the restored worker exited. stderr: {self._drain_stderr_bounded()}")
                if line.startswith("{"):
                    try:
                        response = json.loads(line)
                        break
                    except json.JSONDecodeError:
                        continue
            if response is None or response.get("status") != "ready":
                raise RuntimeError(f"Worker init failed: {(response or {}).get('error', 'no answer from the restored worker')}")
            self._start_time = time.time()
            log.info("SnapStart: restored a worker of %s in %.1f ms (pid %s)", self.func_name, 1000 * (time.perf_counter() - started),
                     self._proc.pid)

    worker_class_for = rt._worker_class_for
    rt._worker_class_for = lambda config: RestoredWorker if is_snapshotted(config) else worker_class_for(config)

    ensure = rt.ensure_spawned

    def ensure_spawned(worker: Any) -> None:
        """At publish (and when a restarted emulator provisions a version again): the snapshot, not a worker."""
        if isinstance(worker, RestoredWorker):
            snapshot_for(worker)
        else:
            ensure(worker)

    rt.ensure_spawned = svc.ensure_spawned = ensure_spawned

    invalidate = rt.invalidate_worker

    def invalidate_worker(func_name: str, qualifier: str | None = None, account: str | None = None, region: str | None = None) -> None:
        invalidate(func_name, qualifier, account, region)

        def matches(key: str) -> bool:
            k_account, k_region, k_func, k_qualifier = key.split(":", 3)
            return (k_func == func_name and qualifier in (None, k_qualifier) and account in (None, k_account)
                    and region in (None, k_region))

        drop_snapshots(matches)

    rt.invalidate_worker = svc.invalidate_worker = invalidate_worker
    reset = rt.reset

    def reset_all() -> None:
        reset()
        drop_snapshots()

    rt.reset = reset_all

    validate = svc._validate_snapstart

    def validate_snapstart(snap: dict | None, *, runtime: str, package_type: str, ephemeral_size: Any) -> Any:
        if package_type == "Image" and (snap or {}).get("ApplyOn") == "PublishedVersions":
            return error_response_json("InvalidParameterValueException", "SnapStart is not supported for functions with "
                                       "package type Image: publish a Zip function for SnapStart.", 400)
        return validate(snap, runtime=runtime, package_type=package_type, ephemeral_size=ephemeral_size)

    svc._validate_snapstart = validate_snapstart
    put_provisioned = svc._put_provisioned_concurrency

    def put_provisioned_concurrency(func_name: str, qualifier: str, data: dict) -> Any:
        func = svc._functions.get(func_name) if func_name in svc._functions else None
        if func is not None and qualifier:
            version = (func.get("aliases", {}).get(qualifier) or {}).get("FunctionVersion", qualifier)
            config = (func.get("versions", {}).get(version) or {}).get("config") or {}
            if (config.get("SnapStart") or {}).get("OptimizationStatus") == "On":
                return error_response_json("InvalidParameterValueException", f"Provisioned concurrency is not supported on "
                                           f"{func_name}:{qualifier}: its version uses SnapStart (use one or the other).", 400)
        return put_provisioned(func_name, qualifier, data)

    svc._put_provisioned_concurrency = put_provisioned_concurrency
    load = svc.load_persisted_state

    def load_persisted_state(data: Any) -> None:
        """After a restart the snapshots are gone: the versions an alias names are provisioned again (Pending until their
        snapshot is taken, as at publish); any other SnapStart version takes its snapshot at its first request."""
        load(data)
        for scoped_key, func in list(svc._functions._data.items()):
            named = named_versions(func)
            for number, record in (func.get("versions") or {}).items():
                config = record.get("config") or {}
                if number in named and is_snapshotted(config) and config.get("State") == "Active":
                    config["State"], config["StateReason"], config["StateReasonCode"] = "Pending", "Restoring the snapshot.", "Restoring"
                    svc._snapstart_provision_version_async(scoped_key[-1], record)

    svc.load_persisted_state = load_persisted_state

    def retire_unnamed(func_name: str) -> None:
        """A snapshot is a process here (in AWS, stored bytes): when no alias names its version any more (the alias moved
        to a new version), it goes; its forks serve on until the reaper takes them, and a request for the version by
        number takes the snapshot again."""
        named = named_versions(svc._functions.get(func_name) if func_name in svc._functions else None)

        def unnamed(key: str) -> bool:
            _account, _region, name, version = key.split(":", 3)
            return name == func_name and version not in named

        if drop_snapshots(unnamed):
            log.info("SnapStart: retired the snapshots of %s's versions that no alias names", func_name)

    def retiring(original: Any) -> Any:
        def aliased(*args: Any, **kwargs: Any) -> Any:
            answer = original(*args, **kwargs)
            retire_unnamed(args[0] if args else kwargs["func_name"])
            return answer

        return aliased

    for operation in ("_create_alias", "_update_alias", "_delete_alias"):
        setattr(svc, operation, retiring(getattr(svc, operation)))
