"""保存と読み込み: ``tg.save(model, "model.npz")``、``model.load_state_dict(tg.load("model.npz"))``。

形式は numpy の ``.npz`` (名前 → 配列の zip)。pickle は使わないので、読み込みで任意のコードが動くことはない。
書き込みは同じフォルダの一時ファイルに行ってから名前を付け替えるので、途中で失敗しても
書きかけのファイルが残ったり、前のファイルが壊れたりしない。

失敗はすべて、渡したパスを示す例外になる: ファイルシステムの問題 (フォルダがない、書き込めない、
フォルダを指している) は OSError、中身の問題 (壊れた・途中で切れた・空のファイル) は ValueError。
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import struct
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from .layer import Layer
from .tensor import Tensor

PathLike = str | os.PathLike

# What zipfile and numpy raise on a truncated, empty or corrupted file (RuntimeError: a flipped bit that marks an
# entry as encrypted; NotImplementedError: one that names an unknown compression).
_DAMAGED = (ValueError, EOFError, zipfile.BadZipFile, zlib.error, struct.error, NotImplementedError, RuntimeError)


def _is_damage(e: Exception) -> bool:
    """Whether an error raised while reading an archive means its content is broken (not that the disk failed)."""
    if isinstance(e, OSError):
        return e.errno == errno.EINVAL  # a corrupted offset: a seek before the start of the file
    return isinstance(e, _DAMAGED)


def _as_state(model_or_state: Any) -> dict[str, np.ndarray]:
    if isinstance(model_or_state, Layer):
        return model_or_state.state_dict()
    if not isinstance(model_or_state, Mapping) and callable(getattr(model_or_state, "state_dict", None)):
        model_or_state = model_or_state.state_dict()  # an optimizer or a scheduler
    if not isinstance(model_or_state, Mapping):
        raise TypeError(
            f"save: expected a Layer or a dict of arrays (or an optimizer: anything with state_dict()), "
            f"got {type(model_or_state).__name__}"
        )
    state = {}
    for name, value in model_or_state.items():
        if not isinstance(name, str):
            raise TypeError(f"save: names must be strings, got {name!r} ({type(name).__name__})")
        arr = np.asarray(value.data if isinstance(value, Tensor) else value)
        if arr.dtype.hasobject:
            raise ValueError(
                f"save: {name!r} is an array of Python objects ({type(value).__name__}); "
                "only numeric arrays can be saved"
            )
        state[name] = arr
    return state


# ---------------------------------------------------------------------- save
def _temporary_name(target: str) -> str:
    """A hidden sibling of the target, named after it and after this process (so a later save can tell that
    the process that left it behind is gone)."""
    folder, base = os.path.split(target)
    return os.path.join(folder, f".{base}.{os.getpid()}.{secrets.token_hex(6)}.tmp")


def _process_is_gone(pid: int) -> bool:
    if os.name == "nt":  # os.kill would terminate it; an open file cannot be removed on Windows anyway
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists but belongs to someone else
        return False
    return False


def _remove_leftovers(target: str) -> None:
    """Remove the temporary files that earlier saves of `target`, killed before they finished, left behind.

    Only those of processes that no longer run: a save of the same file going on in another process
    at this moment keeps its temporary file.
    """
    folder, base = os.path.split(target)
    pattern = re.compile(rf"\.{re.escape(base)}\.(\d+)\.[0-9a-f]{{12}}\.tmp")
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder or "."):
            match = pattern.fullmatch(entry.name)
            if match and int(match.group(1)) != os.getpid() and _process_is_gone(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.remove(entry.path)


def _check_target(path: str, target: str) -> None:
    """Refuse, before anything is written, a target that is a folder or a file marked read-only."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, f"save: {path!r} is a folder, expected the path of a file", path)
    if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, f"save: {path!r} is read-only; it was left as it was", path)


def _named_error(e: OSError, path: str) -> OSError:
    """The same kind of OSError, naming the file the user asked for rather than our temporary file."""
    if isinstance(e, FileNotFoundError):
        reason = f"the folder {os.path.dirname(os.path.abspath(path))!r} does not exist"
    else:
        reason = e.strerror or str(e)
    if e.errno is None:
        return type(e)(f"save: cannot write {path!r}: {reason}")
    return type(e)(e.errno, f"save: cannot write {path!r}: {reason}", path)


def _write_npz(f: Any, state: dict[str, np.ndarray]) -> None:
    # Written entry by entry like np.savez, but with any name allowed (np.savez reserves "file")
    # and pickling refused.
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, arr in state.items():
            with archive.open(name + ".npy", mode="w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, arr, allow_pickle=False)
    f.flush()
    os.fsync(f.fileno())


def _replace_atomically(target: str, state: dict[str, np.ndarray]) -> None:
    tmp = _temporary_name(target)
    # O_EXCL: never an existing file. The usual permissions for a new file (mkstemp would make it private).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))  # a replaced file keeps its permissions
            _write_npz(f, state)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def save(model_or_state: Any, path: PathLike) -> None:
    """モデル (の state_dict)・最適化手法 (の state_dict)・「名前 → 配列」の辞書を ``path`` に .npz 形式で保存する。

    ``path`` はそのまま使う (拡張子を付け足さない)。書き込みは同じフォルダの一時ファイル経由で、完了してから
    ``os.replace`` で置き換えるので、失敗しても ``path`` は前の内容のまま残る。``path`` がシンボリックリンクなら
    リンク先のファイルを置き換える (リンクはそのまま)。強制終了された以前の保存が残した一時ファイルは消す。
    ファイルシステムの失敗 (フォルダがない、読み取り専用、``path`` がフォルダ) は ``path`` を示す OSError。
    """
    state = _as_state(model_or_state)
    path = os.fspath(path)
    target = os.path.realpath(path)  # through a symlink to the file it points to: the link stays a link
    try:
        _check_target(path, target)
        _remove_leftovers(target)
        _replace_atomically(target, state)
    except OSError as e:
        if e.filename == path:  # already says which file
            raise
        raise _named_error(e, path) from e


# ---------------------------------------------------------------------- load
def _read_entry(archive: Any, name: str, path: str) -> np.ndarray:
    try:
        value = archive[name]
    except Exception as e:
        if not _is_damage(e):
            raise
        if isinstance(e, ValueError) and "pickle" in str(e):
            raise ValueError(
                f"load: entry {name!r} of {path!r} cannot be read without pickle (an array of Python objects?): {e}"
            ) from None
        raise ValueError(f"load: entry {name!r} of {path!r} is damaged ({type(e).__name__}: {e})") from None
    if not isinstance(value, np.ndarray):
        raise ValueError(f"load: entry {name!r} of {path!r} is not a .npy array")
    return value


def _announced_entries(f: Any) -> int | None:
    """How many entries the archive's end record announces (None when it has a comment or is too big to say).

    zipfile trusts the size of the directory instead, so a damaged directory can silently list fewer entries.
    """
    f.seek(-22, os.SEEK_END)  # the end record is the last 22 bytes of an archive without a comment
    end = f.read(22)
    if end[:4] != b"PK\x05\x06":
        return None
    count = int.from_bytes(end[10:12], "little")
    return None if count == 0xFFFF else count


def load(path: PathLike) -> dict[str, np.ndarray]:
    """``save`` で保存した .npz を読み、「名前 → 配列」の辞書を (保存した順に) 返す。

    壊れた・途中で切れた・空のファイルや、Python オブジェクトの配列 (pickle が必要なもの) を含むファイルは
    ``path`` を示す ValueError になる。ファイルがない・読めないときは OSError。
    """
    path = os.fspath(path)
    # Opened here rather than by np.load, which leaves the file open when the archive is damaged.
    with open(path, "rb") as f:
        try:
            archive = np.load(f, allow_pickle=False)
        except Exception as e:
            if not _is_damage(e):
                raise
            what = "the file is empty" if os.fstat(f.fileno()).st_size == 0 else f"damaged or not an .npz archive ({e})"
            raise ValueError(f"load: {path!r} is not an .npz archive of numeric arrays: {what}") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"load: {path!r} holds a single array (.npy), expected an .npz archive of named arrays")
        state = {name: _read_entry(archive, name, path) for name in archive.files}
        announced = _announced_entries(f)
        if announced is not None and announced != len(state):
            raise ValueError(f"load: {path!r} is damaged: its directory lists {len(state)} arrays "
                             f"but its end record announces {announced}")
        return state
