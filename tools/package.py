"""Build the Lambda deployment zip without Docker: ``dist/function-<arch>.zip``.

Why no Docker: pip can fetch wheels built for another platform
(``--platform manylinux2014_<machine> --only-binary=:all: --python-version 3.13
--implementation cp``), so the C extensions aiohttp, multidict, yarl, frozenlist,
propcache and wrapt need are the ones Lambda's Amazon Linux will load, whatever
machine builds the zip. ``--only-binary`` guarantees nothing is compiled here.

What goes in, and why:

* every distribution from ``requirements.txt`` and its dependencies, including
  boto3/botocore although the runtime has them: aioboto3 pins aiobotocore, which
  pins one exact botocore, and the runtime's copy is a different version that
  aiobotocore refuses to patch (the bundled copy wins: /var/task comes first on
  sys.path);
* ``lambda_function.py`` at the zip root (handler ``lambda_function.handler``)
  and every repo-root module it imports, found by parsing the imports, so a new
  local module ships without anyone touching this file.

What is pinned: ``requirements.lock`` names every distribution that ships, the
transitive ones included, with the sha256 of each wheel pip may pick for either
architecture; the build installs with ``--require-hashes --no-deps`` from it,
so a changed or re-uploaded wheel fails the build instead of shipping.
``python tools/package.py --lock`` regenerates it from requirements.txt.

Bytecode: every module is compiled by Python 3.13 (the interpreter found as in
local_runtime/lambda_python.py) with ``--invalidation-mode unchecked-hash``, so
the zip carries a valid ``__pycache__/*.cpython-313.pyc`` beside each ``.py``
that Lambda's read-only ``/var/task`` can use as is (no source stat, no
timestamp); compiled names are rooted at ``/var/task`` so the bytes do not
depend on where the build ran.

What stays out: type stubs, console scripts (``bin/``), test suites, and every
dev-only package (anything in requirements-dev.txt but not requirements.txt:
moto, python-dotenv, ...); the build fails if one sneaks in.

The zip is reproducible (sorted entries, fixed timestamps and modes): the same
inputs give the same bytes, so an unchanged package never makes a new version.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tools.deploy_inputs import InputError, flag

ROOT = Path(__file__).resolve().parent.parent
HANDLER_MODULE = "lambda_function"
LAMBDA_PYTHON = "3.13"
# Lambda's names for the architectures, and the machine tag in wheel names.
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}
ZIP_LIMIT = 50 * 1024 * 1024  # direct-upload limit for the zipped package
UNZIPPED_LIMIT = 250 * 1024 * 1024  # unzipped code plus layers
DEFAULT_CACHE = ROOT / "build" / "package-cache"
LOCK_FILE = ROOT / "requirements.lock"
TASK_ROOT = "/var/task"  # where Lambda unpacks the zip; compiled code names its files under it
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: reproducible builds

_EXCLUDED_DIRS = {"tests", "test", "bin"}
_EXCLUDED_SUFFIXES = (".pyo", ".pyi")
_PYC_TAG = "cpython-313"


@dataclass(frozen=True)
class BuildResult:
    """One built zip and the numbers that matter against Lambda's limits."""

    path: Path
    arch: str
    python_version: str
    zipped_bytes: int
    unzipped_bytes: int
    files: int

    def report(self) -> str:
        try:
            shown = self.path.relative_to(ROOT)
        except ValueError:
            shown = self.path
        return (
            f"{shown}: {_mb(self.zipped_bytes)} zipped ({_pct(self.zipped_bytes, ZIP_LIMIT)} of Lambda's 50 MB), "
            f"{_mb(self.unzipped_bytes)} unzipped ({_pct(self.unzipped_bytes, UNZIPPED_LIMIT)} of 250 MB), "
            f"{self.files} files, python {self.python_version}, {self.arch}"
        )


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _pct(size: int, limit: int) -> str:
    return f"{100 * size / limit:.0f}%"


class PackageError(RuntimeError):
    """The package cannot be built as asked (bad input, dev-only dependency, over a limit)."""


# ---------------------------------------------------------------------------
# What ships: local modules the handler imports, and the runtime requirements.
# ---------------------------------------------------------------------------


def _imported_names(source: str) -> set[str]:
    """Top-level names of absolute imports (``import a.b`` and ``from a import b`` give ``a``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _local_module_path(name: str, root: Path) -> Path | None:
    for candidate in (root / f"{name}.py", root / name / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def local_modules(root: Path = ROOT, entry: str = HANDLER_MODULE) -> list[Path]:
    """Every repo-root module or package the handler needs, found by following imports.

    Computed rather than listed so that a module the handler starts importing
    ships automatically; a package directory is followed through all its files.
    """
    found: dict[str, Path] = {}
    pending = [entry]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = _local_module_path(name, root)
        if path is None:
            continue
        found[name] = path if path.name != "__init__.py" else path.parent
        sources = [path] if path.name != "__init__.py" else sorted(path.parent.rglob("*.py"))
        for source in sources:
            pending.extend(_imported_names(source.read_text(encoding="utf-8")) - found.keys())
    return sorted(found.values())


def _requirement_names(path: Path) -> set[str]:
    """Normalised project names listed directly in a requirements file (``-r`` lines skipped)."""
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if match:
            names.add(_normalise(match.group(0)))
    return names


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dev_only_packages(root: Path = ROOT) -> set[str]:
    """Projects the developers need that Lambda must never get."""
    wanted = _requirement_names(root / "requirements-dev.txt") | _requirement_names(
        root / "requirements-lambda-debug.txt"
    )
    return wanted - _requirement_names(root / "requirements.txt")


# ---------------------------------------------------------------------------
# Dependencies: pip for Lambda's platform, cached by what decides the result.
# ---------------------------------------------------------------------------


def _platform_flags(arch: str, python_version: str) -> list[str]:
    return [
        "--platform",
        f"manylinux2014_{MACHINES[arch]}",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
    ]


def pip_command(arch: str, python_version: str, target: Path, lock: Path) -> list[str]:
    """The pip invocation that fetches Lambda-platform wheels from the lock; never builds from source."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # compiled afterwards, by Python 3.13 (this interpreter may be another)
        "--require-hashes",
        "--no-deps",  # the lock already lists every transitive dependency
        *_platform_flags(arch, python_version),
        "--target",
        str(target),
        "-r",
        str(lock),
    ]


# ---------------------------------------------------------------------------
# The lock: every distribution that ships, with the hashes of its wheels.
# ---------------------------------------------------------------------------


def _resolve(arch: str, python_version: str, requirements: Path) -> dict[str, tuple[str, set[str]]]:
    """What pip would install for one platform: name -> (version, sha256 of the chosen wheel)."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--dry-run",
            "--ignore-installed",
            "--report",
            str(report),
            *_platform_flags(arch, python_version),
            "--target",
            str(Path(scratch) / "target"),
            "-r",
            str(requirements),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PackageError(f"pip could not resolve {requirements.name} for {arch}:\n{done.stderr}")
        resolved = {}
        for item in json.loads(report.read_text(encoding="utf-8"))["install"]:
            hashes = item["download_info"].get("archive_info", {}).get("hashes", {})
            if "sha256" not in hashes:
                raise PackageError(f"pip reported no sha256 for {item['download_info']['url']}")
            name = _normalise(item["metadata"]["name"])
            resolved[name] = (item["metadata"]["version"], {hashes["sha256"]})
        return resolved


def write_lock(python_version: str = LAMBDA_PYTHON, root: Path = ROOT, lock: Path | None = None) -> Path:
    """Resolve requirements.txt for both architectures and write every pin with its wheels' hashes."""
    lock = lock or root / LOCK_FILE.name
    merged: dict[str, tuple[str, set[str]]] = {}
    for arch in sorted(MACHINES):
        for name, (version, hashes) in _resolve(arch, python_version, root / "requirements.txt").items():
            if name in merged and merged[name][0] != version:
                raise PackageError(f"{name} resolves to {merged[name][0]} and {version} on different architectures")
            merged.setdefault(name, (version, set()))[1].update(hashes)
    lines = [
        "# Every distribution the Lambda zip ships, with the sha256 of each wheel pip may pick for",
        f"# CPython {python_version} on manylinux2014 x86_64 and aarch64. Generated from requirements.txt by",
        "#   python tools/package.py --lock",
        "# and installed with --require-hashes --no-deps (make package, make lambda-python).",
    ]
    for name in sorted(merged):
        version, hashes = merged[name]
        lines.append(f"{name}=={version} \\")
        lines.extend(
            f"    --hash=sha256:{digest}" + (" \\" if i < len(hashes) - 1 else "")
            for i, digest in enumerate(sorted(hashes))
        )
    lock.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lock


def read_lock(lock: Path = LOCK_FILE) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) as the lock pins them."""
    pins: dict[str, tuple[str, list[str]]] = {}
    text = lock.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = line.split()
        name, _, version = requirement.partition("==")
        pins[_normalise(name)] = (version, [o.removeprefix("--hash=sha256:") for o in options])
    return pins


def install_dependencies(arch: str, python_version: str, cache_dir: Path, root: Path = ROOT) -> Path:
    """Install the runtime requirements for one platform, reusing an identical earlier install.

    The cache key is everything that decides what pip picks; an install lands
    in a temporary directory and is renamed into place, so concurrent builds
    (pytest-xdist workers) never see half an install.
    """
    lock = root / LOCK_FILE.name
    if not lock.is_file():
        raise PackageError(f"{lock} is missing; run 'python tools/package.py --lock'")
    decided_by = [
        lock.read_text(encoding="utf-8"),
        *pip_command(arch, python_version, Path(), Path())[3:-4],
        *compile_command("python3.13", Path("site"))[1:],
    ]
    key = hashlib.sha256("\n".join(decided_by).encode()).hexdigest()[:16]
    target = cache_dir / f"{arch}-py{python_version}-{key}"
    if (target / ".complete").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir))
    try:
        done = subprocess.run(
            pip_command(arch, python_version, staging, lock), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise PackageError(f"pip could not install {lock.name} for {arch}/python {python_version}:\n{done.stderr}")
        if python_version == LAMBDA_PYTHON:
            compile_tree(staging)
        (staging / ".complete").touch()
        try:
            staging.rename(target)
        except OSError:  # another build won the race; its install is identical
            if not (target / ".complete").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def compile_command(python: str, tree: Path) -> list[str]:
    """compileall as Lambda's read-only task root wants it: 3.13 bytecode that is never re-validated."""
    return [
        python,
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(tree),
        "-p",
        TASK_ROOT,
        str(tree),
    ]


def compile_tree(tree: Path) -> None:
    """Compile every module under ``tree`` with Python 3.13 (PackageError in one line if there is none)."""
    from local_runtime.lambda_python import LambdaPythonError, find_interpreter

    try:
        python = find_interpreter()
    except LambdaPythonError as exc:
        raise PackageError(f"cannot compile for Lambda: {exc}") from None
    done = subprocess.run(compile_command(python, tree), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PackageError(f"python3.13 could not compile {tree}:\n{done.stdout}{done.stderr}")


def _installed_projects(site: Path) -> set[str]:
    names = set()
    for info in site.glob("*.dist-info"):
        names.add(_normalise(info.name[: -len(".dist-info")].rsplit("-", 1)[0]))
    return names


def check_no_dev_only(site: Path, root: Path = ROOT) -> None:
    """Refuse to ship a developer-only project, even one pulled in indirectly."""
    leaked = _installed_projects(site) & dev_only_packages(root)
    if leaked:
        raise PackageError(
            f"dev-only packages would ship to Lambda: {sorted(leaked)}; keep them out of requirements.txt"
        )


# ---------------------------------------------------------------------------
# The zip.
# ---------------------------------------------------------------------------


def _wanted(relative: Path) -> bool:
    if any(part in _EXCLUDED_DIRS for part in relative.parts[:-1]):
        return False
    if relative.suffix == ".pyc":  # only bytecode compiled here for 3.13, never a stray cache
        return relative.parent.name == "__pycache__" and f".{_PYC_TAG}." in relative.name
    return relative.name != ".complete" and not relative.name.endswith(_EXCLUDED_SUFFIXES)


def _dependency_files(site: Path) -> Iterator[tuple[str, Path]]:
    for path in site.rglob("*"):
        if path.is_file() and _wanted(path.relative_to(site)):
            yield path.relative_to(site).as_posix(), path


def _local_files(modules: Iterable[Path], root: Path) -> Iterator[tuple[str, Path]]:
    for module in modules:
        files = [module] if module.is_file() else sorted(module.rglob("*"))
        for path in files:
            if path.is_file() and _wanted(path.relative_to(root)):
                yield path.relative_to(root).as_posix(), path


def write_zip(entries: dict[str, Path], destination: Path) -> tuple[int, int]:
    """Write a reproducible zip; returns (zipped, unzipped) sizes in bytes.

    Modes are set explicitly (0644): Lambda runs the code as a user that must be
    able to read every file, whatever umask the build machine had.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    unzipped = 0
    # Level 6 (zlib's default): level 9 takes four times as long to save 0.3% here.
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100644 & 0xFFFF) << 16
            info.create_system = 3  # unix, so the mode above is honoured
            data = entries[name].read_bytes()
            unzipped += len(data)
            archive.writestr(info, data, compresslevel=6)
    partial.replace(destination)
    return destination.stat().st_size, unzipped


def _cached_zip(entries: dict[str, Path], destination: Path, cache_dir: Path) -> tuple[int, int]:
    """``write_zip``, or a copy of the zip an identical build already wrote.

    The key covers every entry's name and bytes plus this file's own source, so
    a changed handler, dependency or packaging rule always builds afresh.
    """
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for name in sorted(entries):
        digest.update(name.encode() + b"\0" + hashlib.sha256(entries[name].read_bytes()).digest())
    cached = cache_dir / "zips" / f"{digest.hexdigest()[:24]}.zip"
    if not cached.is_file():
        write_zip(entries, cached)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    shutil.copyfile(cached, partial)
    partial.replace(destination)
    with zipfile.ZipFile(destination) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    return destination.stat().st_size, unzipped


def zip_name(arch: str, python_version: str = LAMBDA_PYTHON) -> str:
    """``function-<arch>.zip`` for Lambda's Python; other versions are marked, never mistaken for it."""
    suffix = "" if python_version == LAMBDA_PYTHON else f"-py{python_version.replace('.', '')}"
    return f"function-{arch}{suffix}.zip"


def build(
    arch: str,
    out_dir: Path,
    python_version: str = LAMBDA_PYTHON,
    cache_dir: Path = DEFAULT_CACHE,
    root: Path = ROOT,
    use_zip_cache: bool = True,
) -> BuildResult:
    """Build one zip and check it against the dev-only list and Lambda's size limits.

    Installed dependencies (compiled) are reused from ``cache_dir``; the local
    modules are copied and compiled afresh every time.
    """
    if arch not in MACHINES:
        raise PackageError(f"unknown architecture {arch!r}; Lambda has {sorted(MACHINES)}")
    site = install_dependencies(arch, python_version, cache_dir, root)
    check_no_dev_only(site, root)
    entries = dict(_dependency_files(site))
    destination = out_dir / zip_name(arch, python_version)
    with tempfile.TemporaryDirectory(prefix="package-local-") as scratch:
        local = Path(scratch)
        for name, path in _local_files(local_modules(root), root):
            if name in entries:
                raise PackageError(f"{name} is both a local module and part of a dependency")
            copy = local / name
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
        if python_version == LAMBDA_PYTHON:
            compile_tree(local)
        entries.update(_dependency_files(local))
        if use_zip_cache:
            zipped, unzipped = _cached_zip(entries, destination, cache_dir)
        else:
            zipped, unzipped = write_zip(entries, destination)
    result = BuildResult(destination, arch, python_version, zipped, unzipped, len(entries))
    if zipped > ZIP_LIMIT or unzipped > UNZIPPED_LIMIT:
        raise PackageError(f"over Lambda's limits: {result.report()}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tools/package.py",
        description="Build the Lambda zip(s) without Docker: wheels for Lambda's platform plus the handler.",
    )
    parser.add_argument(
        "--arch",
        action="append",
        choices=sorted(MACHINES),
        help="architecture to build; repeat for several (default: both)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output directory (default: dist/)")
    parser.add_argument(
        "--python-version",
        default=LAMBDA_PYTHON,
        help="Python the wheels are for (default: %(default)s, Lambda's python3.13 runtime); "
        "another version gets a -pyXY suffix and is for local tests only",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE, help="where installed dependencies are reused from"
    )
    parser.add_argument("--list-modules", action="store_true", help="print the local modules that ship, and exit")
    parser.add_argument(
        "--lock",
        action="store_true",
        help="resolve requirements.txt for both architectures, write requirements.lock with hashes, and exit",
    )
    args = parser.parse_args(argv)

    if args.lock:
        try:
            print(f"wrote {write_lock(args.python_version).relative_to(ROOT)}")
        except PackageError as exc:
            print(f"package: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.list_modules:
        for module in local_modules():
            print(module.relative_to(ROOT).as_posix())
        return 0
    try:
        preview = flag("DRY_RUN", os.environ.get("DRY_RUN"))
    except InputError as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 2
    if preview:  # a preview is a preview: nothing is resolved, downloaded or written
        locked = len(read_lock()) if LOCK_FILE.is_file() else 0
        for arch in args.arch or sorted(MACHINES, reverse=True):
            destination = (args.out / zip_name(arch, args.python_version)).resolve()
            print(
                f"DRY_RUN: would build {destination} for {arch}: {len(local_modules())} local modules and "
                f"{locked} locked packages from {LOCK_FILE.name} (Python {args.python_version}); nothing built"
            )
        return 0
    for arch in args.arch or sorted(MACHINES, reverse=True):  # x86_64 first: it is the one the tests import
        try:
            result = build(arch, args.out.resolve(), args.python_version, args.cache_dir.resolve())
        except PackageError as exc:
            print(f"package: {exc}", file=sys.stderr)
            return 1
        print(result.report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
