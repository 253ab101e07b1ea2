"""Small IDX files made here, standing in for MNIST in tests (the suite never downloads the real ones).

The writer follows the published IDX layout (00 00, a type code, the number of dimensions, each size as a
big-endian 32-bit integer, then the values in big-endian order) independently of the library's reader.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

TYPE_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
              np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz")


def idx_bytes(array: np.ndarray) -> bytes:
    """The uncompressed IDX encoding of an array of one of the IDX types."""
    big = np.asarray(array).astype(np.asarray(array).dtype.newbyteorder(">"))
    code = TYPE_CODES[big.dtype]
    header = bytes([0, 0, code, big.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in big.shape)
    return header + big.tobytes()


def digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n learnable 28×28 uint8 images: class k lights its own 7×7 block (of a 4×4 grid) over faint noise."""
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 4)
        images[i, 7 * r:7 * r + 7, 7 * c:7 * c + 7] = rng.integers(180, 256, (7, 7))
    return images, labels


def fake_mnist(n_train: int = 100, n_test: int = 50, seed: int = 0) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """The four gzipped files under MNIST's names, and the arrays they hold (by file name)."""
    rng = np.random.default_rng(seed)
    arrays = dict(zip(NAMES, (*digits(n_train, rng), *digits(n_test, rng))))
    return {name: gzip.compress(idx_bytes(a), mtime=0) for name, a in arrays.items()}, arrays


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_fake_mnist(folder: Path, n_train: int = 100, n_test: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
    """Put fake MNIST files in folder (as if downloaded into the cache); return their arrays by file name."""
    files, arrays = fake_mnist(n_train, n_test, seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return arrays
