"""`dotrec serve` as a process: start, answer, reload on SIGHUP under requests, stop."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from dotrec import MatrixFactorization
from dotrec.cli import main
from dotrec.serve import is_loopback
from serve_helpers import call, tiny_interactions, train_model


def _first_line(stream, timeout: float) -> str:
    """The first line of ``stream``, waiting at most ``timeout`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP is POSIX only")
def test_serve_reloads_on_sighup_under_requests_and_stops_on_sigterm(tmp_path):
    folder = train_model(tmp_path / "model", seed=0)
    command = [sys.executable, "-m", "dotrec", "serve", str(folder), "--port", "0"]
    command += ["--device", "cpu", "--threads", "1"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DOTREC_ADMIN_TOKEN": ""},
    )
    failures, seen_ids, stop = [], set(), threading.Event()
    try:
        line = _first_line(process.stdout, timeout=120)
        assert line.startswith("serving mf model "), (line, process.poll())
        base = line.split(" on ")[1].split(";")[0]
        assert base.startswith("http://127.0.0.1:")
        first = call(base, "GET", "/ready")[1]["model"]["model_id"]

        def hammer() -> None:
            deadline = time.monotonic() + 90
            while not stop.is_set() and time.monotonic() < deadline:
                status, body = call(base, "GET", "/users/u1/recommendations?k=3")
                if status != 200:
                    failures.append((status, body))
                else:
                    seen_ids.add(body["model_id"])

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        # Train a new model into the same folder (swapped in atomically), then SIGHUP.
        MatrixFactorization(epochs=2, embedding_dim=8, seed=7, device="cpu").fit(
            tiny_interactions()
        ).save(folder)
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        second = first
        while second == first and time.monotonic() < deadline:
            time.sleep(0.2)
            second = call(base, "GET", "/ready")[1]["model"]["model_id"]
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert second != first
        assert failures == []
        assert seen_ids == {first, second}
    finally:
        stop.set()
        process.send_signal(signal.SIGTERM)
        try:
            errors = process.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            process.kill()
            errors = process.communicate(timeout=30)[1]
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the parent sees it.
    assert process.returncode in (0, -signal.SIGTERM) and "Traceback" not in errors, errors


def test_serve_refuses_a_bad_model_folder_with_a_message(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dotrec: error: ") and "no such model folder" in err
    assert "Traceback" not in err


def test_serve_reads_a_latin1_item_file_with_encoding(cases_dir, tmp_path, capsys, monkeypatch):
    # Issue: serve's error recommended --encoding latin-1, a flag serve did not have.
    import dotrec.serve

    case = cases_dir / "09-latin1-item-titles"
    items = case / "items_latin1.csv"
    model = tmp_path / "model"
    assert main(["train", str(case / "u.data"), "--model", "popularity", "--out", str(model)]) == 0
    capsys.readouterr()

    assert main(["serve", str(model), "--items", str(items), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "items_latin1.csv" in err and "(command line: --encoding latin-1)" in err

    served = {}

    def run_server(app, sock, access_log=False):
        served["items"] = app.state.holder.current.items
        sock.close()

    monkeypatch.setattr(dotrec.serve, "run_server", run_server)
    argv = ["serve", str(model), "--items", str(items), "--encoding", "latin-1", "--port", "0"]
    assert main([*argv, "--device", "cpu"]) == 0
    assert capsys.readouterr().out.startswith("serving popularity model ")
    assert {item_id: info.title for item_id, info in served["items"].items()} == {
        "1": "Été Lointain (1995)",
        "2": "Señora Azul (1996)",
        "3": "Plain Title (1994)",
        "4": "Über Nacht (1997)",
        "5": "Naïve Hearts (1998)",
    }


def test_serve_refuses_a_port_out_of_range(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", str(tmp_path), "--port", "70000"])
    assert exit_info.value.code == 2
    assert "a port is a number from 0 to 65535, got '70000'" in capsys.readouterr().err


def test_serve_without_fastapi_says_what_to_install(tmp_path, capsys, monkeypatch):
    for name in list(sys.modules):
        if name == "dotrec.serve" or name.startswith("dotrec.serve."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert main(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'dotrec[serve]'" in err and "fastapi" in err


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_is_loopback_decides_whether_admin_calls_need_a_token(host, loopback):
    assert is_loopback(host) is loopback
