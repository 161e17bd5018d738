"""Hypothesis strategies the host tests share."""

from hypothesis import strategies as st

# any JSON value a decoder can give: null, booleans, numbers, short strings, and lists and objects of them
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
                           | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                         max_size=3), max_leaves=8)
