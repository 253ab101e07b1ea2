"""MNIST and Fashion-MNIST without the internet: the files are generated here and served from 127.0.0.1.

Downloads happen once, from the first mirror that delivers the file with the right SHA-256; truncated and
corrupted downloads move on to the next mirror and never leave anything in the cache; IDX headers are
checked; offline, the error says which files to get and where to put them."""

from __future__ import annotations

import _thread
import dataclasses
import gzip
import http.server
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_jp as tg
from tinygrad_jp import cli, datasets

from idx_files import NAMES, TYPE_CODES, fake_mnist, idx_bytes, sha256, write_fake_mnist


# ---------------------------------------------------------------------- a local server
class Mirror(http.server.ThreadingHTTPServer):
    """Serves routes[path] = (status, body, declared length) and records every requested path. A path in
    interrupting gets half its body, then Ctrl-C is simulated in the main thread before the rest."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, tuple[int, bytes, int]] = {}
        self.interrupting: set[str] = set()
        self.requests: list[str] = []

    def url(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{prefix}/"

    def serve(self, prefix: str, files: dict[str, bytes], how: str = "ok") -> str:
        """Publish files under /prefix/: "ok", "truncated" (half of it, announcing all), "corrupted" (one byte
        changed, right length), "interrupt" (Ctrl-C half-way) or "missing" (404). Returns the mirror's URL."""
        for name, data in files.items():
            if how == "interrupt":
                self.routes[f"/{prefix}/{name}"] = (200, data, len(data))
                self.interrupting.add(f"/{prefix}/{name}")
            elif how == "truncated":
                self.routes[f"/{prefix}/{name}"] = (200, data[: len(data) // 2], len(data))
            elif how == "corrupted":
                self.routes[f"/{prefix}/{name}"] = (200, data[:-1] + bytes([data[-1] ^ 0xFF]), len(data))
            elif how == "ok":
                self.routes[f"/{prefix}/{name}"] = (200, data, len(data))
        return self.url(prefix)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(self.path)
        status, body, length = self.server.routes.get(self.path, (404, b"not found", 9))
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.path in self.server.interrupting:
            half = len(body) // 2
            self.wfile.write(body[:half])
            self.wfile.flush()
            _thread.interrupt_main()
            time.sleep(0.2)  # the main thread is waiting for the rest: it sees Ctrl-C as soon as it reads again
            body = body[half:]
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror():
    server = Mirror()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def files():
    return fake_mnist(n_train=30, n_test=12, seed=1)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def checksums(files: dict[str, bytes]) -> dict[str, str]:
    return {name: sha256(data) for name, data in files.items()}


def cache_listing(folder: Path) -> list[str]:
    """Every entry of the folder, hidden temporary files included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------------- loading
def test_mnist_downloads_once_and_returns_unit_interval_float32_with_784_features(mirror, files, tmp_path):
    data, arrays = files
    url = mirror.serve("a", data)
    (X_train, y_train), (X_test, y_test) = tg.data.mnist(root=tmp_path, mirrors=[url], checksums=checksums(data),
                                                         progress=False)
    for X, y, images, labels in ((X_train, y_train, *NAMES[:2]), (X_test, y_test, *NAMES[2:])):
        n = len(arrays[labels])
        assert X.shape == (n, 784) and X.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int64
        assert 0 <= X.min() and X.max() <= 1
        np.testing.assert_array_equal(X * 255, arrays[images].reshape(n, 784))
        np.testing.assert_array_equal(y, arrays[labels])
    assert sorted(mirror.requests) == sorted(f"/a/{name}" for name in NAMES)
    assert cache_listing(tmp_path / "mnist") == sorted(NAMES)
    # A second call reads the cache: no request, even with no mirror at all reachable.
    again = tg.data.mnist(root=tmp_path, mirrors=[closed_port_url()], progress=False)
    assert len(mirror.requests) == 4
    np.testing.assert_array_equal(again[0][0], X_train)


@pytest.mark.parametrize("how", ["truncated", "corrupted", "missing"])
def test_a_bad_first_mirror_is_skipped_for_the_next(mirror, files, tmp_path, how):
    data, _ = files
    bad = mirror.serve("bad", data, how)
    good = mirror.serve("good", data)
    datasets.download(root=tmp_path, mirrors=[bad, good], checksums=checksums(data), progress=False)
    assert mirror.requests == [f"/{prefix}/{name}" for name in NAMES for prefix in ("bad", "good")]
    assert cache_listing(tmp_path / "mnist") == sorted(NAMES)
    for name, content in data.items():
        assert (tmp_path / "mnist" / name).read_bytes() == content


def test_when_every_mirror_fails_the_error_lists_each_and_the_cache_stays_clean(mirror, files, tmp_path):
    data, _ = files
    mirrors = [mirror.serve("t", data, "truncated"), mirror.serve("c", data, "corrupted"),
               mirror.serve("m", data, "missing"), closed_port_url()]
    with pytest.raises(datasets.DownloadError) as info:
        datasets.download(root=tmp_path, mirrors=mirrors, checksums=checksums(data), progress=False)
    message = str(info.value)
    first = NAMES[0]
    for url in mirrors:
        assert url + first in message
    assert "closed after" in message and "SHA-256" in message and "404" in message
    assert str(tmp_path / "mnist") in message
    assert cache_listing(tmp_path / "mnist") == []


def test_a_failure_after_some_files_keeps_only_the_checked_ones(mirror, files, tmp_path):
    data, _ = files
    good = {name: content for name, content in data.items() if name != NAMES[2]}
    url = mirror.serve("a", good)
    with pytest.raises(datasets.DownloadError, match=NAMES[2]):
        datasets.download(root=tmp_path, mirrors=[url], checksums=checksums(data), progress=False)
    assert cache_listing(tmp_path / "mnist") == sorted(NAMES[:2])
    # The next attempt only asks for what is still missing.
    mirror.serve("a", data)
    mirror.requests.clear()
    datasets.download(root=tmp_path, mirrors=[url], checksums=checksums(data), progress=False)
    assert mirror.requests == [f"/a/{name}" for name in NAMES[2:]]


def test_ctrl_c_during_a_download_leaves_nothing_in_the_cache(mirror, files, tmp_path):
    data, _ = files
    url = mirror.serve("a", data, "interrupt")
    with pytest.raises(KeyboardInterrupt):
        datasets.download(root=tmp_path, mirrors=[url], checksums=checksums(data), progress=False)
    assert mirror.requests == [f"/a/{NAMES[0]}"]
    assert cache_listing(tmp_path / "mnist") == []


def test_the_published_checksums_are_required_by_default(mirror, files, tmp_path):
    data, _ = files
    url = mirror.serve("a", data)
    with pytest.raises(datasets.DownloadError, match=datasets.SOURCES["mnist"].files[NAMES[0]]):
        datasets.download(root=tmp_path, mirrors=[url], progress=False)
    assert cache_listing(tmp_path / "mnist") == []


# ---------------------------------------------------------------------- offline and the cache folder
def test_offline_without_a_cache_says_which_files_to_get_and_where(tmp_path):
    folder = tmp_path / "mnist"
    with pytest.raises(FileNotFoundError) as info:
        tg.data.mnist(root=tmp_path, download=False)
    message = str(info.value)
    for name, digest in datasets.SOURCES["mnist"].files.items():
        assert name in message and digest in message
    assert str(folder) in message and "tinygrad-jp download mnist" in message
    assert not folder.exists()
    # With downloading allowed but no mirror reachable, the error tells the same.
    with pytest.raises(datasets.DownloadError) as info:
        tg.data.mnist(root=tmp_path, mirrors=[closed_port_url()], progress=False)
    assert str(folder) in str(info.value) and NAMES[0] in str(info.value)
    assert cache_listing(folder) == []


def test_the_environment_variable_chooses_the_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "elsewhere"))
    assert datasets.cache_dir() == tmp_path / "elsewhere"
    assert not datasets.is_cached("mnist")
    arrays = write_fake_mnist(tmp_path / "elsewhere" / "mnist", n_train=5, n_test=3)
    assert datasets.is_cached("mnist") and not datasets.is_cached("fashion")
    (_, y_train), _ = tg.data.mnist(progress=False)
    np.testing.assert_array_equal(y_train, arrays[NAMES[1]])
    with pytest.raises(FileNotFoundError, match="fashion"):
        tg.data.mnist("fashion", download=False)


@pytest.mark.parametrize("platform, variables, expected", [
    ("linux", {}, "home/.cache/tinygrad_jp"),
    ("linux", {"XDG_CACHE_HOME": "xdg"}, "xdg/tinygrad_jp"),
    ("darwin", {}, "home/Library/Caches/tinygrad_jp"),
    ("win32", {"LOCALAPPDATA": "local"}, "local/tinygrad_jp"),
    ("win32", {}, "home/AppData/Local/tinygrad_jp"),
])
def test_default_cache_folder_per_platform(monkeypatch, tmp_path, platform, variables, expected):
    monkeypatch.delenv(datasets.ENV_VAR)
    for name in ("XDG_CACHE_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, str(tmp_path / value))
    monkeypatch.setattr(Path, "home", staticmethod(lambda: tmp_path / "home"))
    monkeypatch.setattr(sys, "platform", platform)
    assert datasets.cache_dir() == tmp_path / expected


def test_mnist_and_fashion_live_in_separate_folders_with_the_same_file_names(mirror, files, tmp_path):
    data, _ = files
    url = mirror.serve("f", data)
    datasets.download("fashion", tmp_path, mirrors=[url], checksums=checksums(data), progress=False)
    assert cache_listing(tmp_path / "fashion") == sorted(NAMES) and not (tmp_path / "mnist").exists()
    assert list(datasets.SOURCES["fashion"].files) == list(datasets.SOURCES["mnist"].files) == list(NAMES)
    assert set(datasets.SOURCES["fashion"].files.values()).isdisjoint(datasets.SOURCES["mnist"].files.values())


def test_unknown_kind_and_unknown_checksum_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="'digits'"):
        tg.data.mnist("digits", root=tmp_path)
    with pytest.raises(ValueError, match=r"'train\.gz'"):
        datasets.download(root=tmp_path, checksums={"train.gz": "0" * 64})


# ---------------------------------------------------------------------- IDX files
IDX_DTYPES = st.sampled_from(sorted(TYPE_CODES, key=str))


@given(hnp.arrays(IDX_DTYPES, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)))
def test_read_idx_gives_back_any_array_written_in_idx(array):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.idx"
        path.write_bytes(idx_bytes(array))
        got = datasets.read_idx(path)
    assert got.shape == array.shape and got.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(got, array)


@given(st.data())
def test_any_cut_or_extended_idx_file_is_an_error_naming_it(data):
    raw = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    cut = data.draw(st.integers(0, len(raw) - 1))
    changed = data.draw(st.sampled_from([raw[:cut], raw + b"\x00" * (cut + 1)]))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "broken-idx3-ubyte"
        path.write_bytes(changed)
        with pytest.raises(ValueError, match="broken-idx3-ubyte"):
            datasets.read_idx(path)


@pytest.mark.parametrize("header, match", [
    (b"\x01\x00\x08\x01", "not an IDX file"),
    (b"\x00\x00\x07\x01", "not an IDX file"),
    (b"\x00\x00\x08\x03\x00\x00", "announces 3 dimensions but the file ends after 10 bytes"),
])
def test_bad_idx_headers_are_errors_naming_the_file(tmp_path, header, match):
    path = tmp_path / "bad.idx"
    path.write_bytes(header + b"\x00" * 4)
    with pytest.raises(ValueError, match=match) as info:
        datasets.read_idx(path)
    assert str(path) in str(info.value)


def test_a_cut_gzip_file_is_an_error_naming_it(tmp_path):
    data, _ = fake_mnist(n_train=3, n_test=2)
    path = tmp_path / NAMES[1]
    path.write_bytes(data[NAMES[1]][:-10])
    with pytest.raises(ValueError, match=NAMES[1]):
        datasets.read_idx(path)


@pytest.mark.parametrize("name, array, match", [
    (NAMES[0], np.zeros((4, 20, 20), np.uint8), r"shape \(N, 28, 28\)"),
    (NAMES[1], np.zeros(3, np.uint8), "expected 4 uint8 labels"),
    (NAMES[1], np.full(4, 10, np.uint8), "maximum 10"),
])
def test_files_that_are_idx_but_not_mnist_are_errors_naming_them(tmp_path, name, array, match):
    write_fake_mnist(tmp_path / "mnist", n_train=4, n_test=2)
    (tmp_path / "mnist" / name).write_bytes(gzip.compress(idx_bytes(array)))
    with pytest.raises(ValueError, match=match) as info:
        tg.data.mnist(root=tmp_path, download=False)
    assert name in str(info.value)


# ---------------------------------------------------------------------- the command line
def test_cli_download_fetches_the_files_ahead_of_time(mirror, files, tmp_path, monkeypatch, capsys):
    data, _ = files
    url = mirror.serve("a", data)
    for kind in ("mnist", "fashion"):
        source = dataclasses.replace(datasets.SOURCES[kind], mirrors=(url,), files=checksums(data))
        monkeypatch.setitem(datasets.SOURCES, kind, source)
        assert cli.main(["download", kind, "--root", str(tmp_path)]) == 0
        printed = capsys.readouterr().out.split()
        assert printed == [str(tmp_path / kind / name) for name in NAMES]
        assert datasets.is_cached(kind, tmp_path)
    # The environment variable is the default place.
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "env"))
    assert cli.main(["download", "mnist"]) == 0
    assert datasets.is_cached("mnist") and capsys.readouterr().out.startswith(str(tmp_path / "env" / "mnist"))


def test_cli_download_failure_exits_1_with_the_instructions(tmp_path, capsys):
    assert cli.main(["download", "mnist", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "mnist") in err and NAMES[0] in err
    assert cache_listing(tmp_path / "mnist") == []


def test_cli_download_knows_only_the_two_data_sets(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["download", "cifar"])
    assert info.value.code == 2
    assert "mnist" in capsys.readouterr().err


class _Terminal:
    """A stand-in for a terminal's stderr: isatty() is True and everything written is kept."""

    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass

    def isatty(self):
        return True


def test_a_progress_bar_shows_each_file_on_a_terminal_and_none_when_asked(mirror, files, tmp_path, monkeypatch):
    data, _ = files
    url = mirror.serve("a", data)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    datasets.download(root=tmp_path / "shown", mirrors=[url], checksums=checksums(data))
    for name in NAMES:
        assert name in terminal.text
    terminal.text = ""
    datasets.download(root=tmp_path / "quiet", mirrors=[url], checksums=checksums(data), progress=False)
    assert terminal.text == ""
