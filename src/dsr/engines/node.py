"""A real single-node Elasticsearch or OpenSearch server on loopback.

Used by `dsr engines start|stop|status` (so a user without Docker can run a local node) and by the
test suite's session fixtures. Security is off, discovery is single-node, ports are free ones, data
and logs go to a fresh folder, and the heap is small. A node that fails to come up is reported with
the tail of its log. `start_node("opensearch", security=Security(...))` starts an OpenSearch node with
its security plugin on instead (`dsr.engines.security`), from a home of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from dsr.engines.distribution import (
    DISTRIBUTIONS,
    ELASTICSEARCH,
    OPENSEARCH,
    SECURED_OPENSEARCH,
    cache_dir,
    install,
    java_home,
)
from dsr.engines.ports import free_port
from dsr.engines.security import Security, basic_auth_header
from dsr.errors import EngineStartError

HEAP = os.environ.get("DSR_ENGINE_HEAP", "512m")
ENGINE_USER = os.environ.get("DSR_ENGINE_USER", "dsr-engine")


def _engine_user() -> str | None:
    """The user to run the node as: None normally, an unprivileged one when we are root.

    Both engines refuse to run as root; on a root-only machine (containers, CI) a system user is
    created once for them.
    """
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(ENGINE_USER)
    except KeyError:
        proc = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                               ENGINE_USER], capture_output=True, text=True)
        if proc.returncode != 0 and "already exists" not in proc.stderr:
            raise EngineStartError(
                f"the engines refuse to run as root and the user {ENGINE_USER!r} could not be created: "
                f"{proc.stderr.strip()}") from None
    return ENGINE_USER


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, entry.pw_uid, entry.pw_gid)


def _settings(flavor: str, http_port: int, transport_port: int, data: Path, logs: Path) -> dict[str, str]:
    settings = {
        "cluster.name": f"dsr-{flavor}-{http_port}",
        "node.name": "dsr-node",
        "discovery.type": "single-node",
        "network.host": "127.0.0.1",
        "http.port": str(http_port),
        "transport.port": str(transport_port),
        "path.data": str(data),
        "path.logs": str(logs),
        "cluster.routing.allocation.disk.threshold_enabled": "false",
    }
    if flavor == ELASTICSEARCH:
        settings["xpack.security.enabled"] = "false"
    return settings


def _point_jvm_files_at(work: Path) -> None:
    """jvm.options names GC logs, crash logs and heap dumps relative to the home; keep them in `work`."""
    options = work / "config" / "jvm.options"
    if not options.is_file():
        return
    text = options.read_text()
    for old, new in (("file=logs/", f"file={work}/logs/"), ("ErrorFile=logs/", f"ErrorFile={work}/logs/"),
                     ("HeapDumpPath=data", f"HeapDumpPath={work}/data")):
        text = text.replace(old, new)
    options.write_text(text)


@dataclass
class NodeInfo:
    """What is needed to find, check and stop a running node (persisted for `dsr engines`)."""

    flavor: str
    version: str
    url: str
    pid: int
    workdir: str

    @property
    def log_dir(self) -> Path:
        return Path(self.workdir) / "logs"


def log_tail(info: NodeInfo, lines: int = 30) -> str:
    chunks: list[str] = []
    logs = [f for f in sorted(info.log_dir.glob("*.log")) if "gc" not in f.name]
    for f in sorted(Path(info.workdir).glob("*.out")) + logs:
        try:
            chunks += f.read_text(errors="replace").splitlines()
        except OSError:
            continue
    return "\n".join(chunks[-lines:]) or "(no log output)"


def _health(url: str, timeout: float = 2.0, auth: tuple[str, str] | None = None) -> str | None:
    request = urllib.request.Request(f"{url}/_cluster/health",
                                     headers={"Authorization": basic_auth_header(*auth)} if auth else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return str(json.loads(resp.read()).get("status"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child counts as dead
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:
        return True


def start_node(flavor: str, *, port: int | None = None, workdir: Path | None = None,
               timeout: float = 180.0, security: Security | None = None) -> NodeInfo:
    """Start a node and wait until its cluster health is yellow or green.

    `security`: OpenSearch only; the node authenticates every request and the admin of `security`
    may do anything.
    """
    if flavor not in DISTRIBUTIONS:
        raise EngineStartError(f"unknown engine {flavor!r}; choose one of {sorted(DISTRIBUTIONS)}")
    if security is not None and flavor != OPENSEARCH:
        raise EngineStartError(f"a secured node is available for {OPENSEARCH} only, not {flavor}")
    dist = DISTRIBUTIONS[flavor] if security is None else SECURED_OPENSEARCH
    home = install(dist)
    jh = java_home()
    if jh is None:
        raise EngineStartError(f"cannot start {flavor} {dist.version}: no JDK found (set JAVA_HOME)")
    work = Path(workdir or tempfile.mkdtemp(prefix=f"dsr-{flavor}-"))
    (work / "data").mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    # A private copy of the config folder: the node may write there (keystore), the shared home stays clean.
    shutil.copytree(home / "config", work / "config", dirs_exist_ok=True)
    _point_jvm_files_at(work)
    http_port = port or free_port()
    settings = _settings(flavor, http_port, free_port(), work / "data", work / "logs")
    if security is not None:
        security.prepare(home, work / "config")
        settings.update(security.settings())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "OPENSEARCH_"))}
    env["JAVA_HOME"] = jh
    prefix = "ES" if flavor == ELASTICSEARCH else "OPENSEARCH"
    env[f"{prefix}_JAVA_HOME"] = jh
    env[f"{prefix}_JAVA_OPTS"] = f"-Xms{HEAP} -Xmx{HEAP}"
    env[f"{prefix}_PATH_CONF"] = str(work / "config")
    user = _engine_user()
    if user:
        _chown_tree(work, user)
        env["HOME"] = str(work)
    cmd = [str(home / "bin" / flavor)] + [f"-E{k}={v}" for k, v in settings.items()]
    out = open(work / f"{flavor}.out", "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work,
                            start_new_session=True, user=user, group=user, extra_groups=[] if user else None)
    out.close()
    info = NodeInfo(flavor, dist.version, f"http://127.0.0.1:{http_port}", proc.pid, str(work))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EngineStartError(
                f"{flavor} {dist.version} exited with status {proc.returncode} while starting; log tail:\n"
                + log_tail(info)
            )
        if _health(info.url, auth=security.admin_auth if security else None) in ("green", "yellow"):
            return info
        time.sleep(1.0)
    stop_node(info)
    raise EngineStartError(
        f"{flavor} {dist.version} did not reach yellow health within {timeout:.0f}s; log tail:\n" + log_tail(info)
    )


def stop_node(info: NodeInfo, *, timeout: float = 30.0, remove_data: bool = True) -> None:
    """Stop the node's process group (SIGTERM, then SIGKILL) and remove its temp folder."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(info.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(info.pid, signal.SIGKILL)
    if remove_data:
        shutil.rmtree(info.workdir, ignore_errors=True)


# -- persisted state for `dsr engines` ---------------------------------------------------------

def _state_file(flavor: str) -> Path:
    return cache_dir() / "run" / f"{flavor}.json"


def save_state(info: NodeInfo) -> None:
    path = _state_file(info.flavor)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(info)))


def load_state(flavor: str) -> NodeInfo | None:
    path = _state_file(flavor)
    if not path.is_file():
        return None
    try:
        return NodeInfo(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None


def clear_state(flavor: str) -> None:
    _state_file(flavor).unlink(missing_ok=True)


def node_status(info: NodeInfo) -> str:
    if not _alive(info.pid):
        return "stopped"
    return _health(info.url) or "starting or unresponsive"


FLAVORS = (ELASTICSEARCH, OPENSEARCH)
