"""Named datasets: a failed or stalled download ends quickly, clearly, and leaves nothing behind."""

from __future__ import annotations

import time
import urllib.request

import pytest

from dotrec.data import _datasets
from dotrec.exceptions import DatasetNotFoundError


class _CutResponse:
    """An HTTP response whose connection drops after the first chunk."""

    headers = {"Content-Length": "1000000"}

    def __init__(self):
        self.reads = 0

    def read(self, size: int) -> bytes:
        self.reads += 1
        if self.reads > 1:
            raise ConnectionResetError("connection reset by peer")
        return b"PK" + b"\0" * (size - 2)


def test_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch):
    monkeypatch.delenv("DOTREC_OFFLINE", raising=False)
    monkeypatch.setattr(_datasets, "_open_url", lambda url, timeout: _CutResponse())
    with pytest.raises(DatasetNotFoundError) as info:
        _datasets.find_dataset("ml-100k", root=tmp_path)
    message = str(info.value)
    assert "downloading it failed" in message and "connection reset" in message
    assert str(tmp_path / "ml-100k") in message  # where to put the files instead
    assert list(tmp_path.iterdir()) == []  # no half-written archive or temporary file


def test_stalled_download_gives_up_at_the_timeout(tmp_path, monkeypatch):
    def stalled(url, timeout=None):
        time.sleep(10)  # a name lookup or connection that never answers

    monkeypatch.delenv("DOTREC_OFFLINE", raising=False)
    monkeypatch.setenv("DOTREC_DOWNLOAD_TIMEOUT", "0.5")
    monkeypatch.setattr(urllib.request, "urlopen", stalled)
    started = time.perf_counter()
    with pytest.raises(DatasetNotFoundError, match="no answer within 0.5 s"):
        _datasets.find_dataset("ml-100k", root=tmp_path)
    assert time.perf_counter() - started < 5
