"""The recipes under deploy/, checked by what this machine can run: the systemd units by
``systemd-analyze verify`` (and its security rating), the backup unit's commands by running
them, the compose file parsed, the Dockerfile read instruction by instruction, and the
proxy examples against the paths the app really serves."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest
import yaml

from gridbot.adapters.telegram.adapter import WEBHOOK_PATH
from gridbot.adapters.wechat.official_account import CALLBACK_PATH as MP_PATH
from gridbot.adapters.wechat.wecom import CALLBACK_PATH as WECOM_PATH
from gridbot.config.sections import ConfigFile
from gridbot.web import HEALTH_PATH
from gridbot.web_settings import HttpSettings
from tests.conftest import EXAMPLE_CONFIG, ROOT
from tests.telegram_harness import GROUP_ID, LIU, World, bound

DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
DOCKER = DEPLOY / "docker"
PROXY = DEPLOY / "proxy"
#: where the units expect gridbot; the tests point a copy at this environment's instead
INSTALLED = "/opt/gridbot/.venv/bin/gridbot"
GRIDBOT = Path(sys.executable).parent / "gridbot"
#: every path gridbot's HTTP server answers, as the adapters mount them
APP_PATHS = {HEALTH_PATH, WEBHOOK_PATH, WECOM_PATH, MP_PATH}
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(SYSTEMD_ANALYZE is None,
                                   reason="systemd-analyze is not installed here")


def directives(path: Path) -> dict[str, list[str]]:
    """A unit file's ``Key=value`` lines, every value of each key in order."""
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def units_here(folder: Path) -> list[Path]:
    """Copies of the units whose ExecStart runs this environment's gridbot (an existing
    executable, as ``verify`` demands); nothing else in them is changed."""
    copies = []
    for unit in sorted(UNITS.glob("gridbot*.*")):
        if unit.suffix not in (".service", ".timer"):
            continue
        text = unit.read_text(encoding="utf-8")
        copy = folder / unit.name
        copy.write_text(text.replace(INSTALLED, str(GRIDBOT)), encoding="utf-8")
        copies.append(copy)
    return copies


# -- systemd --------------------------------------------------------------------------------------


def test_the_service_runs_as_its_own_user_in_a_read_only_system() -> None:
    unit = directives(UNITS / "gridbot.service")
    assert unit["User"] == ["gridbot"] and unit["Group"] == ["gridbot"]
    assert unit["ExecStart"] == [f"{INSTALLED} --config /etc/gridbot/gridbot.toml run"]
    assert unit["EnvironmentFile"] == ["/etc/gridbot/gridbot.env"]
    assert unit["StateDirectory"] == ["gridbot"] and unit["StateDirectoryMode"] == ["0700"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["RestartPreventExitStatus"] == ["2 3"]  # nor a configuration or an old schema
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices",
                "RestrictSUIDSGID", "LockPersonality"):
        assert unit[key] == ["yes"], key
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["CapabilityBoundingSet"] == [""]
    assert unit["UMask"] == ["0077"]
    # the timer starts the backup service, which runs gridbot backup as the same user
    backup = directives(UNITS / "gridbot-backup.service")
    assert backup["User"] == ["gridbot"] and backup["Type"] == ["oneshot"]
    assert backup["ExecStart"] == [f"{INSTALLED} --config /etc/gridbot/gridbot.toml backup"]
    timer = directives(UNITS / "gridbot-backup.timer")
    assert timer["Persistent"] == ["true"] and timer["OnCalendar"]


@needs_systemd
def test_systemd_analyze_verifies_every_unit(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    copies = units_here(tmp_path)
    assert {c.name for c in copies} == {"gridbot.service", "gridbot-backup.service",
                                        "gridbot-backup.timer"}
    run = subprocess.run([SYSTEMD_ANALYZE, "verify", *map(str, copies)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0 and run.stderr.strip() == "", run.stderr
    # and verify does catch a broken unit: the units as shipped name a gridbot not here
    if not Path(INSTALLED).exists():
        (tmp_path / "shipped").mkdir()
        shipped = shutil.copy(UNITS / "gridbot.service", tmp_path / "shipped")
        run = subprocess.run([SYSTEMD_ANALYZE, "verify", shipped], capture_output=True,
                             text=True, timeout=60, check=False)
        assert run.returncode != 0 and INSTALLED in run.stderr


@needs_systemd
def test_systemd_rates_the_units_exposure_low(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    for copy in units_here(tmp_path):
        if copy.suffix != ".service":
            continue
        # exposure on systemd's 0-10 scale, as tenths: 2.0 or less ("OK" or "SAFE")
        run = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=yes", "--threshold=20",
                              str(copy)], capture_output=True, text=True, timeout=60,
                             check=False)
        if "--offline" in run.stderr and "unrecognized" in run.stderr:
            pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
        assert run.returncode == 0, (copy.name, run.stdout[-400:], run.stderr)
        assert re.search(r"Overall exposure level for \S+: (?:[01]\.\d|2\.0) ", run.stdout), \
            run.stdout[-300:]


@needs_systemd
def test_the_backup_timer_fires_nightly() -> None:
    assert SYSTEMD_ANALYZE is not None
    (when,) = directives(UNITS / "gridbot-backup.timer")["OnCalendar"]
    run = subprocess.run([SYSTEMD_ANALYZE, "calendar", when], capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert "Normalized form: *-*-* 03:30:00 Asia/Shanghai" in run.stdout


def test_the_backup_units_commands_copy_the_database_and_keep_fresh_copies(
        database: Path, tmp_path: Path) -> None:
    """The backup service's two commands, run as written on a configuration like the one
    the deployment page writes (an absolute SQLite path outside the configuration's
    folder): a checked copy in backups/, which the clean-up leaves alone."""
    etc, state = tmp_path / "etc", database.parent
    etc.mkdir()
    config = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        'url = "sqlite:///gridbot.db"', f'url = "sqlite:///{database}"')
    (etc / "gridbot.toml").write_text(config, encoding="utf-8")
    unit = directives(UNITS / "gridbot-backup.service")
    for line in unit["ExecStart"] + unit["ExecStartPost"]:
        line = (line.replace(INSTALLED, str(GRIDBOT))
                .replace("/etc/gridbot/", f"{etc}/").replace("/var/lib/gridbot/", f"{state}/"))
        run = subprocess.run(shlex.split(line), cwd=state, capture_output=True, text=True,
                             timeout=120, check=False)
        assert run.returncode == 0, (line, run.stdout, run.stderr)
    (copy,) = (state / "backups").glob("gridbot-*.db")
    assert copy.stat().st_mode & 0o077 == 0
    records = [json.loads(line) for line in
               (state / "backups" / "backups.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == 1


def test_the_environment_file_names_the_variables_the_example_configuration_uses() -> None:
    example = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    named = set(re.findall(r'"env:(GRIDBOT_[A-Z0-9_]+)"', example))
    env = (UNITS / "gridbot.env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#? ?(GRIDBOT_[A-Z0-9_]+)=", env, re.MULTILINE))
    platform = {v for v in named if v.startswith(("GRIDBOT_TELEGRAM", "GRIDBOT_WECOM",
                                                  "GRIDBOT_MP"))}
    assert platform and platform <= listed, platform - listed


# -- containers -----------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (keyword, arguments), continuation lines joined."""
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_the_dockerfile_builds_from_a_pinned_slim_python_as_a_non_root_user() -> None:
    steps = dockerfile()
    (base,) = [rest for keyword, rest in steps if keyword == "FROM"]
    image, _, tag = base.partition(":")
    assert image == "python" and tag.startswith("3.11-slim") and "latest" not in tag
    users = [rest for keyword, rest in steps if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert [k for k, _ in steps].index("USER") > max(
        i for i, (k, _) in enumerate(steps) if k == "RUN")  # nothing runs as root after it
    entry = json.loads(dict(steps)["ENTRYPOINT"]) + json.loads(dict(steps)["CMD"])
    assert entry[0] == "gridbot" and entry[-1] == "run"
    assert any(HEALTH_PATH in rest for keyword, rest in steps if keyword == "HEALTHCHECK")


def test_the_dockerfile_copies_what_the_wheel_is_built_from() -> None:
    """The same files tests/test_packaging.py builds the wheel from, each there, and none
    left out by .dockerignore."""
    copied = []
    for keyword, rest in dockerfile():
        if keyword == "COPY":
            *sources, _target = rest.split()
            copied += sources
    assert sorted(s.rstrip("/") for s in copied) == sorted(
        ["pyproject.toml", "README.md", "config.example.toml", "gridbot", "handlers",
         "templates"])
    for source in copied:
        assert (ROOT / source).exists(), source
    # COPY keeps symbolic links as links: each must point at something copied too
    # (gridbot/data/demo.toml, the demo's sample org, is config.example.toml)
    inside = {(ROOT / s).resolve() for s in copied}
    links = [p for s in copied for p in (ROOT / s).rglob("*") if p.is_symlink()]
    assert links
    for link in links:
        target = link.resolve()
        assert any(target == c or target.is_relative_to(c) for c in inside), link
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert {s.rstrip("/") for s in copied} <= kept


def test_the_dockerfile_installs_the_package_with_extras_that_exist() -> None:
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
                 ["project"]["optional-dependencies"])
    runs = " ".join(rest for keyword, rest in dockerfile() if keyword == "RUN")
    (spec,) = re.findall(r"pip install (\S+)", runs)
    spec = spec.strip("'\"")
    assert spec == "." or spec.startswith(".[")
    assert set(spec[2:-1].split(",")) <= extras
    assert "bundled_font()" in runs  # the CJK font is proven present at build time


def overrides_name_real_keys(names: set[str]) -> None:
    """Each ``GRIDBOT_A__B`` names a key of the configuration, as the loader reads it."""
    for name in names:
        model: type = ConfigFile
        for part in name.removeprefix("GRIDBOT_").lower().split("__"):
            assert part in model.model_fields, name
            model = model.model_fields[part].annotation or object


def test_the_compose_file_runs_gridbot_on_postgresql() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"db", "gridbot"}
    db, bot = services["db"], services["gridbot"]
    image, _, tag = db["image"].partition(":")
    assert image == "postgres" and tag and tag != "latest"
    build = bot["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    url = bot["environment"]["GRIDBOT_STORAGE__URL"]
    assert url.startswith("postgresql://") and "@db:5432/" in url
    overrides_name_real_keys({k for k in bot["environment"] if "__" in k})
    entry = json.loads(dict(dockerfile())["ENTRYPOINT"])
    config_path = entry[entry.index("--config") + 1]
    assert any(v.split(":")[1] == config_path and v.endswith(":ro") for v in bot["volumes"])
    assert all(p.startswith("127.0.0.1:") for p in bot["ports"])  # the proxy is in front
    (env_file,) = bot["env_file"]
    assert (DOCKER / f"{env_file}.example").exists()
    assert bot["read_only"] is True and bot["cap_drop"] == ["ALL"]


def test_the_dockerfiles_settings_name_real_keys() -> None:
    envs = " ".join(rest for keyword, rest in dockerfile() if keyword == "ENV")
    overrides_name_real_keys(set(re.findall(r"(GRIDBOT_\w+__\w+)=", envs)))
    port = int(re.findall(r"GRIDBOT_HTTP__PORT=(\d+)", envs)[0])
    assert f"EXPOSE {port}" in (DOCKER / "Dockerfile").read_text(encoding="utf-8")


# -- HTTPS proxies --------------------------------------------------------------------------------


def uncommented(path: Path) -> str:
    return "\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith("#"))


def nginx_paths() -> set[str]:
    """The locations nginx passes on to gridbot (those answering 404 excluded)."""
    text = uncommented(PROXY / "nginx.conf")
    found = set()
    for match in re.finditer(r"location\s+(=\s*)?(\S+)\s*\{([^}]*)\}", text):
        if "proxy_pass http://gridbot" in match[3]:
            found.add(match[2])
    return found


def caddy_paths() -> set[str]:
    text = uncommented(PROXY / "Caddyfile")
    return {m[1].rstrip("*") for m in re.finditer(
        r"handle\s+(/\S*)\s*\{\s*reverse_proxy\s+(\S+)\s*\}", text)}


def console_path() -> str | None:
    """The web console's path, when this checkout has a ``[web]`` section."""
    if ConfigFile.model_fields.get("web") is None:
        return None
    from gridbot.console.settings import WebSettings

    return str(WebSettings().path)


def test_the_proxies_pass_on_each_webhook_and_health_to_the_http_server() -> None:
    served = APP_PATHS | {"/console"}  # the console: see the test below
    for name, paths in (("nginx.conf", nginx_paths()), ("Caddyfile", caddy_paths())):
        assert paths == served, (name, paths ^ served)
    http = HttpSettings()
    upstream = f"{http.host}:{http.port}"
    assert f"server {upstream};" in uncommented(PROXY / "nginx.conf")
    caddy = uncommented(PROXY / "Caddyfile")
    assert set(re.findall(r"reverse_proxy\s+(\S+)", caddy)) == {upstream}
    for name in ("nginx.conf", "Caddyfile"):
        text = uncommented(PROXY / name)
        assert "404" in text  # nothing else of the server is exposed
        assert "/metrics" not in text  # Prometheus scrapes it privately (commented example)


def test_the_proxies_pass_on_the_console_where_the_configuration_puts_it() -> None:
    path = console_path()
    if path is None:
        pytest.skip("no [web] section in this checkout: the console is not merged yet")
    assert path.rstrip("/") == "/console", "the proxy examples pass on /console"
    assert path.rstrip("/") in nginx_paths() and path.rstrip("/") in caddy_paths()


# -- the deployment page, as written --------------------------------------------------------------


def page_block(marker: str) -> list[str]:
    text = (ROOT / "docs" / "zh" / "deploy.md").read_text(encoding="utf-8")
    block = text.split(f"<!-- {marker} -->", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
    return [line for line in block.strip().strip("`").strip().splitlines() if line.strip()]


def as_here(line: str, etc: Path, state: Path) -> str:
    """A line of the page as this test can run it: the same commands and arguments, with
    the server's folders in a temporary one, and without sudo or the change of owner (the
    test is one user already); ``gb`` is the page's alias for gridbot with its --config."""
    line = line.replace("sudo -u gridbot ", "").replace("sudo ", "")
    line = line.replace("-o gridbot -g gridbot ", "")
    line = re.sub(r"^gb ", f"{GRIDBOT} --config /etc/gridbot/gridbot.toml ", line)
    return line.replace("/etc/gridbot/", f"{etc}/").replace("/var/lib/gridbot/", f"{state}/")


@pytest.mark.slow(20)
def test_the_deployment_pages_configuration_steps_work_as_written(tmp_path: Path) -> None:
    """Step 4 (init from the roster, the database moved to the state folder, import) and
    step 8 (people, link cards), on the sample sheets under the page's names for them."""
    etc, state, home = tmp_path / "etc", tmp_path / "var", tmp_path / "home"
    for folder in (etc, state, home):
        folder.mkdir()
    shutil.copy(ROOT / "examples" / "roster.xlsx", home / "花名册.xlsx")
    shutil.copy(ROOT / "examples" / "roster-households.csv", home / "住户.csv")
    lines = page_block("deploy-config") + page_block("deploy-link")[:2]
    for line in lines:
        command = as_here(line, etc, state)
        run = subprocess.run(["bash", "-c", command], cwd=home, capture_output=True,
                             text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
        assert run.returncode == 0, (line, run.stdout, run.stderr)
        assert "Traceback" not in run.stderr
    assert (state / "gridbot.db").exists() and not (etc / "gridbot.db").exists()
    text = (etc / "gridbot.toml").read_text(encoding="utf-8")
    assert f'url = "sqlite:///{state}/gridbot.db"' in text
    assert len(list((state / "cards").glob("*.png"))) >= 1


NGINX, CADDY = shutil.which("nginx"), shutil.which("caddy")


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed here")
def test_nginx_accepts_the_example(tmp_path: Path) -> None:
    """``nginx -t`` on the site file inside a minimal nginx.conf, with a self-signed
    certificate in place of the one certbot writes and every path in a temporary folder."""
    assert NGINX is not None
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=gridbot.example.org", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    live = "/etc/letsencrypt/live/gridbot.example.org/"
    site = (PROXY / "nginx.conf").read_text(encoding="utf-8")
    assert live + "fullchain.pem" in site and live + "privkey.pem" in site
    site = site.replace(live + "fullchain.pem", str(cert)).replace(live + "privkey.pem", str(key))
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    temp = " ".join(f"{kind}_temp_path {tmp_path}/{kind};" for kind in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; {temp} include {tmp_path}/site.conf; }}\n", encoding="utf-8")
    run = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0 and "test is successful" in run.stderr, run.stderr


@pytest.mark.skipif(CADDY is None, reason="caddy is not installed here")
def test_caddy_accepts_the_example(tmp_path: Path) -> None:
    assert CADDY is not None
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([CADDY, "validate", "--config", str(PROXY / "Caddyfile"),
                          "--adapter", "caddyfile"], capture_output=True, text=True,
                         timeout=60, check=False, env=env)
    assert run.returncode == 0 and "Valid configuration" in run.stdout + run.stderr, run.stderr


@pytest.mark.slow(40)
def test_what_the_dockerfile_copies_builds_a_whole_wheel(tmp_path: Path) -> None:
    """The build context as COPY makes it (symbolic links kept as links) builds a wheel
    with the package data, the demo's sample org included."""
    context = tmp_path / "context"
    context.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for keyword, rest in dockerfile():
        if keyword != "COPY":
            continue
        *sources, _target = rest.split()
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, context / source, symlinks=True, ignore=ignore)
            else:
                shutil.copy2(path, context / source, follow_symlinks=False)
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(context), "--no-deps", "-q",
                    "-w", str(out)], check=True, capture_output=True, timeout=600)
    [built] = out.glob("gridbot-*.whl")
    names = set(zipfile.ZipFile(built).namelist())
    assert "gridbot/data/demo.toml" in names
    assert any(n.startswith("gridbot/templates/zh-CN/") for n in names)
    assert any(n.startswith("gridbot/handlers/") for n in names)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed here")
@pytest.mark.slow(10)
async def test_nginx_passes_the_webhook_and_health_on_to_a_running_bot(
        webhook: World, tmp_path: Path) -> None:
    """The example's locations in front of the bot in webhook mode: Telegram's updates
    reach it through nginx (the whole setup story), /healthz answers through it, its
    secret header is passed on (a forged update still gets gridbot's 403), and any other
    path ends at nginx. TLS is left out (the fake Bot API trusts no self-signed
    certificate): the listening line is the test's, the locations are the example's."""
    assert NGINX is not None and webhook.runtime.http is not None
    app_port = int(webhook.runtime.http.url.rsplit(":", 1)[1])
    port = free_port()
    site = (PROXY / "nginx.conf").read_text(encoding="utf-8")
    site = re.sub(r"server \{\s*listen 80;.*?\}\n", "", site, count=1, flags=re.DOTALL)
    site = re.sub(r"^\s*(listen \[::\]|ssl_).*\n", "", site, flags=re.MULTILINE)
    site = re.sub(r"listen 443 ssl http2;", f"listen 127.0.0.1:{port};", site)
    site = site.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{app_port};")
    directives_left = [line for line in site.splitlines() if not line.lstrip().startswith("#")]
    assert f"    listen 127.0.0.1:{port};" in directives_left
    assert not [line for line in directives_left if "ssl" in line or "listen 80" in line]
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    temp = " ".join(f"{kind}_temp_path {tmp_path}/{kind};" for kind in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{ access_log off; {temp} include {tmp_path}/site.conf; }}\n",
        encoding="utf-8")
    nginx = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proxy = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(200):  # nginx is listening once a request gets any answer
                try:
                    await client.get(proxy + "/")
                    break
                except httpx.TransportError:
                    assert nginx.poll() is None, nginx.stderr.read() if nginx.stderr else ""
                    await asyncio.sleep(0.05)
            webhook.bot.deliver_to = proxy + WEBHOOK_PATH
            w = await bound(webhook)  # linking and binding, each update through nginx
            sent = await w.said(w.group, LIU, "报事 3幢楼道灯坏了")
            assert any(s.chat_id == GROUP_ID and "#1" in s.plain for s in sent)
            health = await client.get(proxy + HEALTH_PATH)
            assert health.status_code == 200 and health.json()["ok"] is True
            forged = await client.post(proxy + WEBHOOK_PATH, json={"update_id": 1})
            assert forged.status_code == 403  # gridbot's answer, the header checked by it
            elsewhere = await client.get(proxy + "/gridbot.toml")
            assert elsewhere.status_code == 404 and "nginx" in elsewhere.text
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
