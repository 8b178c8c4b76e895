"""Engine distributions from Maven Central: which versions, how they are fetched and installed.

The `integ-test-zip` artifacts are the smallest official server builds (no bundled JDK, no ML), so
a developer machine or CI gets a real node with nothing but Maven and a JDK. Downloads and unpacked
homes live in a cache outside the repository (``$DSR_CACHE_DIR``, default ``~/.cache/dsr``) and are
reused; a file lock makes concurrent first uses safe.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from dsr.errors import EngineStartError

ELASTICSEARCH = "elasticsearch"
OPENSEARCH = "opensearch"


@dataclass(frozen=True)
class MavenArtifact:
    group: str
    artifact: str
    version: str
    packaging: str = "zip"

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}:{self.packaging}"

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.{self.packaging}"


@dataclass(frozen=True)
class JarModule:
    """A server module that the integ-test zip leaves out, rebuilt from its jars on Maven Central.

    OpenSearch's k-NN plugin extends `lang-painless`, which ships only in the full distribution;
    its jars are published one by one, so the module folder is assembled here with its descriptor.
    """

    name: str
    classname: str
    jars: tuple[MavenArtifact, ...]
    security_policy: str = ""


@dataclass(frozen=True)
class Distribution:
    """A server build and what is added to it; a `variant` (say, with security) has a home of its own."""

    flavor: str
    version: str
    server: MavenArtifact
    plugins: tuple[MavenArtifact, ...] = ()
    modules: tuple[JarModule, ...] = ()
    variant: str = ""

    @property
    def unpacked_name(self) -> str:
        """The top-level folder of the server zip."""
        return f"{self.flavor}-{self.version}"

    @property
    def home_name(self) -> str:
        return self.unpacked_name + (f"-{self.variant}" if self.variant else "")


# Elasticsearch 8.x and OpenSearch 2.x run on the machine's JDK 17; 9.x / 3.x would need JDK 21.
ES_VERSION = os.environ.get("DSR_ES_VERSION", "8.19.7")
OS_VERSION = os.environ.get("DSR_OS_VERSION", "2.19.1")

DISTRIBUTIONS: dict[str, Distribution] = {
    ELASTICSEARCH: Distribution(
        ELASTICSEARCH,
        ES_VERSION,
        MavenArtifact("org.elasticsearch.distribution.integ-test-zip", "elasticsearch", ES_VERSION),
    ),
    OPENSEARCH: Distribution(
        OPENSEARCH,
        OS_VERSION,
        MavenArtifact("org.opensearch.distribution.integ-test-zip", "opensearch", OS_VERSION),
        plugins=(MavenArtifact("org.opensearch.plugin", "opensearch-knn", f"{OS_VERSION}.0"),),
        modules=(
            JarModule(
                "lang-painless",
                "org.opensearch.painless.PainlessPlugin",
                (
                    MavenArtifact("org.opensearch.plugin", "lang-painless", OS_VERSION, "jar"),
                    MavenArtifact("org.opensearch.plugin", "opensearch-scripting-painless-spi", OS_VERSION, "jar"),
                    MavenArtifact("org.antlr", "antlr4-runtime", "4.13.1", "jar"),
                    *(MavenArtifact("org.ow2.asm", a, "9.7", "jar")
                      for a in ("asm", "asm-util", "asm-tree", "asm-commons", "asm-analysis")),
                ),
                security_policy='grant {\n  permission java.lang.RuntimePermission "createClassLoader";\n'
                '  permission java.lang.RuntimePermission "getClassLoader";\n};\n',
            ),
        ),
    ),
}


SECURITY_PLUGIN = MavenArtifact("org.opensearch.plugin", "opensearch-security", f"{OS_VERSION}.0")
SECURED_OPENSEARCH = replace(DISTRIBUTIONS[OPENSEARCH], plugins=(*DISTRIBUTIONS[OPENSEARCH].plugins, SECURITY_PLUGIN),
                             variant="security")
"""OpenSearch with its security plugin (authentication, index and document level security), for tests
of what callers may see; see `dsr.engines.security`."""


def cache_dir() -> Path:
    """Where downloads, unpacked homes and node state live.

    As root the engines run as an unprivileged user (they refuse root), who must be able to read
    the home: so root's default is a system folder rather than root's private home.
    """
    if os.environ.get("DSR_CACHE_DIR"):
        return Path(os.environ["DSR_CACHE_DIR"])
    if os.geteuid() == 0:
        return Path("/var/cache/dsr")
    return Path.home() / ".cache" / "dsr"


def java_home() -> str | None:
    """The JDK to run the engines with: $DSR_JAVA_HOME, $JAVA_HOME, or the one `java` on PATH belongs to."""
    for var in ("DSR_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(var):
            return os.environ[var]
    java = shutil.which("java")
    if java:
        return str(Path(java).resolve().parent.parent)
    return None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fetch(artifact: MavenArtifact, dest: Path) -> Path:
    """The artifact's file in `dest`, downloaded with `mvn dependency:copy` unless already there."""
    target = dest / artifact.file_name
    if target.is_file() and target.stat().st_size > 0:
        return target
    if shutil.which("mvn") is None:
        raise EngineStartError(f"cannot fetch {artifact.coordinates}: Maven (`mvn`) is not installed")
    dest.mkdir(parents=True, exist_ok=True)
    cmd = ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={artifact.coordinates}", f"-DoutputDirectory={dest}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=dest)
    if proc.returncode != 0 or not target.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise EngineStartError(f"cannot download {artifact.coordinates} from Maven Central:\n{tail}")
    return target


def _run_plugin_install(home: Path, flavor: str, plugin_zip: Path) -> None:
    tool = home / "bin" / f"{flavor}-plugin"
    env = dict(os.environ)
    jh = java_home()
    if jh:
        env["JAVA_HOME"] = jh
        env["OPENSEARCH_JAVA_HOME" if flavor == OPENSEARCH else "ES_JAVA_HOME"] = jh
    proc = subprocess.run([str(tool), "install", "--batch", plugin_zip.resolve().as_uri()],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise EngineStartError(f"cannot install plugin {plugin_zip.name} into {home}:\n{tail}")


def install(dist: Distribution, root: Path | None = None) -> Path:
    """An unpacked home for `dist` (with its plugins), created once and reused."""
    root = root or cache_dir()
    home = root / "engines" / dist.home_name
    marker = home / ".dsr-installed"
    if marker.is_file():
        return home
    with _locked(root / "locks" / f"{dist.home_name}.lock"):
        if marker.is_file():
            return home
        server_zip = fetch(dist.server, root / "dist")
        plugin_zips = [fetch(p, root / "dist") for p in dist.plugins]
        module_jars = {m.name: [fetch(j, root / "dist") for j in m.jars] for m in dist.modules}
        staging = Path(tempfile.mkdtemp(prefix=f".{dist.home_name}.", dir=home.parent if home.parent.exists()
                                        else _mkdir(home.parent)))
        try:
            with zipfile.ZipFile(server_zip) as zf:
                zf.extractall(staging)
            unpacked = staging / dist.unpacked_name
            if not unpacked.is_dir():
                raise EngineStartError(f"{server_zip.name}: expected a top-level folder {dist.unpacked_name}")
            for f in (unpacked / "bin").iterdir():
                f.chmod(0o755)
            for module in dist.modules:
                _assemble_module(unpacked, dist, module, module_jars[module.name])
            for pz in plugin_zips:
                _run_plugin_install(unpacked, dist.flavor, pz)
            _make_readable(unpacked)
            shutil.rmtree(home, ignore_errors=True)
            unpacked.rename(home)
            marker.write_text(dist.version + "\n")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return home


def _assemble_module(home: Path, dist: Distribution, module: JarModule, jars: list[Path]) -> None:
    folder = home / "modules" / module.name
    folder.mkdir(parents=True, exist_ok=True)
    for jar in jars:
        shutil.copy2(jar, folder / jar.name)
    descriptor = {
        "description": f"{module.name} (assembled from Maven Central jars)",
        "version": dist.version,
        "name": module.name,
        "classname": module.classname,
        "java.version": "11",
        f"{dist.flavor}.version": dist.version,
        "extended.plugins": "",
        "has.native.controller": "false",
    }
    (folder / "plugin-descriptor.properties").write_text("".join(f"{k}={v}\n" for k, v in descriptor.items()))
    if module.security_policy:
        (folder / "plugin-security.policy").write_text(module.security_policy)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _make_readable(home: Path) -> None:
    """Let the unprivileged engine user read the home (and traverse the cache) when we are root."""
    if os.geteuid() != 0:
        return
    for path in [home, *home.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | 0o444 | (0o111 if path.is_dir() or mode & 0o100 else 0))
    for parent in home.parents:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o111)
