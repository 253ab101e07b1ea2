"""本物の手書き数字: MNIST と Fashion-MNIST を一度だけダウンロードしてキャッシュに置き、IDX 形式を numpy で読む。

    (X_train, y_train), (X_test, y_test) = tg.data.mnist()

* 4 つのファイル (学習用・テスト用の画像とラベル、gzip 圧縮した IDX 形式) を、ミラーの一覧から順に
  ダウンロードする (失敗したら次のミラーへ)。公開されている SHA-256 と一致したものだけをキャッシュに置く。
  途中までのファイルは同じフォルダの一時ファイルに書き、確かめてから名前を変えるので、書きかけの
  ファイルがキャッシュに残ることはない。
* キャッシュのフォルダ (``cache_dir()``) は環境変数 ``TINYGRAD_JP_DATA`` があればそこ、なければ
  Linux は ``~/.cache/tinygrad_jp`` (``XDG_CACHE_HOME`` があればその下)、macOS は
  ``~/Library/Caches/tinygrad_jp``、Windows は ``%LOCALAPPDATA%\\tinygrad_jp``。ファイルはその下の
  ``mnist/`` と ``fashion/`` に入る (2 つのデータセットのファイル名は同じなので分けてある)。
* キャッシュにあるファイルはダウンロードのときに確かめたものとして、そのまま読む (ネットワークは使わない)。
* ネットワークがなくキャッシュもなければ、どのファイルをどこに置けばよいかを言うエラーになる。
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ENV_VAR", "SOURCES", "DownloadError", "Source", "cache_dir", "download", "is_cached", "mnist", "read_idx"]

ENV_VAR = "TINYGRAD_JP_DATA"
TIMEOUT = 30.0  # seconds without an answer before a mirror counts as failed
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Source:
    """1 つのデータセット: 表示名、ミラー (ファイル名の前につける URL) の一覧、ファイル名 → SHA-256。

    ``files`` の順は 学習用画像, 学習用ラベル, テスト用画像, テスト用ラベル。
    """

    title: str
    mirrors: tuple[str, ...]
    files: Mapping[str, str]


# SHA-256 of the published gzipped IDX files, as pinned in torchvision's sources (pytorch/vision,
# torchvision/prototype/datasets/_builtin/mnist.py: MNIST._CHECKSUMS and FashionMNIST._CHECKSUMS) and
# by several other projects that download the same files.
SOURCES: dict[str, Source] = {
    "mnist": Source(
        title="MNIST",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        files={
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ),
    "fashion": Source(
        title="Fashion-MNIST",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        files={
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    ),
}


class DownloadError(OSError):
    """どのミラーからもファイルを取得できなかった (メッセージに、試した URL と手で置く方法がある)。"""


# ---------------------------------------------------------------------- where the files live
def cache_dir() -> Path:
    """データをキャッシュするフォルダ。環境変数 ``TINYGRAD_JP_DATA`` があればそれ、なければ OS ごとの既定。"""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinygrad_jp"


def _source(kind: str) -> Source:
    if kind not in SOURCES:
        raise ValueError(f"kind must be one of {sorted(SOURCES)}, got {kind!r}")
    return SOURCES[kind]


def _folder(kind: str, root: str | os.PathLike | None) -> Path:
    return Path(root if root is not None else cache_dir()).expanduser() / kind


def _files(kind: str, checksums: Mapping[str, str] | None) -> dict[str, str]:
    files = dict(_source(kind).files)
    for name, digest in (checksums or {}).items():
        if name not in files:
            raise ValueError(f"checksums: {name!r} is not a file of {kind!r}; its files are {list(files)}")
        files[name] = str(digest).lower()
    return files


def is_cached(kind: str = "mnist", root: str | os.PathLike | None = None) -> bool:
    """``kind`` の 4 つのファイルがすべてキャッシュ (``root`` を渡せばそこ) にあれば True。"""
    folder = _folder(kind, root)
    return all((folder / name).is_file() for name in _source(kind).files)


def _how_to_get(kind: str, folder: Path, missing: Mapping[str, str], mirrors: Sequence[str]) -> str:
    lines = [
        f"To get them, run `tinygrad-jp download {kind}` where the internet is reachable, or download these "
        f"{len(missing)} file(s) yourself, keep them gzipped, and put them in {folder}:"
    ]
    lines += [f"  {name}  (SHA-256 {digest})" for name, digest in missing.items()]
    lines.append("from any of: " + ", ".join(mirrors))
    return "\n".join(lines)


# ---------------------------------------------------------------------- downloading
def download(kind: str = "mnist", root: str | os.PathLike | None = None, *, mirrors: Sequence[str] | None = None,
             checksums: Mapping[str, str] | None = None, progress: bool = True) -> list[Path]:
    """``kind`` ("mnist" か "fashion") のファイルのうちキャッシュにないものをダウンロードし、4 つのパスを返す。

    ミラーを順に試し、SHA-256 が合ったものだけをキャッシュに置く。``mirrors`` と ``checksums``
    (ファイル名 → SHA-256) で既定の一覧を置き換えられる (自分のミラーを使うとき)。どのミラーでも
    失敗したファイルがあれば ``DownloadError``。``progress=True`` なら端末とノートブックで進捗バーを出す。
    """
    return _ensure(kind, root, mirrors, checksums, progress)


def _ensure(kind: str, root: str | os.PathLike | None, mirrors: Sequence[str] | None,
            checksums: Mapping[str, str] | None, progress: bool) -> list[Path]:
    src = _source(kind)
    files = _files(kind, checksums)
    mirrors = tuple(mirrors) if mirrors is not None else src.mirrors
    if not mirrors:
        raise ValueError("mirrors is empty: give at least one URL to download from")
    folder = _folder(kind, root)
    folder.mkdir(parents=True, exist_ok=True)
    for name, digest in files.items():
        if not (folder / name).is_file():
            _fetch_from_mirrors(kind, folder, name, digest, mirrors, progress)
    return [folder / name for name in files]


def _fetch_from_mirrors(kind: str, folder: Path, name: str, digest: str, mirrors: Sequence[str],
                        progress: bool) -> None:
    import http.client  # only a download needs the network modules: `import tinygrad_jp` stays light

    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        try:
            _fetch(url, folder / name, digest, progress)
            return
        except (OSError, ValueError, http.client.HTTPException) as e:
            failures.append(f"  {url}: {e}")
            if progress:
                print(f"{url}: {e}; trying the next mirror" if mirror != mirrors[-1] else f"{url}: {e}",
                      file=sys.stderr)
    raise DownloadError(
        f"could not download {name} from any mirror:\n" + "\n".join(failures) + "\n"
        + _how_to_get(kind, folder, {name: digest}, mirrors)
    )


def _fetch(url: str, target: Path, digest: str, progress: bool) -> None:
    """Download url into a temporary file beside target, check it, then rename it to target in one step:
    the cache never holds a partial or unchecked file, whatever fails (the temporary file is removed)."""
    import urllib.request  # only a download needs it: `import tinygrad_jp` stays light

    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            got = _copy(response, out, target.name, progress)
        if got != digest:
            raise ValueError(f"the file's SHA-256 is {got}, expected {digest} (corrupted or not the published file)")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _copy(response: Any, out: Any, label: str, progress: bool) -> str:
    """Stream the response into out with a progress bar; return the SHA-256 of what arrived."""
    from tqdm.auto import tqdm  # only needed while downloading

    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    sha = hashlib.sha256()
    received = 0
    # disable=None: a bar on a terminal and in a notebook, none when the output is redirected.
    with tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
              disable=None if progress else True) as bar:
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            sha.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if total is not None and received != total:
        raise ValueError(f"the connection closed after {received} of {total} bytes")
    return sha.hexdigest()


# ---------------------------------------------------------------------- reading IDX files
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """IDX 形式のファイル (名前が .gz なら gzip 圧縮) を numpy 配列にする。

    IDX は 0, 0, 型の番号 (0x08 = uint8 など), 次元数 d の 4 バイトのあとに、各次元の大きさ (ビッグエンディアンの
    32 ビット整数) が d 個、続いて値が並ぶ。ヘッダとファイルの大きさが合わなければ、ファイルの名前を示す ValueError。
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, gzip.BadGzipFile) as e:
        raise ValueError(f"{path}: not a complete gzip file ({e})") from e
    return _parse_idx(raw, path)


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(
            f"{path}: not an IDX file: expected a header 00 00 <type: one of "
            f"{', '.join(f'{t:02x}' for t in _IDX_TYPES)}> <ndim>, got {raw[:4].hex(' ') or 'an empty file'}"
        )
    ndim = raw[3]
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise ValueError(f"{path}: the header announces {ndim} dimensions but the file ends after {len(raw)} bytes")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = start + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: the header announces shape {shape} of {dtype.name}, which takes {expected} bytes "
                         f"with the header, but the file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=start).reshape(shape).astype(dtype.newbyteorder("="))


# ---------------------------------------------------------------------- the data sets
def _split(folder: Path, images_name: str, labels_name: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(folder / images_name)
    labels = read_idx(folder / labels_name)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{folder / images_name}: expected uint8 images of shape (N, 28, 28), "
                         f"got {images.dtype} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.shape != (len(images),) or (labels.size and labels.max() > 9):
        raise ValueError(f"{folder / labels_name}: expected {len(images)} uint8 labels from 0 to 9 (one per image), "
                         f"got {labels.dtype} of shape {labels.shape}"
                         + (f" with maximum {labels.max()}" if labels.size else ""))
    X = images.reshape(len(images), 28 * 28).astype(np.float32)
    X /= 255
    return X, labels.astype(np.int64)


def mnist(kind: str = "mnist", root: str | os.PathLike | None = None, download: bool = True, *,
          mirrors: Sequence[str] | None = None, checksums: Mapping[str, str] | None = None,
          progress: bool = True) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST (``kind="mnist"``、手書き数字) か Fashion-MNIST (``kind="fashion"``、衣類の写真) を読み込む。

    戻り値は ``(X_train, y_train), (X_test, y_test)``。X は形 (N, 784) の float32 で値は [0, 1]
    (28×28 の画像を 1 行に並べて 255 で割ったもの)、y は 0〜9 のクラス番号 (int64)。本物のデータなら
    学習用が 60000 枚、テスト用が 10000 枚。

    ファイルがキャッシュ (``root`` を渡せばそのフォルダ、なければ ``cache_dir()``) になければダウンロード
    する (``download`` 関数と同じ。``mirrors``, ``checksums``, ``progress`` はそちらに渡す)。
    ``download=False`` でファイルがなければ、どのファイルをどこに置けばよいかを言う FileNotFoundError。
    """
    files = _files(kind, checksums)
    folder = _folder(kind, root)
    if download:
        _ensure(kind, root, mirrors, checksums, progress)
    missing = {name: digest for name, digest in files.items() if not (folder / name).is_file()}
    if missing:
        raise FileNotFoundError(
            f"{_source(kind).title}: {len(missing)} file(s) missing from {folder} (download=False).\n"
            + _how_to_get(kind, folder, missing, tuple(mirrors) if mirrors is not None else _source(kind).mirrors)
        )
    train_images, train_labels, test_images, test_labels = files
    return _split(folder, train_images, train_labels), _split(folder, test_images, test_labels)
