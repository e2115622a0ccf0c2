"""Load on the HTTP service: `dotrec serve` driven by wrk on loopback.

Trains matrix factorization (default settings) on MovieLens 100K when the data
directory has it, else on dotrec's synthetic dataset (or serves
``--model-dir``), starts ``dotrec serve`` on 127.0.0.1 with a free port, and
runs wrk against four endpoints at each concurrency level for a bounded time:

- ``user``: GET /users/{random user}/recommendations?k=10
- ``batch``: POST /recommendations, 16 random users, k=10
- ``history``: POST /recommendations/from-history, one history of 10 random items
- ``similar``: GET /items/{random item}/similar?k=10

It prints, per endpoint and number of connections, requests per second, the
p50 and p99 latency, and errors (non-2xx answers plus socket errors), then the
server's resident memory before and after the load. Exits 1 on any error.
Client and server share the machine's cores, so the figures are a floor.

    DOTREC_DATA=../shared/data python benchmarks/serve_load.py [--duration 10]
        [--connections 8 64] [--workers 1] [--threads 1] [--model-dir DIR]

Needs wrk (Debian/Ubuntu: ``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import dotrec
from dotrec.data import find_dataset
from dotrec.exceptions import DatasetNotFoundError

SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")

LUA_COMMON = """
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  math.randomseed(1000 + id)
end
function pick(list) return list[math.random(#list)] end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

LUA_REQUESTS = {
    "user": """
function request()
  return wrk.format("GET", "/users/" .. pick(users) .. "/recommendations?k=10")
end
""",
    "batch": """
function request()
  local chosen = {}
  for i = 1, 16 do chosen[i] = '"' .. pick(users) .. '"' end
  local body = '{"users": [' .. table.concat(chosen, ",") .. '], "k": 10}'
  return wrk.format("POST", "/recommendations", {["Content-Type"] = "application/json"}, body)
end
""",
    "history": """
function request()
  local chosen = {}
  for i = 1, 10 do chosen[i] = '"' .. pick(items) .. '"' end
  local body = '{"histories": [[' .. table.concat(chosen, ",") .. ']], "k": 10}'
  return wrk.format("POST", "/recommendations/from-history",
                    {["Content-Type"] = "application/json"}, body)
end
""",
    "similar": """
function request()
  return wrk.format("GET", "/items/" .. pick(items) .. "/similar?k=10")
end
""",
}


def prepare_model(folder: Path) -> tuple[Path, Path | None, str]:
    """Train MF on ml-100k (else synthetic) into ``folder``; returns it, the item file, a label."""
    try:
        data = dotrec.load_dataset("ml-100k", download=False)
        items_file = find_dataset("ml-100k", download=False) / "u.item"
    except DatasetNotFoundError:
        data, items_file = dotrec.synthetic(), folder.parent / "items.csv"
        data.items.to_csv(items_file)
    start = time.perf_counter()
    model = dotrec.MatrixFactorization().fit(data.interactions)
    label = f"mf (defaults) on {data.name}, fitted in {time.perf_counter() - start:.1f} s"
    model.save(folder)
    return folder, items_file, label


def start_server(model_dir: Path, items_file: Path | None, args) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "dotrec", "serve", str(model_dir), "--port", "0"]
    command += ["--workers", str(args.workers), "--device", "cpu"]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if items_file is not None:
        command += ["--items", str(items_file)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
    if match is None:
        server.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return server, match.group(1)


def rss_mib(pid: int) -> tuple[float, float]:
    """Resident memory now and at its peak (VmRSS, VmHWM), in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return int(fields["VmRSS"][0]) / 1024, int(fields["VmHWM"][0]) / 1024


def lua_script(folder: Path, endpoint: str, users: list[str], items: list[str]) -> Path:
    def table(ids: list[str]) -> str:
        return "{" + ",".join(f'"{i}"' for i in ids) + "}"

    path = folder / f"{endpoint}.lua"
    path.write_text(
        f"users = {table(users)}\nitems = {table(items)}\n" + LUA_COMMON + LUA_REQUESTS[endpoint],
        encoding="utf-8",
    )
    return path


def drain(base: str, user_id: str) -> None:
    """Wait until the requests wrk left queued are answered: a model call gets through."""
    url = f"{base}/users/{user_id}/recommendations?k=1"
    with urllib.request.urlopen(url, timeout=120) as answer:
        answer.read()


def run_wrk(base: str, script: Path, connections: int, duration: int) -> dict:
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s"]
    done = subprocess.run(
        [*command, "-s", str(script), base],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    socket_errors = sum(result[k] for k in ("connect", "read", "write", "timeout"))
    return {
        "rps": result["requests"] / (result["duration_us"] / 1e6),
        "p50": result["p50_us"] / 1000,
        "p99": result["p99_us"] / 1000,
        "errors": result["status"] + socket_errors,
        "requests": result["requests"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--endpoints", nargs="+", default=list(LUA_REQUESTS), choices=LUA_REQUESTS)
    parser.add_argument("--workers", type=int, default=1, help="dotrec serve --workers")
    parser.add_argument("--threads", type=int, default=1, help="dotrec serve --threads")
    parser.add_argument("--model-dir", type=Path, help="serve this folder instead of training")
    parser.add_argument("--items", type=Path, help="item file for --model-dir")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print(
            "serve_load needs wrk, which is not installed. On Debian or Ubuntu: "
            "apt-get install -y wrk (elsewhere: https://github.com/wg/wrk).",
            file=sys.stderr,
        )
        return 2

    with tempfile.TemporaryDirectory(prefix="serve_load.") as tmp:
        tmp = Path(tmp)
        if args.model_dir is not None:
            model_dir, items_file, label = args.model_dir, args.items, str(args.model_dir)
        else:
            model_dir, items_file, label = prepare_model(tmp / "model")
        model = dotrec.load_model(model_dir, device="cpu")
        users = [u for u in model.users.ids if SAFE_ID.match(u)]
        items = [i for i in model.items.ids if SAFE_ID.match(i)]
        scripts = {e: lua_script(tmp, e, users, items) for e in args.endpoints}

        server, base = start_server(model_dir, items_file, args)
        try:
            for endpoint in args.endpoints:  # one request each, so caches are warm
                subprocess.run(
                    ["wrk", "-t1", "-c1", "-d1s", "-s", str(scripts[endpoint]), base],
                    capture_output=True,
                    timeout=60,
                    check=True,
                )
            with urllib.request.urlopen(f"{base}/ready", timeout=30) as answer:
                ready = json.load(answer)["model"]
            before = rss_mib(server.pid)
            rows = []
            for endpoint in args.endpoints:
                for connections in args.connections:
                    result = run_wrk(base, scripts[endpoint], connections, args.duration)
                    rows.append((endpoint, connections, result))
                    drain(base, users[0])
            after = rss_mib(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)

    print(f"model: {label}; {ready['n_users']} users, {ready['n_items']} items")
    print(
        f"server: dotrec serve --workers {args.workers} --threads {args.threads} on 127.0.0.1; "
        f"wrk -t2, {args.duration} s per run; {os.cpu_count()} CPU cores shared by both"
    )
    print()
    print(f"{'endpoint':<9} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for endpoint, connections, r in rows:
        print(
            f"{endpoint:<9} {connections:>5} {r['rps']:>8.0f} {r['p50']:>8.1f} "
            f"{r['p99']:>8.1f} {r['errors']:>7}"
        )
    print()
    print(
        f"server RSS before load: {before[0]:.0f} MiB; after: {after[0]:.0f} MiB "
        f"(peak {after[1]:.0f} MiB)"
    )
    return 1 if any(r["errors"] for _, _, r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
