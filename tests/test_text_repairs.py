"""device_safe and TextRepairs: a release's names the device would refuse are repaired, never left wrong."""

from hypothesis import given, settings
from hypothesis import strategies as st

from edgerec.data.item_text import TextRepairs, device_safe, text_problem

COLUMNS = ("title", "creator", "description", "tags")


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=40) | st.text(min_size=990, max_size=1100), column=st.sampled_from(COLUMNS))
def test_a_repaired_name_passes_the_devices_check_and_a_clean_one_is_kept(value, column):
    repaired = device_safe(value, column)
    assert text_problem(repaired, column) is None
    if text_problem(value, column) is None:
        assert repaired == value
    else:
        assert repaired != value


def test_repairs_are_counted_with_the_first_place():
    repairs = TextRepairs()
    assert repairs.repaired(["fine", "a\tb"], "title", lambda row: f"f:{row + 1}", "the name") == ["fine", "a b"]
    assert repairs.repaired(["x\x00"], "creator", lambda row: "g:9", "the artist") == ["x "]
    assert repairs.count == 2 and repairs.first.startswith("f:2: the name holds the control character U+0009")
    assert repairs.warnings()[0].startswith("2 names held text the device refuses or garbles and were repaired")
    assert TextRepairs().warnings() == []
    assert device_safe("a\nb\tc", "description") == "a\nb\tc" and device_safe("a\nb", "title") == "a b"
    assert device_safe("x" * 1001, "title") == "x" * 999 + "…" and len(device_safe("x" * 300, "tags")) == 256


def test_the_bounds_of_half_characters_and_of_the_length():
    from edgerec.data.item_text import lone_surrogate

    for code in (0xD800, 0xDBFF, 0xDC00, 0xDFFF):
        assert lone_surrogate(f"a{chr(code)}") == chr(code) and device_safe(chr(code), "title") == "\ufffd"
    for code in (0xD7FF, 0xE000):
        assert lone_surrogate(f"é{chr(code)}") is None and device_safe(chr(code), "title") == chr(code)
    assert device_safe("x" * 1000, "title") == "x" * 1000  # at the limit: kept whole
    assert device_safe("a b", "title") == "a b"


def test_a_column_is_judged_by_its_own_rules():
    repairs = TextRepairs()
    assert repairs.repaired(["two\nlines"], "description", lambda row: "f:1", "the album") == ["two\nlines"]
    assert repairs.count == 0  # a description may hold line breaks
    assert repairs.repaired(["two\nlines"], "title", lambda row: "f:1", "the name") == ["two lines"]
    assert repairs.count == 1
