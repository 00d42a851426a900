#!/usr/bin/env python3
"""Celery's side of `octobox-bench --celery`: the same two phases, the same services.

`octobox-bench` runs this file with the URLs of its private RabbitMQ and Redis; it
prints ONE JSON line on stdout (logs go to stderr) with the fields octobox-bench reports
for Octobox:

    {"jobs": N, "jobs_per_s": .., "p50_ms": .., "p95_ms": .., "p99_ms": ..,
     "low_load": {"jobs": L, "p50_ms": .., "p95_ms": .., "p99_ms": ..},
     "client_rss_mb": .., "worker_rss_mb": .., "settings": {...}}

What runs (the settings, stated once so the comparison can be judged):
- The task: `bench.noop(text)` returns its argument, like Octobox's `echo`.
- The worker: `celery -A celery_bench worker --pool=prefork --concurrency=<cores>
  --loglevel=WARNING --without-gossip --without-mingle`, started here as a subprocess
  and stopped (SIGTERM, then SIGKILL) at the end. Gossip and mingle only matter for
  clusters of workers; one worker is measured.
- Broker: the given RabbitMQ (`broker_url`); result backend: the given Redis
  (`result_backend`). Everything else is Celery's default: the `celery` queue (a classic
  durable queue), persistent messages, no publisher confirms, the task acknowledged
  before it runs (`task_acks_late=False`), `worker_prefetch_multiplier=4`, JSON.
  Octobox's pipeline is stricter on every one of these (quorum queue, confirms, ack after
  the result is stored), so these defaults favour Celery, if anything.
- Phase A (low load): L tasks one at a time, `noop.delay("x").get()`; the round trip is
  from just before `delay` to the return of `get`.
- Phase B (throughput): N tasks with at most W outstanding `AsyncResult`s; when W are
  out, the oldest is waited for. Each result's arrival is taken when Celery's result
  consumer reads it (an `AsyncResult.then` callback fires while any `get` drains the
  Redis pub/sub), so a result that arrives while an older one is awaited keeps its true
  time. Throughput is N over the time from the first `delay` to the last arrival.
- RSS: VmRSS of the worker's main process plus its pool processes, after phase B; and
  this client's own VmRSS (the side that submits, as the bot does for Octobox).

With `--serve`, the phases are run when asked instead, so that octobox-bench can
alternate Celery's low-load tasks with Octobox's in blocks, both meeting the machine in
the same state. One command per line on stdin, one JSON line on stdout for each:

    (started)          -> {"ready": true}
    low COUNT          -> {"round_trips_s": [..]}       COUNT tasks one at a time
    throughput N W     -> {"jobs": N, "jobs_per_s": .., "p50_ms": .., ...}
    done               -> the report above, without "low_load"; the worker is stopped

Usage: celery_bench.py --broker AMQP_URL --redis REDIS_URL [--jobs N] [--window W]
                       [--low-load L] [--concurrency C] [--timeout SECONDS] [--serve]
"""

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import time

from celery import Celery

app = Celery("celery_bench")
# The worker subprocess imports this module and reads its URLs from the environment.
app.conf.update(
    broker_url=os.environ.get("CELERY_BENCH_BROKER", "amqp://localhost//"),
    result_backend=os.environ.get("CELERY_BENCH_REDIS", "redis://localhost/0"),
)


@app.task(name="bench.noop")
def noop(text):
    return text


def log(message):
    print(f"celery_bench: {message}", file=sys.stderr, flush=True)


def percentiles(latencies):
    """p50, p95 and p99 in milliseconds, by nearest rank (as octobox-bench does)."""
    ordered = sorted(latencies)

    def rank(p):
        index = max(0, min(len(ordered) - 1, -(-len(ordered) * p // 100) - 1))
        return round(ordered[int(index)] * 1000.0, 3)

    return {"p50_ms": rank(50), "p95_ms": rank(95), "p99_ms": rank(99)}


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def children(pid):
    """Every descendant of `pid` (the prefork pool), from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces; fields follow it.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def start_worker(args):
    env = dict(
        os.environ,
        CELERY_BENCH_BROKER=args.broker,
        CELERY_BENCH_REDIS=args.redis,
    )
    here = os.path.dirname(os.path.abspath(__file__))
    celery = os.path.join(os.path.dirname(sys.executable), "celery")
    command = [
        celery, "-A", "celery_bench", "worker",
        "--pool=prefork", f"--concurrency={args.concurrency}",
        "--loglevel=WARNING", "--without-gossip", "--without-mingle",
        "--hostname=bench@%h",
    ]
    log("starting: " + " ".join(command[1:]))
    return subprocess.Popen(command, cwd=here, env=env, stdin=subprocess.DEVNULL,
                            stdout=sys.stderr, stderr=sys.stderr)


def wait_ready(worker, patience):
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the Celery worker exited with status {worker.returncode}")
        if app.control.ping(timeout=1.0):
            # One round trip end to end, so the pool and the result consumer are warm.
            noop.delay("warm").get(timeout=30)
            return
    raise RuntimeError(f"the Celery worker did not answer a ping within {patience}s")


def stop_worker(worker):
    family = children(worker.pid)
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
    for pid in family:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def round_trips(count, timeout):
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        noop.delay("x").get(timeout=timeout)
        latencies.append(time.perf_counter() - start)
    return latencies


def low_load(count, timeout):
    return dict(jobs=count, **percentiles(round_trips(count, timeout)))


def throughput(count, window, timeout):
    started, arrived = {}, {}

    def on_ready(result):
        arrived.setdefault(result.id, time.perf_counter())

    def wait_oldest():
        result = outstanding.popleft()
        result.get(timeout=timeout)
        # `get` fulfils the promise, so the callback has run; in case it has not.
        arrived.setdefault(result.id, time.perf_counter())
        result.forget()

    outstanding = collections.deque()
    first = time.perf_counter()
    for _ in range(count):
        if len(outstanding) >= window:
            wait_oldest()
        start = time.perf_counter()
        result = noop.delay("x")
        started[result.id] = start
        result.then(on_ready)
        outstanding.append(result)
    while outstanding:
        wait_oldest()
    last = max(arrived.values())
    latencies = [arrived[i] - started[i] for i in started]
    if len(latencies) != count:
        raise RuntimeError(f"{len(latencies)} of {count} results arrived")
    return dict(jobs=count, jobs_per_s=round(count / (last - first), 1), **percentiles(latencies))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--low-load", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="the longest wait for any one result, in seconds")
    parser.add_argument("--serve", action="store_true",
                        help="run the phases as commands on stdin ask (see above)")
    args = parser.parse_args()
    app.conf.update(broker_url=args.broker, result_backend=args.redis)

    worker = start_worker(args)
    try:
        wait_ready(worker, patience=60)
        if args.serve:
            high = serve(args)
            low = None
        else:
            log(f"worker ready; phase A: {args.low_load} tasks one at a time")
            low = low_load(args.low_load, args.timeout)
            log(f"phase B: {args.jobs} tasks, window {args.window}")
            high = throughput(args.jobs, args.window, args.timeout)
        report = final_report(args, worker, high, low)
    finally:
        stop_worker(worker)
    print(json.dumps(report), flush=True)


def serve(args):
    """Runs the phases stdin asks for; answers each on stdout. Returns phase B's figures."""
    print(json.dumps({"ready": True}), flush=True)
    high = None
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["low"] and len(words) == 2:
            latencies = round_trips(int(words[1]), args.timeout)
            print(json.dumps({"round_trips_s": latencies}), flush=True)
        elif words[:1] == ["throughput"] and len(words) == 3:
            log(f"phase B: {words[1]} tasks, window {words[2]}")
            high = throughput(int(words[1]), int(words[2]), args.timeout)
            print(json.dumps(high), flush=True)
        elif words == ["done"]:
            if high is None:
                raise RuntimeError("asked for the report before the throughput phase ran")
            return high
        else:
            raise RuntimeError(f"not a command: {line.strip()!r}")
    raise RuntimeError("stdin ended before \"done\"")


def final_report(args, worker, high, low):
    worker_rss = rss_mb(worker.pid) + sum(rss_mb(p) for p in children(worker.pid))
    report = dict(
        high,
        client_rss_mb=round(rss_mb(os.getpid()), 1),
        worker_rss_mb=round(worker_rss, 1),
        settings=dict(
            celery_version=__import__("celery").__version__,
            pool="prefork",
            concurrency=args.concurrency,
            window=args.window,
            acks_late=app.conf.task_acks_late,
            prefetch_multiplier=app.conf.worker_prefetch_multiplier,
            loglevel="WARNING",
        ),
    )
    if low is not None:
        report["low_load"] = low
    return report


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line for octobox-bench, then a non-zero exit
        log(f"failed: {type(e).__name__}: {e}")
        sys.exit(1)
