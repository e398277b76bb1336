"""Progressive load-test stages, each followed by the dedup audit.

    .venv/bin/python loadtest/run.py [--host https://10.231.0.10] [--stages 10,50,100,200]
        [--duration 60] [--gate phase1] [--secret-file inventories/lab/group_vars/lab/secrets.yml]
        [--audit-cmd "podman exec grimbots-app1 grimbots-app audit --json --fail-on-stale"] [-- LOCUST ARGS]

For each stage (``users`` or ``users:spawn_rate``; the seed's rate is users / 5) it runs Locust headless for
a fixed time and keeps ``report.html``, ``stats_*.csv``, ``stats.json``, ``summary.json`` and the log in
``loadtest/results/<UTC timestamp>-<users>u/``. Then it waits for the app's RQ queues to empty (``GET
/health``) and runs the audit until every accepted webhook is processed and the effects the stage expects
are there, both within ``--drain-timeout``. A stage fails when its gate fails (Locust's exit code), when
the audit finds a duplicated effect, when an accepted webhook is still unprocessed, or when fewer effects
(messages, paid transitions, Purchase events) appeared than the stage's accepted requests call for.

The gateway secret and the Telegram webhooks' master secret come from ``GRIMBOTS_GATEWAY_SECRET`` and
``GRIMBOTS_TELEGRAM_WEBHOOK_SECRET`` or, when unset, from ``--secret-file`` (an inventory's
``vault_app_gateway_secrets`` and ``vault_app_telegram_webhook_secret``); they reach Locust through its
environment, not its argv.
Exit status: 0 when every stage passed, 1 otherwise, 2 on a usage or set-up error (no secret).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_AUDIT = "podman exec grimbots-app1 grimbots-app audit --json --fail-on-stale"
MAX_DURATION = 600  # seconds per stage: a run always ends
AUDITED = ("messages", "paid_transitions", "purchase_events")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("LOADTEST_HOST", "https://10.231.0.10"))
    parser.add_argument(
        "--stages", default="10,50,100,200", help="users[:spawn_rate],... (default 10,50,100,200)"
    )
    parser.add_argument("--duration", type=int, default=60, help=f"seconds per stage, 1..{MAX_DURATION}")
    parser.add_argument("--gate", default="phase1", choices=["phase1", "qi500", "none"])
    parser.add_argument("--gateway", default="stubpay")
    parser.add_argument(
        "--secret-file", default="", help="YAML with vault_app_gateway_secrets (lab inventory)"
    )
    parser.add_argument("--audit-cmd", default=DEFAULT_AUDIT, help="prints the audit's JSON; empty: no audit")
    parser.add_argument("--drain-timeout", type=int, default=180, help="seconds to wait for the workers")
    parser.add_argument("--pause", type=int, default=5, help="seconds between stages")
    parser.add_argument("--results", default=str(HERE / "results"))
    parser.add_argument(
        "--stop-on-fail", action="store_true", help="skip the remaining stages after a failure"
    )
    parser.add_argument("locust_args", nargs="*", help="after --: more Locust options (e.g. --dup-share 0.3)")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration must be 1..{MAX_DURATION} seconds")
    try:
        args.stage_list = [_stage(spec) for spec in args.stages.split(",") if spec.strip()]
    except ValueError:
        parser.error(f"--stages: expected users[:spawn_rate],... not {args.stages!r}")
    return args


def _stage(spec: str) -> tuple[int, float]:
    users, _, rate = spec.strip().partition(":")
    count = int(users)
    if count < 1:
        raise ValueError(spec)
    return count, float(rate) if rate else max(1.0, count / 5)


def die(message: str) -> None:
    print(f"run.py: {message}", file=sys.stderr)
    sys.exit(2)


def secrets(args: argparse.Namespace) -> dict[str, str]:
    """GRIMBOTS_GATEWAY_SECRET and GRIMBOTS_TELEGRAM_WEBHOOK_SECRET, from the environment or, for the
    ones unset there, from --secret-file (vault_app_gateway_secrets.<gateway>,
    vault_app_telegram_webhook_secret)."""
    found = {
        name: os.environ.get(name, "")
        for name in ("GRIMBOTS_GATEWAY_SECRET", "GRIMBOTS_TELEGRAM_WEBHOOK_SECRET")
    }
    if all(found.values()):
        return found
    if not args.secret_file:
        die("set GRIMBOTS_GATEWAY_SECRET and GRIMBOTS_TELEGRAM_WEBHOOK_SECRET or pass --secret-file")
    import yaml  # the venv has PyYAML (Ansible's)

    data = yaml.safe_load(Path(args.secret_file).read_text()) or {}
    from_file = {
        "GRIMBOTS_GATEWAY_SECRET": (data.get("vault_app_gateway_secrets") or {}).get(args.gateway),
        "GRIMBOTS_TELEGRAM_WEBHOOK_SECRET": data.get("vault_app_telegram_webhook_secret"),
    }
    for name, value in found.items():
        if not value:
            if not from_file[name]:
                source = "vault_app_gateway_secrets." + args.gateway
                if name == "GRIMBOTS_TELEGRAM_WEBHOOK_SECRET":
                    source = "vault_app_telegram_webhook_secret"
                die(f"no {source} in {args.secret_file}")
            found[name] = str(from_file[name])
    return found


def audit(cmd: str) -> tuple[int, dict[str, Any] | None]:
    """(exit code, parsed JSON or None) of the audit command."""
    try:
        done = subprocess.run(shlex.split(cmd), capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"  audit: {exc}", file=sys.stderr)
        return 2, None
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        print(f"  audit: no JSON (exit {done.returncode}): {done.stderr.strip()[:300]}", file=sys.stderr)
        return done.returncode or 2, None


# The lab's HAProxy serves a self-signed certificate. Locust's FastHttpUser does not verify certificates
# either; this reads only the queue sizes of /health, on a target the locustfile limits to loopback and
# the lab network unless --allow-any-host is given.
UNVERIFIED_TLS = ssl.create_default_context()
UNVERIFIED_TLS.check_hostname = False
UNVERIFIED_TLS.verify_mode = ssl.CERT_NONE


def queue_sizes(host: str) -> dict[str, int] | None:
    try:
        with urllib.request.urlopen(
            f"{host.rstrip('/')}/health", timeout=10, context=UNVERIFIED_TLS
        ) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # a 503 (unhealthy) still carries the report
        try:
            body = json.loads(exc.read())
        except ValueError:
            return None
    except (OSError, ValueError):
        return None
    queues = body.get("checks", {}).get("rq_workers", {}).get("queues", {})
    return {name: int(q.get("size", 0)) for name, q in queues.items()}


def drain(
    args: argparse.Namespace, before: dict[str, Any] | None, expected: dict[str, int]
) -> dict[str, Any]:
    """Wait (bounded) for empty queues, then for the audit to show every effect; the last audit's figures."""
    deadline = time.monotonic() + args.drain_timeout
    started = time.monotonic()
    sizes = queue_sizes(args.host)
    while sizes is None or any(sizes.values()):
        if time.monotonic() > deadline:
            break
        time.sleep(2)
        sizes = queue_sizes(args.host)
    queues_empty_s = round(time.monotonic() - started, 1)
    result: dict[str, Any] = {"queues": sizes, "queues_empty_after_s": queues_empty_s}
    if not args.audit_cmd:
        return result
    while True:
        code, report = audit(args.audit_cmd)
        missing = _missing(before, report, expected)
        settled = report is not None and not report.get("unprocessed_webhooks") and not any(missing.values())
        if settled or time.monotonic() > deadline:
            break
        time.sleep(3)
    result.update(
        audit_exit=code,
        audit=report,
        missing=missing,
        drained_after_s=round(time.monotonic() - started, 1),
    )
    return result


def _missing(before: dict[str, Any] | None, after: dict[str, Any] | None, expected: dict[str, int]) -> dict:
    if before is None or after is None:
        return {name: expected.get(name, 0) for name in AUDITED}
    return {name: max(0, expected.get(name, 0) - (after[name] - before[name])) for name in AUDITED}


def run_stage(args: argparse.Namespace, users: int, rate: float, env: dict[str, str]) -> dict[str, Any]:
    name = f"{users}u"
    out = Path(args.results) / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{name}"
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"=== stage {name}: {users} users, spawn {rate:g}/s, {args.duration} s against {args.host} -> {out}"
    )
    before = None
    if args.audit_cmd:
        _, before = audit(args.audit_cmd)
        (out / "audit-before.json").write_text(json.dumps(before, indent=2) + "\n")
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "--config",
        str(HERE / "locust.conf"),
        "-f",
        str(HERE / "locustfile.py"),
        "--host",
        args.host,
        "--users",
        str(users),
        "--spawn-rate",
        f"{rate:g}",
        "--run-time",
        f"{args.duration}s",
        "--gate",
        args.gate,
        "--gateway",
        args.gateway,
        "--stage",
        name,
        "--html",
        str(out / "report.html"),
        "--csv",
        str(out / "stats"),
        "--json-file",
        str(out / "stats"),  # locust adds .json
        "--summary-json",
        str(out / "summary.json"),
        *args.locust_args,
    ]
    with (out / "locust.log").open("w") as logfile:
        try:
            locust_rc = subprocess.run(
                cmd, cwd=ROOT, env=env, stdout=logfile, stderr=subprocess.STDOUT, timeout=args.duration + 90
            ).returncode
        except subprocess.TimeoutExpired:
            locust_rc = 124
    summary_path = out / "summary.json"
    if not summary_path.exists():
        tail = (out / "locust.log").read_text().strip().splitlines()[-5:]
        return {
            "stage": name,
            "dir": str(out),
            "passed": False,
            "error": "locust did not finish",
            "log": tail,
        }
    summary = json.loads(summary_path.read_text())
    drained = drain(args, before, summary["expected_audit_delta"])
    problems = list(summary["gate"]["failures"])
    if locust_rc != 0 and not problems:
        problems.append(f"locust exited {locust_rc}")
    if args.audit_cmd:
        report = drained.get("audit")
        if report is None:
            problems.append("the audit gave no report")
        else:
            if report["duplicates"]:
                problems.append(f"audit: {report['duplicates']} duplicated effects")
            if report["unprocessed_webhooks"]:
                problems.append(f"audit: {report['unprocessed_webhooks']} accepted webhooks unprocessed")
            problems += [f"audit: {n} {what} missing" for what, n in drained["missing"].items() if n]
            if drained["audit_exit"] != 0:
                problems.append(f"audit exited {drained['audit_exit']}")
            (out / "audit-after.json").write_text(json.dumps(report, indent=2) + "\n")
    verdict = {"stage": name, "dir": str(out), "passed": not problems, "problems": problems}
    verdict |= {"summary": summary, "drain": drained, "locust_exit": locust_rc}
    (out / "verdict.json").write_text(json.dumps(verdict, indent=2) + "\n")
    total = summary["total"]
    print(
        f"  {total['requests']} requests, {total['rps']} req/s, failures {100 * total['fail_ratio']:.2f} %, "
        f"P50 {total['p50_ms']} ms, P95 {total['p95_ms']} ms, P99 {total['p99_ms']} ms; "
        f"load generator {summary['loadgen_cpu_percent']} % of a core; "
        f"queues empty after {drained['queues_empty_after_s']} s; "
        + ("PASS" if not problems else "FAIL: " + "; ".join(problems))
    )
    return verdict


def table(verdicts: list[dict[str, Any]]) -> str:
    rows = [
        "| stage | requests | req/s | failures | P50 ms | P95 ms | P99 ms | Locust CPU | phase1 | qi500 "
        "| audit | verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |",
    ]
    for v in verdicts:
        if "summary" not in v:
            rows.append(f"| {v['stage']} | | | | | | | | | | | FAIL: {v.get('error')} |")
            continue
        t, gates = v["summary"]["total"], v["summary"]["gates"]
        phase1, qi500 = ("pass" if gates[g] else "FAIL" for g in ("phase1", "qi500"))
        report = v["drain"].get("audit")
        audit_text = "not run"
        if report is not None:
            audit_text = f"{report['duplicates']} dup, {report['unprocessed_webhooks']} unprocessed"
        rows.append(
            f"| {v['stage']} | {t['requests']} | {t['rps']} | {100 * t['fail_ratio']:.2f} % | {t['p50_ms']} "
            f"| {t['p95_ms']} | {t['p99_ms']} | {v['summary']['loadgen_cpu_percent']} % | {phase1} | {qi500} "
            f"| {audit_text} | {'PASS' if v['passed'] else 'FAIL'} |"
        )
    held = [
        v["summary"]["total"]["rps"] for v in verdicts if "summary" in v and v["summary"]["gates"]["qi500"]
    ]
    rows.append("")
    rows.append(
        f"Highest rate that held the QI 500 gate (P95 < 100 ms): {max(held) if held else 'none'} req/s"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = os.environ | secrets(args)
    started = datetime.now(UTC)
    verdicts = []
    for i, (users, rate) in enumerate(args.stage_list):
        if i:
            time.sleep(args.pause)
        verdict = run_stage(args, users, rate, env)
        verdicts.append(verdict)
        if "summary" not in verdict:
            print(f"  stage {verdict['stage']} did not run: {verdict.get('log')}", file=sys.stderr)
            break
        if args.stop_on_fail and not verdict["passed"]:
            break
    text = table(verdicts)
    print(text)
    report = Path(args.results) / f"{started:%Y%m%dT%H%M%SZ}-summary.md"
    header = f"# Load test {started:%Y-%m-%d %H:%M} UTC against {args.host}, gate {args.gate}\n\n"
    report.write_text(header + text + "\n")
    print(f"summary: {report}")
    ran_all = len(verdicts) == len(args.stage_list)
    return 0 if ran_all and all(v["passed"] for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
