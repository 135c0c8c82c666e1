"""The functions' zips (localstack-init/hooklib.py): sources and this interpreter's checked-hash bytecode, reproducibly."""

from __future__ import annotations

import importlib.util
import io
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "localstack-init"))
import hooklib  # noqa: E402

# imports `pkg.mod` from the folder given with compiling from source forbidden: it succeeds only from a .pyc
IMPORT_WITHOUT_COMPILING = """import importlib._bootstrap_external as ext, sys
def refuse(*args, **kwargs):
    raise AssertionError("compiled from source")
if sys.argv[2] == "forbid":
    ext.SourceLoader.source_to_code = refuse
sys.path.insert(0, sys.argv[1])
import pkg.mod
print(pkg.mod.VALUE)
"""


@pytest.fixture()
def package(tmp_path: pathlib.Path) -> pathlib.Path:
    pkg = tmp_path / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text("VALUE = 'from the bundle'\n")
    (pkg / "schema.json").write_text("{}")
    return pkg


def unzip(bundle: bytes, into: pathlib.Path) -> pathlib.Path:
    zipfile.ZipFile(io.BytesIO(bundle)).extractall(into)  # as the emulator does: files get the extraction's times
    return into


def run(folder: pathlib.Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", IMPORT_WITHOUT_COMPILING, str(folder), mode], capture_output=True, text=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def test_a_bundle_holds_each_module_and_its_bytecode(package: pathlib.Path) -> None:
    names = set(zipfile.ZipFile(io.BytesIO(hooklib.build_bundle([package]))).namelist())
    assert {"pkg/__init__.py", "pkg/mod.py", "pkg/schema.json", importlib.util.cache_from_source("pkg/mod.py"),
            importlib.util.cache_from_source("pkg/__init__.py")} == names


def test_the_unzipped_modules_import_without_compiling(package: pathlib.Path, tmp_path: pathlib.Path) -> None:
    folder = unzip(hooklib.build_bundle([package]), tmp_path / "code")
    proc = run(folder, "forbid")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "from the bundle"


def test_a_changed_source_is_compiled_again_never_served_stale(package: pathlib.Path, tmp_path: pathlib.Path) -> None:
    folder = unzip(hooklib.build_bundle([package]), tmp_path / "code")
    (folder / "pkg" / "mod.py").write_text("VALUE = 'edited after unzipping'\n")
    assert "compiled from source" in run(folder, "forbid").stderr  # the .pyc no longer matches: it is not used
    assert run(folder, "allow").stdout.strip() == "edited after unzipping"


def test_bundles_are_reproducible_and_follow_their_sources(package: pathlib.Path) -> None:
    first = hooklib.build_bundle([package])
    hooklib.compiled.cache_clear()
    assert hooklib.build_bundle([package]) == first
    (package / "mod.py").write_text("VALUE = 'changed'\n")
    assert hooklib.build_bundle([package]) != first
