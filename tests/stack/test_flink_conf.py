"""The Flink configuration the local stack writes for its daemons (no process started)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from config import Settings, load_settings
from stack.layout import Layout
from stack.services import FLINK_LOG4J_EXTRA, TaskManager, remove_leftover_taskmanager_dirs


def _written_conf(tmp_path: Path, flink: dict[str, Any] | None = None, **stack: Any):
    """The settings (stack dirs under tmp_path) and the config.yaml the TaskManager writes."""
    dirs = {"data_dir": "data", "log_dir": "logs", "run_dir": "pids"}
    s: Settings = load_settings(
        flink=flink or {}, stack={**{k: str(tmp_path / d) for k, d in dirs.items()}, **stack}
    )
    layout = Layout.from_settings(s)
    TaskManager(s, layout).write_config()
    return s, yaml.safe_load((layout.flink_conf / "config.yaml").read_text())


@pytest.mark.parametrize(("backend", "fraction"), [("hashmap", 0.15), ("rocksdb", 0.4)])
def test_managed_memory_follows_the_jobs_state_backend(tmp_path: Path, backend, fraction):
    s, conf = _written_conf(tmp_path, flink={"state_backend": backend})
    assert conf["taskmanager.memory.managed.fraction"] == fraction
    assert conf["taskmanager.memory.process.size"] == s.stack.taskmanager_memory


@pytest.mark.parametrize(
    ("backend", "parallelism", "taskmanagers", "slots"),
    [
        ("hashmap", 1, 1, 4),
        ("hashmap", 2, 2, 4),
        # RocksDB's memory is its slot's share of the managed memory: no slot left idle
        ("rocksdb", 1, 1, 1),
        ("rocksdb", 2, 1, 2),
        ("rocksdb", 4, 2, 2),
        ("rocksdb", 3, 2, 2),
    ],
)
def test_task_slots_follow_the_jobs_state_backend(
    tmp_path: Path, backend, parallelism, taskmanagers, slots
):
    _, conf = _written_conf(
        tmp_path,
        flink={"state_backend": backend, "parallelism": parallelism},
        taskmanagers=taskmanagers,
    )
    assert conf["taskmanager.numberOfTaskSlots"] == slots


@pytest.mark.parametrize("backend", ["hashmap", "rocksdb"])
def test_task_slots_set_in_the_config_win(tmp_path: Path, backend):
    _, conf = _written_conf(tmp_path, flink={"state_backend": backend}, taskmanager_slots=3)
    assert conf["taskmanager.numberOfTaskSlots"] == 3


@pytest.mark.parametrize("size", ["64m", "256m"])
def test_network_memory_is_the_fixed_size_the_stack_sets(tmp_path: Path, size):
    _, conf = _written_conf(tmp_path, taskmanager_network_memory=size)
    # min = max: not Flink's tenth of the process, whatever the process size
    assert conf["taskmanager.memory.network.min"] == conf["taskmanager.memory.network.max"] == size


@pytest.mark.parametrize(
    ("percent", "options"),
    [(20, "-XX:+UnlockExperimentalVMOptions -XX:G1NewSizePercent=20"), (0, "")],
)
def test_taskmanager_young_generation_share_reaches_its_jvm(tmp_path: Path, percent, options):
    _, conf = _written_conf(tmp_path, taskmanager_young_percent=percent)
    assert conf["env.java.opts.taskmanager"] == options
    # Flink's own options for every JVM stay as the wheel ships them
    assert "--add-opens" in conf["env.java.opts.all"]


@pytest.mark.parametrize("percent", [-1, 51])
def test_taskmanager_young_generation_share_out_of_range_is_refused(percent):
    with pytest.raises(ValueError, match="taskmanager_young_percent"):
        load_settings(stack={"taskmanager_young_percent": percent})


def test_the_taskmanager_gets_the_card_token_key_as_a_file_and_no_secret_of_the_caller(
    monkeypatch, tmp_path: Path
):
    # Beam logs the Python workers' environment, which is the TaskManager's, when a job stops
    monkeypatch.setenv("FRAUD_CARD_TOKEN_SECRET", "key-of-the-caller")
    monkeypatch.setenv("FRAUD_MONGO__URI", "mongodb://user:password@db:27017/")
    s, _ = _written_conf(tmp_path)
    env = TaskManager(s, Layout.from_settings(s)).env()
    assert "FRAUD_CARD_TOKEN_SECRET" not in env
    assert "FRAUD_MONGO__URI" not in env
    assert not [k for k, v in env.items() if "key-of-the-caller" in v or "password" in v]
    key_file = Path(env["FRAUD_CARD_TOKEN_SECRET_FILE"])
    assert key_file.read_text() == "key-of-the-caller"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_flinks_log4j_files_log_only_errors_of_beams_environment_handling(tmp_path: Path):
    s, _ = _written_conf(tmp_path)
    written = sorted(Layout.from_settings(s).flink_conf.glob("log4j*.properties"))
    assert len(written) >= 3  # the daemons', the console's and the CLI's
    for f in written:
        lines = f.read_text().splitlines()
        assert "logger.beam_environment.level = ERROR" in lines, f.name
        assert FLINK_LOG4J_EXTRA.read_text().strip().splitlines()[-1] in lines
        # Flink's own settings stay: the file is appended to, not replaced
        assert any(line.startswith("rootLogger.") for line in lines), f.name


def test_flinks_prometheus_reporter_serves_on_the_port_range(tmp_path: Path):
    _, conf = _written_conf(tmp_path, ports={"flink_metrics": "9300-9305"})
    factory = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
    assert conf["metrics.reporter.prom.factory.class"] == factory
    # a range: the JobManager and every TaskManager each take the first free port of it
    assert conf["metrics.reporter.prom.port"] == "9300-9305"
    # the factory ships in the wheel's plugins/, where the daemons look for plugins
    from stack.layout import flink_home

    jars = list((flink_home() / "plugins" / "metrics-prometheus").glob("*.jar"))
    assert jars, "no Prometheus reporter plugin in the PyFlink wheel"
    import zipfile

    with zipfile.ZipFile(jars[0]) as jar:
        names = jar.namelist()
        services = jar.read(
            "META-INF/services/org.apache.flink.metrics.reporter.MetricReporterFactory"
        )
    assert factory.replace(".", "/") + ".class" in names
    assert factory in services.decode()


def test_no_reporter_when_the_stacks_metrics_are_off(tmp_path: Path):
    _, conf = _written_conf(tmp_path, metrics=False)
    assert not any(k.startswith("metrics.reporter.") for k in conf)


def test_prometheus_scrapes_the_reporter_range_and_the_announced_endpoints(tmp_path: Path):
    import shutil
    import subprocess

    from stack.services import Prometheus

    s, _ = _written_conf(
        tmp_path,
        ports={"flink_metrics": "9300-9302", "prometheus": 9999},
        metrics_scrape_interval="5 s",
    )
    svc = Prometheus(s, Layout.from_settings(s))
    conf = svc.scrape_config()
    jobs = {j["job_name"]: j for j in conf["scrape_configs"]}
    assert jobs["flink"]["static_configs"][0]["targets"] == [
        "127.0.0.1:9300",
        "127.0.0.1:9301",
        "127.0.0.1:9302",
    ]
    targets = s.stack.metrics_targets_dir()
    assert jobs["fraudctl_sink"]["file_sd_configs"][0]["files"] == [str(targets / "sink-*.json")]
    assert jobs["fraudctl_notify"]["file_sd_configs"][0]["files"] == [
        str(targets / "notify-*.json")
    ]
    assert conf["global"]["scrape_interval"] == "5s"
    assert conf["global"]["scrape_timeout"] == "5s"
    assert svc.marker == f"--config.file={svc.config_file}"
    promtool = shutil.which("promtool")  # Debian's prometheus package brings it
    if promtool:
        svc.config_file.parent.mkdir(parents=True)
        svc.config_file.write_text(yaml.safe_dump(conf))
        proc = subprocess.run(
            [promtool, "check", "config", str(svc.config_file)], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_daemons_temporary_files_live_in_the_stacks_data_dir(tmp_path: Path):
    s, conf = _written_conf(tmp_path)
    assert conf["io.tmp.dirs"] == str(Layout.from_settings(s).flink_tmp)
    assert Path(conf["io.tmp.dirs"]).is_relative_to(tmp_path / "data")


def test_a_killed_taskmanagers_directories_are_removed_and_nothing_else(tmp_path: Path):
    s, _ = _written_conf(tmp_path)
    layout = Layout.from_settings(s)
    left = [layout.flink_tmp / "tm_127.0.0.1:40617-42f5bf", layout.flink_tmp / "tm_other"]
    for path in left:
        (path / "blobStorage").mkdir(parents=True)
    (layout.flink_tmp / "jm_keep").mkdir()
    assert remove_leftover_taskmanager_dirs(layout) == sorted(left)
    assert [p.name for p in layout.flink_tmp.iterdir()] == ["jm_keep"]
