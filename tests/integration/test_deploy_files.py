"""Deployment files: compose validates, every command exists, Prometheus files check.

Needs no service: docker-compose and promtool validate offline (Debian's packages; a test skips with
the reason when its binary is missing).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.env import BIN, ROOT

yaml = pytest.importorskip("yaml", reason="PyYAML (test extra) reads the deployment files")

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS = ROOT / "ops" / "prometheus.yml"
ALERTS = ROOT / "ops" / "alerts.yml"
SYSTEMD = ROOT / "ops" / "systemd"
DASHBOARD = ROOT / "ops" / "grafana" / "ethhook-dashboard.json"

# Images that are not ours: their commands belong to them.
FOREIGN_IMAGES = ("postgres:", "redis:", "prom/prometheus:")


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


# --- (a) docker-compose config -------------------------------------------------------------------


def _docker_compose() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip(
            "docker-compose is not installed (apt-get install -y docker-compose); "
            "it validates the compose file offline"
        )
    return binary


def _compose_config(
    tmp_path: Path, env_file: Path | None, secret_keys: str | None
) -> subprocess.CompletedProcess[str]:
    """`docker-compose config`, with ETHHOOK_SECRET_KEYS in the environment only if given."""
    args = [_docker_compose()]
    if env_file is not None:
        args += ["--env-file", str(env_file)]
    env = {k: v for k, v in os.environ.items() if k != "ETHHOOK_SECRET_KEYS"}
    if secret_keys is not None:
        env["ETHHOOK_SECRET_KEYS"] = secret_keys
    # Run from an empty folder so a developer's own .env does not take part.
    return subprocess.run(
        [*args, "-f", str(COMPOSE), "config"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _env_example_with_key(tmp_path: Path, key: str) -> Path:
    """.env.example as a user fills it in: a key made for ETHHOOK_SECRET_KEYS."""
    text = ENV_EXAMPLE.read_text()
    assert re.search(r"^ETHHOOK_SECRET_KEYS=$", text, re.MULTILINE), "the line to fill in is gone"
    filled = tmp_path / "filled.env"
    filled.write_text(
        re.sub(r"^ETHHOOK_SECRET_KEYS=$", f"ETHHOOK_SECRET_KEYS={key}", text, flags=re.M)
    )
    return filled


ETHHOOK_SERVICES = (
    "migrate",
    "listener",
    "match-worker",
    "deliver-worker",
    "maintenance-worker",
    "beat",
    "api",
    "flower",
)


@pytest.mark.parametrize("env_file", [None, ENV_EXAMPLE], ids=["no-env", "env-example"])
def test_docker_compose_config_accepts_the_file(env_file: Path | None, tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    if env_file is None:
        result = _compose_config(tmp_path, None, secret_keys=key)
    else:
        result = _compose_config(tmp_path, _env_example_with_key(tmp_path, key), secret_keys=None)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) >= {
        "postgres",
        "redis",
        "migrate",
        "listener",
        "match-worker",
        "deliver-worker",
        "maintenance-worker",
        "beat",
        "flower",
        "api",
        "prometheus",
    }
    for name in ETHHOOK_SERVICES:
        assert services[name]["environment"]["ETHHOOK_SECRET_KEYS"] == key, name
    if env_file is not None:
        flower_env = services["flower"]["environment"]
        assert flower_env["FLOWER_BASIC_AUTH"] == "admin:change-me"


@pytest.mark.parametrize("env_file", [None, ENV_EXAMPLE], ids=["no-env", "env-example"])
def test_docker_compose_refuses_to_run_without_secret_keys(
    env_file: Path | None, tmp_path: Path
) -> None:
    """Endpoint secrets are encrypted at rest in every compose deployment: no key, no start."""
    result = _compose_config(tmp_path, env_file, secret_keys=None)
    assert result.returncode != 0, result.stdout
    assert "set ETHHOOK_SECRET_KEYS, see .env.example" in result.stderr, result.stderr
    # An empty value is refused too, as .env.example leaves it until it is filled in.
    empty = _compose_config(tmp_path, env_file, secret_keys="")
    assert empty.returncode != 0 and "set ETHHOOK_SECRET_KEYS" in empty.stderr, empty.stderr


def test_compose_services_have_health_checks_and_order() -> None:
    services = _compose()["services"]
    for name in (
        "postgres",
        "redis",
        "listener",
        "match-worker",
        "deliver-worker",
        "flower",
        "api",
    ):
        assert "healthcheck" in services[name], name
    assert services["migrate"]["restart"] == "no"
    for name in ("listener", "match-worker", "deliver-worker", "maintenance-worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["deliver-worker"]["command"] == ["workers/deliver.sh"]
    assert "-P gevent" in (ROOT / "workers" / "deliver.sh").read_text()


def test_no_secret_is_committed() -> None:
    for path in (COMPOSE, ENV_EXAMPLE, SYSTEMD / "ethhook.env.example"):
        text = path.read_text()
        for line in text.splitlines():
            if re.match(r"\s*#", line):
                continue
            match = re.match(r"\s*[A-Z_]*(PASSWORD|BASIC_AUTH)\s*[:=]\s*(\S+)", line)
            if match:
                value = match.group(2)
                assert value.startswith("${") or "change-me" in value, f"{path.name}: {line}"
            plain = re.sub(r"\$\{[^}]*\}", "VAR", line)
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", plain):
                assert password in ("VAR", "change-me"), line
        assert not re.search(r"whsec_[A-Za-z0-9+/=]{8,}", text), path.name


# --- (b) every command exists --------------------------------------------------------------------


def _celery_subcommands() -> set[str]:
    from celery.bin.celery import celery

    return set(celery.commands)  # includes plugins such as flower


def _check_ethhook(args: list[str]) -> None:
    from ethhook.cli import build_parser

    try:
        parsed = build_parser().parse_args(args)
    except SystemExit as exc:
        raise AssertionError(f"`ethhook {' '.join(args)}` is not a valid command") from exc
    assert callable(getattr(parsed, "func", None)), args


def _check_celery(args: list[str]) -> None:
    assert args[:2] == ["-A", "ethhook.celery_app"], args
    sub = args[2]
    assert sub in _celery_subcommands(), f"celery has no `{sub}` command"
    if sub == "inspect":
        from celery.app.control import Inspect

        assert callable(getattr(Inspect, args[3], None)), f"celery inspect has no `{args[3]}`"


def _check_script(path: Path) -> None:
    assert path.is_file(), f"{path} does not exist"
    if path.suffix == ".sh":
        assert path.stat().st_mode & 0o111, f"{path} is not executable"
        execs = re.findall(r"^exec ((?:celery|ethhook-worker) .*)$", path.read_text(), re.MULTILINE)
        assert execs, f"{path} does not exec a celery command"
        check_command(shlex.split(execs[0]))


def check_command(argv: list[str]) -> None:
    """Fail unless argv runs `ethhook …`, `celery -A ethhook.celery_app …`, `ethhook-worker …`
    or a workers/ script."""
    if argv and argv[0] == "env":  # env VAR=value command …
        argv = argv[1:]
        while argv and "=" in argv[0]:
            argv = argv[1:]
    program = Path(argv[0]).name
    if program == "ethhook":
        _check_ethhook(argv[1:])
    elif program == "celery":
        _check_celery(argv[1:])
    elif program == "ethhook-worker":  # = celery -A ethhook.celery_app worker
        assert shutil.which("ethhook-worker", path=str(BIN)), "ethhook-worker is not installed"
    elif "workers/" in argv[0]:
        _check_script(ROOT / "workers" / Path(argv[0]).name)
    elif program in ("python", "python3") and argv[1:2] == ["-c"]:
        pass  # inline health probe (urllib)
    else:
        raise AssertionError(f"unknown command {argv!r}")


def _compose_commands() -> list[tuple[str, list[str]]]:
    found = []
    for name, service in _compose()["services"].items():
        if service.get("image", "").startswith(FOREIGN_IMAGES):
            continue
        command = service["command"]
        found.append((name, command if isinstance(command, list) else shlex.split(command)))
        test = service.get("healthcheck", {}).get("test")
        if test:
            if test[0] == "CMD-SHELL":
                found.append((f"{name} healthcheck", shlex.split(test[1].replace("$$", "$"))))
            else:
                found.append((f"{name} healthcheck", test[1:]))
    return found


def _systemd_commands() -> list[tuple[str, list[str]]]:
    found = []
    for unit in sorted(SYSTEMD.glob("*.service")):
        lines = [ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart")]
        assert lines, f"{unit.name} has no ExecStart"
        for line in lines:
            found.append((unit.name, shlex.split(line.split("=", 1)[1])))
    return found


def test_every_compose_command_exists() -> None:
    commands = _compose_commands()
    assert len(commands) >= 8
    for where, argv in commands:
        try:
            check_command(argv)
        except AssertionError as exc:
            raise AssertionError(f"docker-compose.yml, {where}: {exc}") from exc


def test_every_systemd_command_exists_and_reads_the_env_file() -> None:
    commands = _systemd_commands()
    units = {unit for unit, _ in commands}
    assert units == {
        "ethhook-listener.service",
        "ethhook-match-worker.service",
        "ethhook-deliver-worker.service",
        "ethhook-maintenance-worker.service",
        "ethhook-beat.service",
        "ethhook-flower.service",
        "ethhook-api.service",
    }
    for unit, argv in commands:
        try:
            check_command(argv)
        except AssertionError as exc:
            raise AssertionError(f"ops/systemd/{unit}: {exc}") from exc
        text = (SYSTEMD / unit).read_text()
        assert "EnvironmentFile=/etc/ethhook/ethhook.env" in text, unit
    ports = [
        re.search(r"ETHHOOK_WORKER_METRICS_PORT=(\d+)", (SYSTEMD / u).read_text())
        for u in units
        if "worker" in u
    ]
    assert len({m.group(1) for m in ports if m}) == 3, "each worker unit needs its own port"


def test_check_command_rejects_what_does_not_exist() -> None:
    for argv in (
        ["ethhook", "serve"],
        ["celery", "-A", "ethhook.celery_app", "frobnicate"],
        ["workers/nope.sh"],
        ["gunicorn", "app"],
    ):
        with pytest.raises(AssertionError):
            check_command(argv)


# --- (c) Prometheus files --------------------------------------------------------------------------


def _promtool() -> str | None:
    return shutil.which("promtool")


def test_promtool_accepts_config_and_rules() -> None:
    binary = _promtool()
    if binary is None:
        pytest.skip("promtool is not installed (apt-get install -y prometheus); YAML checks run")
    for args in (["check", "config", str(PROMETHEUS)], ["check", "rules", str(ALERTS)]):
        result = subprocess.run(
            [binary, *args], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
        assert result.returncode == 0, result.stdout + result.stderr


# PromQL words that are not metric names.
_PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk",
    "quantile", "count_values", "rate", "irate", "increase", "delta", "idelta", "deriv",
    "changes", "resets", "absent", "absent_over_time", "vector", "scalar", "label_replace",
    "label_join", "histogram_quantile", "clamp_min", "clamp_max", "abs", "time", "timestamp",
    "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "count_over_time",
    "last_over_time", "predict_linear", "sort", "sort_desc", "round", "ceil", "floor",
}  # fmt: skip


def metric_names_in(expr: str) -> set[str]:
    """Identifiers in a PromQL expression that name series (not functions, labels or keywords)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "{}", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w])", expr):
        word = match.group(1)
        if word in _PROMQL_WORDS or re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def test_alert_expressions_use_only_exported_metrics() -> None:
    from tests.support.metric_names import iter_metric_names

    known = set(iter_metric_names()) | {"up"}
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    wanted = {
        "EthHookListenerLagging",
        "EthHookChainDisconnected",
        "EthHookCircuitBreakerOpen",
        "EthHookDeadLetteredDeliveriesGrowing",
        "EthHookQueueBacklog",
        "EthHookWorkerDown",
    }
    assert wanted <= {a["alert"] for a in alerts}
    for alert in alerts:
        assert alert["annotations"]["summary"], alert["alert"]
        unknown = metric_names_in(alert["expr"]) - known
        assert not unknown, f"{alert['alert']} uses metrics nobody exports: {sorted(unknown)}"


def test_metric_name_extraction() -> None:
    expr = 'sum by (chain) (increase(reorgs_total{chain="x"}[15m])) > 3 and up == 0'
    assert metric_names_in(expr) == {"reorgs_total", "up"}


def test_prometheus_scrapes_listener_and_every_worker() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["ethhook-listener"]["static_configs"][0]["targets"] == ["listener:3000"]
    services = _compose()["services"]
    for job, service in (
        ("ethhook-match", "match-worker"),
        ("ethhook-deliver", "deliver-worker"),
        ("ethhook-maintenance", "maintenance-worker"),
    ):
        sd = jobs[job]["dns_sd_configs"][0]
        assert sd["names"] == [service] and sd["port"] == 9808
        assert services[service]["environment"]["ETHHOOK_WORKER_METRICS_PORT"] == "9808"
    assert jobs["ethhook-api"]["static_configs"][0]["targets"] == ["api:8080"]
    assert services["api"]["environment"]["ETHHOOK_API_PORT"] == "8080"
    assert config["rule_files"] == ["alerts.yml"]


def test_dashboard_queries_use_exported_metrics() -> None:
    import json

    from tests.support.metric_names import iter_metric_names

    known = set(iter_metric_names()) | {"up"}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert len(exprs) >= 8
    for expr in exprs:
        expr = expr.replace("$__rate_interval", "5m")
        assert not metric_names_in(expr) - known, expr
