#!/usr/bin/env python3
"""After the black-box suite ran against one or more hosts (.ci/run step 2, scripts/multihost.sh),
scrape each host's /metrics and check that the counters moved as the suite drove them:

- each metrics listener answers a whole exposition, and the public port has no /metrics (404);
- each host answered requests (behind the balancer: every host got its share);
- over all hosts, committed sign-ups (new or replacing a pending one) are at least the 201s of
  /api/signup/init (MCP's signUpInit adds more), and there were verifications;
- over all hosts, the mails the relay accepted are the outbox's sent rows (counted by the shell
  command --sent-cmd prints, run against the database), and every host reports that same outbox
  (one shared database);
- with --events-cmd (a shell command printing how many `account-created` and `signup-repeated`
  events the shared audit trail holds), that the trail holds exactly one event per committed
  sign-up the hosts counted: one trail, written by every host.

    scripts/check-metrics.py --sent-cmd 'COMMAND' [--events-cmd 'COMMAND'] METRICS_ADDR=PUBLIC_URL [...]

A message in flight when the suite ended can make the counts differ for a moment: the checks are
tried again, 5 times a second apart. Prints one line per host; exits 1 with the reason."""

import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def scrape(addr):
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as r:
        text = r.read().decode()
    if not text.rstrip().endswith("# EOF"):
        fail(f"{addr}: not a whole exposition")
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            fail(f"{addr}: not a sample line: {line!r}")
        samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return samples


def total(samples, name, **labels):
    """The sum of `name` over the samples whose labels include `labels`."""
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for (n, l), v in samples.items() if n == name and all(w in l for w in want))


class Failed(Exception):
    pass


def fail(why):
    raise Failed(why)


def main(argv):
    commands = {}
    while len(argv) >= 2 and argv[0] in ("--sent-cmd", "--events-cmd"):
        commands[argv[0]] = argv[1]
        argv = argv[2:]
    if "--sent-cmd" not in commands or not argv:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    hosts = [a.split("=", 1) for a in argv]
    count = lambda cmd: int(subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True).stdout.strip())
    for attempt in range(5):
        sent = count(commands["--sent-cmd"])
        events = count(commands["--events-cmd"]) if "--events-cmd" in commands else None
        try:
            check(hosts, sent, events)
            return
        except Failed as e:
            print(f"check-metrics: {'FAILED' if attempt == 4 else 'not yet'}: {e}", file=sys.stderr)
            if attempt == 4:
                sys.exit(1)
            time.sleep(1)


def check(hosts, sent, events):
    signups = verifications = init_201 = relayed = 0
    for i, (addr, public) in enumerate(hosts, 1):
        try:
            urllib.request.urlopen(f"{public}/metrics", timeout=10)
            fail(f"{public}/metrics answered: the metrics are on the public port")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                fail(f"{public}/metrics answered {e.code}, not 404")
        s = scrape(addr)
        requests = total(s, "gpt_user_http_requests_total")
        host_signups = total(s, "gpt_user_account_events_total", kind="signup") + total(s, "gpt_user_account_events_total", kind="signup_replaced")
        host_201 = total(s, "gpt_user_http_requests_total", route="/api/signup/init", status="201")
        host_verified = total(s, "gpt_user_account_events_total", kind="verification")
        host_relayed = total(s, "gpt_user_mail_sent_total")
        outbox_sent = total(s, "gpt_user_outbox_messages", state="sent")
        busy = total(s, "gpt_user_busy_total")
        print(
            f"check-metrics: host {i} ({addr}): {requests:.0f} requests, {host_201:.0f} sign-up 201s, "
            f"{host_signups:.0f} sign-ups committed, {host_verified:.0f} verifications, {host_relayed:.0f} mails relayed, "
            f"{busy:.0f} busy, outbox sent {outbox_sent:.0f}"
        )
        if requests == 0:
            fail(f"host {i} answered no request")
        if outbox_sent != sent:
            fail(f"host {i} reports {outbox_sent:.0f} sent messages in the outbox, the database has {sent}")
        signups += host_signups
        verifications += host_verified
        init_201 += host_201
        relayed += host_relayed
    if init_201 == 0 or signups < init_201:
        fail(f"{signups:.0f} sign-ups committed for {init_201:.0f} answers 201 to /api/signup/init")
    if verifications == 0:
        fail("no verification was counted")
    if relayed != sent:
        fail(f"the hosts relayed {relayed:.0f} mails, the outbox marked {sent} sent")
    if events is not None and events != signups:
        fail(f"the audit trail holds {events} sign-up events, the hosts committed {signups:.0f} sign-ups")
    trail = "" if events is None else f", {events} sign-up events in the one audit trail"
    print(f"check-metrics: ok: {signups:.0f} sign-ups for {init_201:.0f} 201s, {verifications:.0f} verifications, {relayed:.0f} mails = {sent} sent{trail}")


if __name__ == "__main__":
    main(sys.argv[1:])
