"""Guards of the device's argument checks (runtime/checks.py), message by message and edge by edge.

Every public call of the runtime goes through these: a weakened bound or a
garbled message here would reach every app, so they are pinned exactly.
"""

import math

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import checks


def refused(call, message):
    with pytest.raises(ConfigError) as error:
        call()
    assert str(error.value) == message
    return error.value


def test_shown_values_are_cut_at_sixty_characters():
    assert checks._shown("x" * 58) == repr("x" * 58)  # 60 characters with the quotes: kept whole
    cut = checks._shown("x" * 59)
    assert len(cut) == 60 and cut == repr("x" * 59)[:57] + "..."


def test_file_names_drop_every_folder():
    assert checks.file_name("/home/alice/h.db") == "h.db"
    assert checks.file_name("/home/alice/") == "alice"  # a trailing slash (tab completion): its last part only
    assert checks.file_name("/") == "/"  # no name to show: the path as given
    assert checks.file_name(__import__("pathlib").Path("a/b.txt")) == "b.txt"


def test_text_edges():
    assert checks.text("a" * 256, "item") == "a" * 256
    refused(lambda: checks.text("a" * 257, "item"), "item is 257 characters long; the limit is 256")
    refused(lambda: checks.text("abc", "name", limit=2), "name is 3 characters long; the limit is 2")
    refused(lambda: checks.text("", "item"), "item must not be empty")
    refused(lambda: checks.text("a\x00b", "item"), "item holds a NUL character; pass plain text")
    refused(lambda: checks.text("a\ud800", "item"), "item holds a lone surrogate, which is not valid Unicode "
                                                   "text; pass a properly decoded string")


def test_lists_edges():
    assert checks.names(None, "genres") is None
    refused(lambda: checks.names(None, "genres", allow_none=False),
            "genres must be a list of strings (got NoneType None)")
    assert checks.names(("a", "b"), "genres") == ["a", "b"]
    assert checks.values(np.arange(3), "rows") == [0, 1, 2]
    refused(lambda: checks.names("drama", "genres"),
            "genres must be a list of strings, e.g. ['drama'], not a single string (got 'drama')")
    refused(lambda: checks.values(b"ab", "rows"), "rows must be a list of values, e.g. [b'ab'], not a single "
                                                   "string (got b'ab')")
    long = "x" * 100_000  # a whole argument echoed into a log: 100,133 characters
    cut = repr("x" * 56)[:57] + "..."
    refused(lambda: checks.values(long, "item_ids"), f"item_ids must be a list of values, e.g. [{cut}], not a single "
            f"string (got {cut})")
    refused(lambda: checks.values({"a": 1}, "rows"), "rows must be a list of values (got dict {'a': 1})")
    refused(lambda: checks.values(5, "rows"), "rows must be a list of values (got int 5)")
    refused(lambda: checks.values(np.array(3), "rows"), "rows must be a list of values (got ndarray array(3))")
    refused(lambda: checks.names(["a", 3], "genres"), "each of genres must be a string (got int)")
    assert len(checks.values(range(10_000), "rows")) == 10_000
    refused(lambda: checks.values(range(10_001), "rows"), "rows has 10,001 entries; the limit is 10,000")


def test_number_edges():
    assert checks.number(None, "w", allow_none=True) is None
    assert checks.number(0, "w", 0, 1) == 0.0 and checks.number(1, "w", 0, 1) == 1.0
    assert isinstance(checks.number(np.float32(0.5), "w"), float)
    refused(lambda: checks.number(None, "w"), "w must be a number (got NoneType None)")
    refused(lambda: checks.number(True, "w"), "w must be a number (got bool True)")
    refused(lambda: checks.number("1", "w"), "w must be a number (got str '1')")
    refused(lambda: checks.number(1.5, "w", 0, 1), "w must be a finite number from 0 up to 1 (got 1.5)")
    refused(lambda: checks.number(-0.5, "w", 0), "w must be a finite number from 0 to inf (got -0.5)")
    refused(lambda: checks.number(0, "w", 0, 1, low_open=True), "w must be a finite number above 0 up to 1 (got 0)")
    assert checks.number(1e-9, "w", 0, 1, low_open=True) == 1e-9
    refused(lambda: checks.number(math.nan, "w"), "w must be a finite number from -inf to inf (got nan)")
    refused(lambda: checks.number(10 ** 400, "w"), "w must be a finite number from -inf to inf (got "
                                                   + checks._shown(10 ** 400) + ")")
    assert checks.timestamp(None) is None and checks.timestamp(0) == 0.0
    refused(lambda: checks.timestamp(1e11 + 1), "timestamp (epoch seconds) must be a finite number from 0 up to "
                                                "1e+11 (got 100000000001.0)")


def test_integer_edges():
    assert checks.integer(None, "k", allow_none=True) is None
    assert checks.integer(0, "k") == 0 and checks.integer(1 << 31, "k") == 1 << 31
    assert type(checks.integer(np.int64(3), "k")) is int
    refused(lambda: checks.integer(None, "k"), "k must be an integer (got NoneType None)")
    refused(lambda: checks.integer(True, "k"), "k must be an integer (got bool True)")
    refused(lambda: checks.integer(2.0, "k"), "k must be an integer (got float 2.0)")
    refused(lambda: checks.integer(-1, "k"), "k must be an integer from 0 to 2147483648 (got -1)")
    refused(lambda: checks.integer((1 << 31) + 1, "k"), "k must be an integer from 0 to 2147483648 (got 2147483649)")
    refused(lambda: checks.integer(0, "k", 1, 100), "k must be a positive integer of at most 100 (got 0)")
    refused(lambda: checks.integer(101, "k", 1, 100), "k must be a positive integer of at most 100 (got 101)")
    refused(lambda: checks.integer(1, "k", 2, 3), "k must be an integer from 2 to 3 (got 1)")


def test_flag_choice_instance():
    assert checks.flag(False, "x") is False
    refused(lambda: checks.flag(1, "x"), "x must be True or False (got int 1)")
    assert checks.choice("onnx", ("onnx", "tflite"), "engine") == "onnx"
    refused(lambda: checks.choice("ONNX", ("onnx", "tflite"), "engine"),
            "engine must be one of onnx, tflite (got 'ONNX')")
    refused(lambda: checks.choice(np.array(["onnx"]), ("onnx",), "engine"),
            "engine must be one of onnx (got array(['onnx'], dtype='<U4'))")
    assert checks.instance(None, int, "n") is None
    refused(lambda: checks.instance(None, int, "n", allow_none=False),
            "n must be a int, e.g. int(...) (got NoneType None)")
    refused(lambda: checks.instance("5", int, "n"), "n must be a int (or None), e.g. int(...) (got str '5')")
    assert checks.instance(5, int, "n") == 5


def test_known_names_unknowns_hints_and_at_most_twelve_options():
    options = {f"g{i:02d}" for i in range(14)} | {"Drama"}
    assert checks.known(["g01"], options, "genres") == ["g01"]
    refused(lambda: checks.known(["drama", "zz"], options, "genres"),
            "unknown genres ['drama', 'zz'] (did you mean 'drama' -> 'Drama'?); this catalog's genres: Drama, "
            "g00, g01, g02, g03, g04, g05, g06, g07, g08, g09, g10 and 3 more")
    refused(lambda: checks.known(["zz"], {"a", "b"}, "genres"), "unknown genres ['zz']; this catalog's genres: a, b")
    refused(lambda: checks.known(["zz"], set(), "genres"), "this catalog has no genres; leave them out (got ['zz'])")


def test_json_objects():
    assert checks.json_object(None, "context") is None
    refused(lambda: checks.json_object(None, "context", allow_none=False),
            "context must be a dict (got NoneType None)")
    refused(lambda: checks.json_object([1], "context"), "context must be a dict (got list [1])")
    error = refused(lambda: checks.json_object({"a": math.nan}, "context"),
                    "context must hold only JSON values (strings, finite numbers, lists, dicts with string keys): "
                    "Out of range float values are not JSON compliant")
    assert isinstance(error, ConfigError)
    with pytest.raises(ConfigError, match=r"^context must hold only JSON values .*: Object of type bytes"):
        checks.json_object({"a": b"x"}, "context")
    with pytest.raises(ConfigError, match="^context must hold only JSON values"):
        checks.json_object({1: "a", "b": 2}, "context")  # keys that cannot be sorted together
    # JSON stores these keys as text ({1: "a"} read back as {"1": "a"}): refused at any depth
    refused(lambda: checks.json_object({1: "a"}, "context"), "context must have text keys, at every level (got the "
            "int key 1)")
    refused(lambda: checks.json_object({"a": [{"b": {None: 2}}]}, "context"), "context must have text keys, at "
            "every level (got the NoneType key None)")
    refused(lambda: checks.json_object({"a": ({True: 1},)}, "context"), "context must have text keys, at every "
            "level (got the bool key True)")
    nested = {"a": [{"b": {"c": [1, "x"]}}], "d": ({"e": None},)}
    assert checks.json_object(nested, "context") == nested
    fits = {"a": "x" * 9}  # {"a": "xxxxxxxxx"}: 18 bytes
    assert checks.json_object(fits, "context", limit=18) == fits
    refused(lambda: checks.json_object(fits, "context", limit=17), "context takes 18 bytes as JSON; the limit is 17")
    big = {"a": "x" * (64 << 10)}
    refused(lambda: checks.json_object(big, "context"), "context takes 65,545 bytes as JSON; the limit is 65,536")
