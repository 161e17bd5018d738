"""RowBuffer: the rows of a log that is not a table (Netflix's blocks, playlists, Idomaar lines) as chunks."""

import numpy as np
import pytest

from edgerec.data.tables import RowBuffer


def test_rows_come_out_as_chunks_of_the_given_size_with_their_lines():
    buffer = RowBuffer(("user", "item"), 3, "log.txt")
    assert buffer.flush() is None  # nothing added: no empty chunk
    assert [buffer.add((f"u{n}", f"i{n}"), 10 + 2 * n) for n in range(2)] == [None, None]
    chunk = buffer.add(("u2", "i2"), 14)
    assert chunk.columns == {"user": ["u0", "u1", "u2"], "item": ["i0", "i1", "i2"]}
    assert chunk.first_line == 10 and chunk.lines.dtype == np.int64 and chunk.lines.tolist() == [10, 12, 14]
    assert chunk.path == "log.txt" and [chunk.line_of(r) for r in range(3)] == [10, 12, 14]
    assert buffer.add(("u3", "i3"), 40) is None
    rest = buffer.flush()
    assert rest.columns == {"user": ["u3"], "item": ["i3"]} and rest.first_line == 40
    assert buffer.flush() is None  # flushed rows are not given twice
    assert chunk.columns["user"] == ["u0", "u1", "u2"]  # a later row does not reach a chunk given out


def test_a_row_of_another_width_is_a_bug_caught_at_once():
    buffer = RowBuffer(("user", "item", "time"), 10, "log.txt")
    with pytest.raises(ValueError):
        buffer.add(("u", "i"), 1)
