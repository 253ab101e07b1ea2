"""保存と読み込み: ``tg.save(model, "model.npz")``、``model.load_state_dict(tg.load("model.npz"))``。

形式は numpy の ``.npz`` (名前 → 配列の zip)。pickle は使わないので、読み込みで任意のコードが動くことはない。
書き込みは同じフォルダの一時ファイルに行ってから名前を付け替えるので、途中で失敗しても
書きかけのファイルが残ったり、前のファイルが壊れたりしない。
"""

from __future__ import annotations

import contextlib
import os
import secrets
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from .layer import Layer
from .tensor import Tensor

PathLike = str | os.PathLike


def _as_state(model_or_state: Any) -> dict[str, np.ndarray]:
    if isinstance(model_or_state, Layer):
        return model_or_state.state_dict()
    if not isinstance(model_or_state, Mapping):
        raise TypeError(f"save: expected a Layer or a dict of arrays, got {type(model_or_state).__name__}")
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


def save(model_or_state: Layer | Mapping[str, Any], path: PathLike) -> None:
    """モデル (の state_dict) か「名前 → 配列」の辞書を ``path`` に .npz 形式で保存する。

    ``path`` はそのまま使う (拡張子を付け足さない)。書き込みは一時ファイル経由で、完了してから
    ``os.replace`` で置き換えるので、失敗しても ``path`` は前の内容のまま残る。
    """
    state = _as_state(model_or_state)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    # A hidden sibling opened with "x": same file system (so os.replace is atomic), never an existing
    # file, and the usual permissions (mkstemp would make it private to the owner).
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    f = open(tmp, "xb")  # outside the try: if opening fails there is nothing of ours to remove
    try:
        with f:
            # Written entry by entry like np.savez, but with any name allowed (np.savez reserves "file")
            # and pickling refused.
            with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
                for name, arr in state.items():
                    with archive.open(name + ".npy", mode="w", force_zip64=True) as entry:
                        np.lib.format.write_array(entry, arr, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def load(path: PathLike) -> dict[str, np.ndarray]:
    """``save`` で保存した .npz を読み、「名前 → 配列」の辞書を (保存した順に) 返す。

    Python オブジェクトの配列 (pickle が必要なもの) を含むファイルは ValueError になる。
    """
    path = os.fspath(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise ValueError(f"load: {path!r} is not an .npz archive of numeric arrays: {e}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"load: {path!r} holds a single array (.npy), expected an .npz archive of named arrays")
    with archive:
        state = {}
        for name in archive.files:
            try:
                state[name] = archive[name]
            except ValueError as e:
                raise ValueError(
                    f"load: entry {name!r} of {path!r} cannot be read without pickle (an array of Python objects?): {e}"
                ) from None
    return state
