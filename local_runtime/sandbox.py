"""Lambda's sandbox around one execution environment, built with bubblewrap (no Docker).

On Lambda a function meets a small, fixed file system: its code read-only at
``/var/task`` (also the working directory), the runtime under ``/var/lang`` and
``/var/runtime``, layers under ``/opt``, and one writable place, a ``/tmp`` of
the function's EphemeralStorage size that belongs to its execution environment
alone. Everything it starts dies with the environment. This module builds that
on Linux with Debian's ``bubblewrap`` (``bwrap``, what Flatpak uses): it needs
no daemon and no C of ours, runs unprivileged where user namespaces are
allowed, and one command line says the whole layout. util-linux ``unshare``
would need a shell script of mounts run as root, or a user namespace where the
real uid is lost. Inside the sandbox:

* a mount namespace: the host's root read-only, ``/var`` and ``/opt`` fresh
  (task root, interpreter, awslambdaric, layers bound read-only in them), the
  user's home directory an empty read-only directory (``~/.aws``, ``~/.ssh``
  are not readable), a private tmpfs ``/tmp`` of EphemeralStorage MB (ENOSPC
  past it), a private ``/dev`` and ``/proc``;
* a PID namespace whose init is bwrap: when the runtime exits or the service
  kills the environment, every process the function started is killed by the
  kernel with it (``--die-with-parent`` also covers the runner being killed);
* an IPC namespace. The network namespace stays shared: the Runtime API is on
  the host's 127.0.0.1.

The limits that do not need namespaces (1,024 file descriptors, the memory
watch, the freeze between invocations) apply with the sandbox off too; see
:mod:`local_runtime.memory_watch`. ``describe`` is the one line saying what is
in force and, for each guarantee that is off, why.
"""

from __future__ import annotations

import os
import platform
import resource
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from local_runtime import memory_watch
from local_runtime.config import FunctionConfig
from local_runtime.lambda_python import RUNTIME_DIR

MODES = ("auto", "on", "off")
FD_LIMIT = 1024  # Lambda's file descriptor quota
TASK, LANG, RUNTIME, OPT = "/var/task", "/var/lang", "/var/runtime", "/opt"
# What Lambda's python3.13 and provided.al2023 images set (docs: configuration-envvars).
LAMBDA_PATH = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"
LAMBDA_LD_LIBRARY_PATH = ":".join(
    [
        "/var/lang/lib",
        "/lib64",
        "/usr/lib64",
        "/var/runtime",
        "/var/runtime/lib",
        "/var/task",
        "/var/task/lib",
        "/opt/lib",
    ]
)


class SandboxError(RuntimeError):
    """``--sandbox on`` where the sandbox cannot be built (one line, exit status 2)."""


@dataclass(frozen=True)
class Support:
    """Whether bubblewrap can build a sandbox here; ``reason`` says why not."""

    bwrap: str | None
    reason: str = ""


@cache
def support() -> Support:
    """Probe once per process: Linux, a bwrap on PATH (or $LAMBDA_BWRAP) that can make namespaces."""
    if platform.system() != "Linux":
        return Support(None, f"{platform.system()} has no Linux namespaces")
    override = os.environ.get("LAMBDA_BWRAP")
    bwrap = shutil.which(override or "bwrap")
    if bwrap is None:
        where = f"LAMBDA_BWRAP={override} is not an executable" if override else "bubblewrap (bwrap) is not installed"
        return Support(None, f"{where}; install it: apt-get install bubblewrap")
    try:
        probe = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--die-with-parent", "true"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Support(None, f"{bwrap} does not run: {exc}")
    if probe.returncode != 0:
        detail = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        return Support(None, f"{bwrap} cannot create namespaces here (user namespaces disabled?): {detail}")
    return Support(bwrap)


def enabled(config: FunctionConfig) -> bool:
    """True when this function's environments run sandboxed; SandboxError for ``on`` where impossible."""
    if config.sandbox == "off":
        return False
    found = support()
    if found.bwrap is None:
        if config.sandbox == "on":
            raise SandboxError(f"--sandbox on: the sandbox cannot be built: {found.reason}")
        return False
    return True


def fd_limit_enforceable() -> bool:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return hard == resource.RLIM_INFINITY or hard >= FD_LIMIT


def describe(config: FunctionConfig) -> str:
    """One line: which sandbox and memory method is in force, and each guarantee that is off, and why."""
    on: list[str] = []
    off: list[str] = []
    if enabled(config):
        tmp = (
            "the host's temp dir as /tmp (--tmp shared, no quota)"
            if not config.tmp_per_environment
            else f"a private {config.ephemeral_storage_mb} MB /tmp"
        )
        on.append(f"bubblewrap namespaces: /var/task read-only, {tmp}, home hidden, children die with it")
    else:
        why = "--sandbox off" if config.sandbox == "off" else support().reason
        off.append(f"read-only /var/task, private /tmp and its quota, hidden home, PID namespace ({why})")
    cgroup = memory_watch.delegated_cgroup()
    if cgroup is not None:
        on.append(f"memory: cgroup v2 {cgroup} (kill at {config.memory_mb} MB, swap off)")
        on.append("processes/threads 1,024 (pids.max)")
    else:
        on.append(f"memory: a watch over every process of the environment, kill at {config.memory_mb} MB")
        why = f"{memory_watch.no_cgroup_reason()}; RLIMIT_NPROC counts per user and does not bind root"
        off.append(f"processes/threads 1,024 ({why})")
    on.append("frozen between invocations")
    if fd_limit_enforceable():
        on.append("1,024 file descriptors")
    else:
        off.append("1,024 file descriptors (the hard limit here is lower)")
    line = "sandbox: " + "; ".join(on)
    if off:
        line += ". Off: " + "; ".join(off)
    return line


@dataclass
class Launch:
    """How to start one environment's runtime: argv, working directory, environment."""

    argv: list[str]
    cwd: str
    env: dict[str, str]


def _interpreter_prefix(interpreter: str) -> tuple[Path, str] | None:
    """(prefix, path under it) when the interpreter sits in ``<prefix>/bin``, as installs do."""
    real = Path(interpreter).resolve()
    if real.parent.name != "bin":
        return None
    return real.parent.parent, f"bin/{real.name}"


def _check_entrypoint(path: Path) -> None:
    """Popen's own errors for a bootstrap that bwrap would otherwise report as exit status 1."""
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    if not path.is_file() or not os.access(path, os.X_OK):
        raise PermissionError(13, "Permission denied", str(path))


def _home_dirs() -> list[str]:
    """The user's home (and root's), to be hidden; never ``/`` itself."""
    homes = {os.environ.get("HOME", ""), os.path.expanduser("~"), "/root"}
    return sorted(h for h in homes if h and os.path.isdir(h) and Path(h).resolve() != Path("/"))


def launch(
    config: FunctionConfig, command: list[str], env: dict[str, str], sandboxed: bool, cgroup_procs: str | None
) -> Launch:
    """The command line for one environment: the rlimits, optionally its cgroup, then bwrap or the runtime."""
    prelude = f"ulimit -n {FD_LIMIT} 2>/dev/null"
    if cgroup_procs:
        prelude += f"; echo $$ > {shlex.quote(cgroup_procs)} || exit 125"
    wrapper = ["/bin/sh", "-c", prelude + '; exec "$@"', "lambda-env"]
    if not sandboxed:
        return Launch(wrapper + command, str(config.task_root), env)
    task_root = Path(config.task_root)
    args = ["--ro-bind", "/", "/", "--tmpfs", "/var", "--tmpfs", OPT]
    args += ["--ro-bind", str(task_root), TASK]
    inside = list(command)
    if config.runtime == "provided.al2023":
        _check_entrypoint(task_root / "bootstrap")
        inside[0] = f"{TASK}/bootstrap"
    else:
        found = _interpreter_prefix(command[0])
        if found is not None:
            args += ["--ro-bind", str(found[0]), LANG]
            inside[0] = f"{LANG}/{found[1]}"
        args += ["--ro-bind", str(RUNTIME_DIR), RUNTIME]
    layer_paths = []
    for number, layer in enumerate(config.layers):
        target = f"{OPT}/python" if number == 0 else f"{OPT}/layer{number}/python"
        args += ["--ro-bind", str(layer), target]
        layer_paths.append(target)
    args += ["--remount-ro", "/var", "--remount-ro", OPT]
    for home in _home_dirs():
        args += ["--tmpfs", home, "--remount-ro", home]
    if config.tmp_per_environment:
        args += ["--size", str(config.ephemeral_storage_mb << 20), "--tmpfs", "/tmp"]
    else:
        args += ["--bind", env.get("TMPDIR") or tempfile.gettempdir(), "/tmp"]  # the host's, as its TMPDIR says
    args += ["--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--unshare-ipc", "--die-with-parent"]
    args += ["--chdir", TASK]
    bwrap = support().bwrap
    assert bwrap is not None
    return Launch([*wrapper, bwrap, *args, *inside], "/", sandbox_environment(config, env, layer_paths))


def sandbox_environment(config: FunctionConfig, env: dict[str, str], layer_paths: list[str]) -> dict[str, str]:
    """The reserved variables as Lambda sets them inside: paths under /var and /opt, no TMPDIR."""
    inside = {k: v for k, v in env.items() if k not in ("TMPDIR", "TEMP", "TMP")}
    inside["LAMBDA_TASK_ROOT"] = TASK
    inside["LAMBDA_RUNTIME_DIR"] = RUNTIME
    inside["PATH"] = LAMBDA_PATH
    inside["LD_LIBRARY_PATH"] = LAMBDA_LD_LIBRARY_PATH
    if config.runtime.startswith("python"):
        inside["PYTHONPATH"] = os.pathsep.join([*layer_paths, RUNTIME])
    return inside


def exit_code(code: int, sandboxed: bool) -> int:
    """bwrap reports a runtime killed by signal N as 128 + N; give it back as Popen's -N."""
    if sandboxed and 128 < code < 128 + 65:
        return -(code - 128)
    return code
