"""Reading one .npy array of a bundle: a BundleError naming the file for anything that is not a plain .npy array.

np.load guesses the format from the first bytes: an empty file raised a raw EOFError, a zip (.npz)
came back as an NpzFile (no dtype: an AttributeError later), other bytes were tried as pickle. So
the .npy magic is checked first, and only a .npy file reaches np.load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgerec.errors import BundleError
from edgerec.runtime.file_blocks import HEADER_ERRORS

MAGIC = b"\x93NUMPY"  # the first bytes of every .npy file (numpy.lib.format)


def load(path: Path, name: str, mmap: bool = True) -> np.ndarray:
    """The array of the bundle file `name` at `path` (memory-mapped by default; never unpickles)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(MAGIC))
        if head != MAGIC:
            what = "an empty file" if not head else "another kind of file (a .npz archive, text or other data)"
            raise BundleError(f"bundle array {name} is {what}, not a .npy array; the bundle is damaged, re-export it")
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (*HEADER_ERRORS, OSError, EOFError) as exc:  # an OSError's own text would name the host path
        raise BundleError(f"bundle array {name} cannot be read ({getattr(exc, 'strerror', None) or exc}); "
                          "the bundle is damaged") from None
    if array.dtype.byteorder == ">" or not array.flags.c_contiguous:  # spec rule 8: one layout for every reader
        raise BundleError(f"bundle array {name} is stored big-endian or in Fortran order; a bundle's arrays are "
                          "little-endian and in C order, re-export it")
    return np.asarray(array) if mmap else array  # a plain view: the same pages, without np.memmap's slow indexing
