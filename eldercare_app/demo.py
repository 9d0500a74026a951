"""`make demo`: the whole platform with simulated homes on this machine.

1. the local broker and InfluxDB (started by the project, on free ports);
2. a simulated population (50 homes and a care home) written as a registry and applied;
3. an operator, an admin and a family account, with passwords printed once;
4. `eldercare run` (ingest, detectors, alerts, gateway) and `eldercare sim --preset demo`
   as child processes, logging to `.run/demo/`;
5. where to look; Ctrl-C stops the platform and the simulator (the local services stay
   up for the next run: `eldercare services down` stops them).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import cast

from eldercare.cli_errors import fail
from eldercare.settings import load_settings
from eldercare_app.local_services import LocalServices, ServiceError, free_port
from eldercare_app.webhook_receiver import WebhookReceiver

DEMO_DIR = "demo"


def _eldercare(*args: str) -> list[str]:
    return [sys.executable, "-m", "eldercare_app.cli", *args]


def _run(args: list[str], env: dict[str, str], what: str) -> str:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        fail(f"demo: {what} failed (exit {proc.returncode})")
    return proc.stdout


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def _add_user(env: dict[str, str], username: str, role: str, *extra: str) -> str | None:
    """Create the account with a fresh password; None when it exists from an earlier run."""
    password = secrets.token_urlsafe(9)
    args = _eldercare("users", "add", "--username", username, "--role", role, *extra)
    proc = subprocess.run(
        [*args, "--password-stdin"],
        env=env,
        input=password + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        # A rerun: the account (or, for family, its contact link) is there already.
        if "exists" in output or "linked to an account already" in output:
            return None
        sys.stderr.write(proc.stdout + proc.stderr)
        fail(f"demo: creating user {username} failed")
    return password


def _population_facts(registry: Path) -> tuple[str, str, str, str | None]:
    """The city at the root of the organisation tree, a home resident for the family
    account (site/resident: ids are unique only within a site), and that resident's
    first family contact (site/contact) to link it to."""
    import yaml

    doc = yaml.safe_load(registry.read_text())
    sites = doc.get("sites", [])
    city = sites[0]["organisation"].split("/")[0] if sites else ""
    for site in sites:
        if site.get("kind") == "home" and site.get("residents"):
            resident = site["residents"][0]
            contact = next(
                (c for c in site.get("contacts", []) if resident["id"] in c.get("residents", [])),
                None,
            )
            linked = f"{site['id']}/{contact['id']}" if contact else None
            return city, f"{site['id']}/{resident['id']}", resident["name"], linked
    fail("demo: the simulated population has no home resident")


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"demo: the platform exited ({proc.returncode}); see {log}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    fail(f"demo: the platform did not answer {url} in {within_s:.0f}s; see {log}")


def main() -> None:
    settings = load_settings()
    run_dir = settings.run_dir.resolve()
    demo_dir = run_dir / DEMO_DIR
    demo_dir.mkdir(parents=True, exist_ok=True)

    print("starting the local broker and InfluxDB …", flush=True)
    services = LocalServices(run_dir)
    try:
        services.up()
    except ServiceError as exc:
        fail(f"demo: {exc}")

    http_port = settings.http_port if "ELDERCARE_HTTP_PORT" in os.environ else free_port(8080)
    env = {
        **os.environ,
        **services.env(),
        "ELDERCARE_RUN_DIR": str(run_dir),
        "ELDERCARE_HTTP_PORT": str(http_port),
        "ELDERCARE_PUBLIC_URL": f"http://127.0.0.1:{http_port}",
    }

    registry = demo_dir / "registry.yaml"
    truth = demo_dir / "truth.jsonl"
    # Every contact's notifications land at a local webhook (a stand-in for SMS/WeChat,
    # which cost money) and are kept in a journal, so the demo shows them arriving.
    inbox = WebhookReceiver(journal=demo_dir / "notifications.jsonl")
    print("writing and applying the simulated population …", flush=True)
    sim_args = [
        "sim",
        "--preset",
        "demo",
        "--registry-out",
        str(registry),
        "--truth",
        str(truth),
        "--apprise",
        f"{inbox.url}/{{site}}/{{contact}}",
    ]
    _run(_eldercare(*sim_args, "--registry-only"), env, "writing the population")
    _run(_eldercare("registry", "apply", str(registry)), env, "applying the registry")

    city, resident_id, resident_name, contact = _population_facts(registry)
    family_link = ["--contact", contact] if contact else ["--residents", resident_id]
    creds = demo_dir / "credentials.txt"
    known = dict(line.split(" ", 1) for line in _read_lines(creds) if " " in line)
    accounts = {
        "admin": _add_user(env, "admin", "admin"),
        "operator": _add_user(
            env, "operator", "operator", "--scope", city, "--name", "值班员 小李"
        ),
        "family": _add_user(env, "family", "family", *family_link),
    }
    for user, password in accounts.items():
        if password is None:
            accounts[user] = known.get(user, "(set by an earlier run)")
        else:
            known[user] = password
    creds.write_text("".join(f"{u} {p}\n" for u, p in known.items()))
    creds.chmod(0o600)
    from eldercare_app.field_demo import prepare_field

    print("adding responders and visit categories …", flush=True)
    field_accounts = prepare_field(env, registry, demo_dir, city, resident_id)

    platform_log = demo_dir / "platform.log"
    sim_log = demo_dir / "sim.log"
    children: list[subprocess.Popen[bytes]] = []
    inbox.__enter__()
    try:
        with open(platform_log, "ab") as out:
            platform = subprocess.Popen(_eldercare("run"), env=env, stdout=out, stderr=out)
        children.append(platform)
        base = f"http://127.0.0.1:{http_port}"
        _wait_healthy(f"{base}/healthz", platform, platform_log, within_s=60)
        with open(sim_log, "ab") as out:
            sim = subprocess.Popen(_eldercare(*sim_args), env=env, stdout=out, stderr=out)
        children.append(sim)
        field_log = demo_dir / "field.log"
        field_truth = demo_dir / "field-truth.jsonl"
        with open(field_log, "ab") as out:
            agents = subprocess.Popen(
                _eldercare("field", "agents", "--base", base, "--accounts", str(field_accounts),
                           "--registry", str(registry), "--truth", str(field_truth)),
                env=env, stdout=out, stderr=out,
            )  # fmt: skip
        children.append(agents)

        print(
            f"""
The platform is running with 50 simulated homes and a care home.

  operator console   {base}/console      login: operator / {accounts["operator"]}
  family portal      {base}/family       login: family / {accounts["family"]}  ({resident_name})
  admin              {base}/console      login: admin / {accounts["admin"]}
  work orders        {base}/console/field   visits: {base}/console/coverage
  responder's phone  {base}/field        logins in {field_accounts} (simulated people)
  API (OpenAPI)      {base}/openapi.json
  metrics            {base}/metrics  (bearer token in {run_dir / "metrics.token"})

  MQTT broker        {services.mosquitto.host}:{services.mosquitto.port}
  InfluxDB           {services.influxdb.url}  (database {services.influxdb.database})
  logs               {platform_log}, {sim_log}
  notifications      {inbox.journal}  (families' SMS/WeChat stand-in)
  ground truth       {truth}, {field_truth}

Incidents are injected a few times an hour; `eldercare alerts list` shows them too.
Press Ctrl-C to stop (the broker and InfluxDB stay up: `eldercare services down`).
""",
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(c.poll() is None for c in children):
            time.sleep(0.5)
        for c in children:
            if c.poll() is not None:
                command = cast(list[str], c.args)[3]  # `eldercare <command>`
                print(f"demo: a child process exited ({command}, {c.returncode})")
    except KeyboardInterrupt:
        print("\nstopping …")
    finally:
        _stop_children(children)
        inbox.__exit__()


def _stop_children(children: list[subprocess.Popen[bytes]], within_s: float = 10.0) -> None:
    """SIGTERM to every child at once, then one shared deadline before SIGKILL.

    Not SIGINT: a child started from a shell in the background (or by a tool that
    ignores it) inherits SIGINT ignored and would only end at the kill, which made a
    Ctrl-C take 20-30 s. Both `eldercare run` and the simulator stop on SIGTERM."""
    for c in children:
        if c.poll() is None:
            c.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + within_s
    for c in children:
        try:
            c.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            c.kill()
            c.wait()


if __name__ == "__main__":
    main()
