"""Install (once, cached) everything the local stack runs: idempotent, safe to call every time.

| piece                      | from                    | lands in                         |
|----------------------------|-------------------------|----------------------------------|
| Kafka broker + log4j2      | Maven Central (pom)     | <cache>/kafka-<ver>/libs         |
| Kafka connector, SQL client/gateway | Maven Central  | <cache>/jars, then Flink lib/opt |
| flink-python (the wheel's opt/) | the PyFlink wheel     | Flink lib                        |
| kafka-resuming connector   | Maven build of connector/ | <cache>/jars, then Flink lib   |
| Parquet + Hadoop client (lake) | Maven Central (pom)  | <cache>/lake-jars, then Flink lib |
| FerretDB launcher          | Go module proxy         | <cache>/bin                      |
| mongosh (test client)      | npm registry            | <cache>/node                     |
| kcat, docker-compose (tests)| Debian packages        | /usr/bin                         |
| Prometheus (stack.metrics) | Debian package          | /usr/bin/prometheus              |
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from stack.layout import Layout, flink_home
from stack.versions import versions

STACK_DIR = Path(__file__).resolve().parent
CONNECTOR_DIR = STACK_DIR.parent / "connector"
console = Console(stderr=True)


class InstallError(RuntimeError):
    """An install step failed; the message says which and shows the tool's output."""


def _run(cmd: list[str], what: str, cwd: Path | None = None, env: dict | None = None) -> None:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise InstallError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise InstallError(f"'{tool}' is not on PATH: {hint}")
    return path


def _maven_copy(pom: str, dest: Path, props: dict[str, str], transitive: bool) -> None:
    """Resolve a pom's dependencies with Maven into `dest` (atomically: a marker file last)."""
    marker = dest / ".complete"
    if marker.exists():
        return
    mvn = _require("mvn", "install Maven (Debian package 'maven')")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(STACK_DIR / "maven" / pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}",
        "-DincludeScope=runtime",
        f"-DexcludeTransitive={'false' if transitive else 'true'}",
        *(f"-D{k}={v}" for k, v in props.items()),
    ]
    try:
        _run(cmd, f"Maven resolve of {pom}")
    except InstallError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / ".complete").touch()
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def install_kafka(layout: Layout) -> None:
    v = versions()
    _maven_copy(
        "kafka.pom.xml",
        layout.kafka_libs,
        {"kafka.version": v["kafka"], "log4j.version": v["log4j"]},
        transitive=True,
    )


def connector_jar(layout: Layout) -> Path:
    """The Kafka SQL connector jar (also what `pipeline.jars` points at for in-process explain)."""
    return layout.jars / f"flink-sql-connector-kafka-{versions()['flink_kafka_connector']}.jar"


def install_flink_jars(layout: Layout) -> None:
    """Fetch the jars the wheel lacks and place them where the wheel's scripts look."""
    v = versions()
    _maven_copy(
        "flink.pom.xml",
        layout.jars,
        {
            "flink.version": v["flink"],
            "kafka.connector.version": v["flink_kafka_connector"],
        },
        transitive=False,
    )
    home = flink_home()
    wheel_version = (home / "version.py").read_text() if (home / "version.py").exists() else ""
    if v["flink"] not in wheel_version:
        raise InstallError(
            f"the installed PyFlink wheel at {home} is not Flink {v['flink']}: "
            "reinstall the venv (make venv)"
        )
    placements = {
        connector_jar(layout): home / "lib",
        layout.jars / f"flink-sql-gateway-{v['flink']}.jar": home / "opt",
        # PyFlink ships flink-python (42 MB: Beam, gRPC, Arrow) with every job unless the
        # TaskManager has it: each job then loaded it into a class loader of its own that
        # outlived the job (about 48 MB of metaspace each; the 256 MB default ran out after
        # five jobs). From lib/ it is loaded once.
        home / "opt" / f"flink-python-{v['flink']}.jar": home / "lib",
    }
    # an earlier install placed a second SQL client jar (2.2.0) next to the wheel's own;
    # sql-client.sh breaks on duplicates, so keep only the wheel's
    for stale in (home / "opt").glob("flink-sql-client-*.jar"):
        if stale.name != f"flink-sql-client-{v['flink']}.jar":
            stale.unlink()
    for jar, target_dir in placements.items():
        target = target_dir / jar.name
        if not target.exists():
            shutil.copy2(jar, target)


def lake_jars(layout: Layout) -> list[Path]:
    """The jars of the job's Parquet lake sinks (stack/maven/lake.pom.xml), once installed."""
    return sorted((layout.cache / "lake-jars").glob("*.jar"))


def install_lake_jars(layout: Layout) -> None:
    """Fetch the Parquet format and Hadoop's client jars and place them in Flink's lib/."""
    v = versions()
    _maven_copy(
        "lake.pom.xml",
        layout.cache / "lake-jars",
        {
            "flink.parquet.version": v["flink_parquet"],
            "parquet.version": v["parquet"],
            "hadoop.version": v["hadoop"],
        },
        transitive=False,
    )
    lib = flink_home() / "lib"
    for jar in lake_jars(layout):
        if not (lib / jar.name).exists():
            shutil.copy2(jar, lib / jar.name)


def _connector_sources_digest() -> str:
    """A digest of connector/'s build inputs (pom and main sources): a jar is rebuilt exactly
    when they change."""
    h = hashlib.sha256()
    files = [CONNECTOR_DIR / "pom.xml", *sorted((CONNECTOR_DIR / "src" / "main").rglob("*"))]
    for path in files:
        if path.is_file():
            h.update(str(path.relative_to(CONNECTOR_DIR)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def resuming_connector_jar(layout: Layout) -> Path:
    """The `kafka-resuming` connector built from connector/ (its name carries the sources'
    digest, so Flink's lib/ never holds a stale one)."""
    return layout.jars / f"fraud-connector-{_connector_sources_digest()}.jar"


def install_resuming_connector(layout: Layout) -> None:
    """Build connector/ with Maven (dependencies from Maven Central, versions from
    stack/versions.toml) and place the jar in Flink's lib/, replacing an older build."""
    jar = resuming_connector_jar(layout)
    if not jar.exists():
        mvn = _require("mvn", "install Maven (Debian package 'maven')")
        v = versions()
        with tempfile.TemporaryDirectory(prefix="fraud-connector.") as build:
            _run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(CONNECTOR_DIR / "pom.xml"),
                    "package",
                    "-DskipTests",
                    f"-Dflink.version={v['flink']}",
                    f"-Dkafka.connector.version={v['flink_kafka_connector']}",
                    f"-Dbuild.dir={build}",
                ],
                "Maven build of connector/",
            )
            built = Path(build) / "fraud-connector.jar"
            if not built.exists():
                raise InstallError(f"Maven build of connector/ left no jar at {built}")
            layout.jars.mkdir(parents=True, exist_ok=True)
            tmp = jar.with_suffix(".tmp")
            shutil.copy2(built, tmp)
            tmp.rename(jar)
    lib = flink_home() / "lib"
    # one build only, in the cache (the Docker image copies it from there) and in lib/ (two
    # would declare the connector twice)
    for stale in [*lib.glob("fraud-connector-*.jar"), *layout.jars.glob("fraud-connector-*.jar")]:
        if stale.name != jar.name:
            stale.unlink()
    if not (lib / jar.name).exists():
        shutil.copy2(jar, lib / jar.name)


def install_ferretdb(layout: Layout) -> None:
    """Build the FerretDB launcher (stack/ferretdb) from the Go module proxy."""
    if layout.ferretdb_bin.exists():
        return
    go = _require("go", "install Go 1.24+")
    src = STACK_DIR / "ferretdb"
    pinned = versions()["ferretdb"]
    if f"github.com/FerretDB/FerretDB {pinned}" not in (src / "go.mod").read_text():
        raise InstallError(f"stack/ferretdb/go.mod does not require FerretDB {pinned}")
    layout.ferretdb_bin.parent.mkdir(parents=True, exist_ok=True)
    tmp = layout.ferretdb_bin.with_suffix(".tmp")
    env = {**os.environ, "CGO_ENABLED": "0"}
    _run([go, "build", "-trimpath", "-o", str(tmp), "."], "go build of FerretDB", src, env)
    tmp.rename(layout.ferretdb_bin)


def install_mongosh(layout: Layout) -> None:
    if layout.mongosh_bin.exists():
        return
    npm = _require("npm", "install Node.js and npm")
    layout.node_prefix.mkdir(parents=True, exist_ok=True)
    _run(
        [
            npm,
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "-g",
            "--prefix",
            str(layout.node_prefix),
            f"mongosh@{versions()['mongosh']}",
        ],
        "npm install mongosh",
    )


# test clients from Debian: command -> package
APT_TOOLS = {"kcat": "kafkacat", "docker-compose": "docker-compose"}
# the stack's metrics server (stack.metrics): Debian's 2.42, whose HTTP API is all the project
# uses (the package has no web UI bundle)
APT_METRICS = {"prometheus": "prometheus"}


def install_apt_tools(tools: dict[str, str] = APT_TOOLS, hint: str = "") -> None:
    """Debian packages for the commands `tools` names (command -> package) that are not on
    PATH: by default kcat (independent Kafka client) and docker-compose v1 (validates
    docker-compose.yml). With apt-get when root, else an InstallError saying what to do."""
    missing = [pkg for tool, pkg in tools.items() if not shutil.which(tool)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise InstallError(
            f"missing Debian packages {missing}: install them (needs root: "
            f"sudo apt-get install {' '.join(missing)}){hint}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-qq"], "apt-get update", env=env)
    _run(["apt-get", "install", "-y", "-qq", *missing], f"apt-get install {missing}", env=env)


def install_prometheus() -> None:
    """Debian's prometheus. The package also installs a system service of its own (on 9090,
    like the stack's default): apt-get does not start it in a container (policy-rc.d), but on
    a machine with systemd it does; `stack up` then refuses port 9090 with a message."""
    install_apt_tools(APT_METRICS, hint=", or turn the stack's metrics off (stack.metrics: false)")


def install(layout: Layout, test_clients: bool = False, metrics: bool = False) -> None:
    """Install every missing piece, showing progress; raises InstallError on the first failure.
    `metrics`: also Prometheus (stack.metrics)."""
    layout.ensure_dirs()
    steps: list[tuple[str, Callable[[], None]]] = [
        (f"Kafka {versions()['kafka']} (Maven)", lambda: install_kafka(layout)),
        ("Flink Kafka connector + SQL gateway (Maven)", lambda: install_flink_jars(layout)),
        (
            "kafka-resuming connector (Maven build of connector/)",
            lambda: install_resuming_connector(layout),
        ),
        ("Parquet and Hadoop client jars for the lake (Maven)", lambda: install_lake_jars(layout)),
        (f"FerretDB {versions()['ferretdb']} (go build)", lambda: install_ferretdb(layout)),
    ]
    if metrics:
        steps.append(("Prometheus (apt)", install_prometheus))
    if test_clients:
        steps += [
            (f"mongosh {versions()['mongosh']} (npm)", lambda: install_mongosh(layout)),
            ("kcat, docker-compose (apt)", install_apt_tools),
        ]
    for label, step in steps:
        with console.status(f"installing {label} ..."):
            step()
        console.print(f"[green]✓[/] {label}")
