"""Category counts equal a plain Python Counter, whatever the column's representation."""

from collections import Counter
from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.stats import categories as c

RNG = np.random.default_rng(11)


def as_counter(result: c.CategoryCounts) -> Counter:
    return Counter(dict(zip(result.categories.tolist(), result.counts.tolist(), strict=True)))


@pytest.mark.parametrize(
    "labels",
    [
        ["a", "b", "c"],  # one word per key
        ["north", "south", "é", "日本"],  # two words (UTF-32: 4 bytes per character)
        [f"segment_with_a_long_name_{i}" for i in range(40)],  # hashed keys
        ["x", "x\u0301", "", "  "],  # combining marks, empty and blank strings are all distinct
    ],
)
def test_fixed_width_strings_counted_exactly(labels):
    values = np.array(labels)[RNG.integers(0, len(labels), 5_000)]
    result = c.count_categories(values)
    assert as_counter(result) == Counter(values.tolist())
    assert result.categories.tolist() == sorted(result.categories.tolist())
    assert result.missing == 0


def test_bytes_columns_are_counted_as_text():
    values = np.array([b"ab", b"cd", b"ab"])
    assert as_counter(c.count_categories(values)) == Counter({"ab": 2, "cd": 1})


def test_a_hash_collision_falls_back_to_exact_counting(monkeypatch):
    monkeypatch.setattr(c, "_hash_rows", lambda words: np.zeros(words.shape[0], dtype=np.uint64))
    values = np.array(["first_long_label", "second_long_label", "first_long_label"])
    assert as_counter(c.count_categories(values)) == Counter({"first_long_label": 2, "second_long_label": 1})


def test_object_columns_count_none_and_nan_as_missing():
    values = np.array(["a", None, "b", float("nan"), "a"], dtype=object)
    result = c.count_categories(values)
    assert as_counter(result) == Counter({"a": 2, "b": 1})
    assert result.missing == 2 and result.total == 5


def test_mixed_object_columns_still_count():
    values = np.array([1, "1", 2.5, None], dtype=object)
    result = c.count_categories(values)
    assert as_counter(result) == Counter({"1": 2, "2.5": 1})
    assert result.missing == 1


def test_arrow_columns_with_nulls():
    values = pa.chunked_array([["a", None, "b"], ["a", "c", None]])
    result = c.count_categories(values)
    assert as_counter(result) == Counter({"a": 2, "b": 1, "c": 1})
    assert result.missing == 2


def test_dictionary_encoded_arrow_columns():
    values = pa.array(["x", "y", "x", None]).dictionary_encode()
    result = c.count_categories(values)
    assert as_counter(result) == Counter({"x": 2, "y": 1})
    assert result.missing == 1


def test_numeric_codes_with_nan_missing():
    result = c.count_categories(np.array([1.0, 2.0, np.nan, 1.0]))
    assert as_counter(result) == Counter({"1.0": 2, "2.0": 1})
    assert result.missing == 1


def test_empty_and_all_empty_string_columns():
    assert c.count_categories(np.array([], dtype="<U3")).counts.size == 0
    assert as_counter(c.count_categories(np.array(["", ""]))) == Counter({"": 2})


def test_align_puts_zero_where_a_side_lacks_a_category():
    left = c.count_categories(np.array(["a", "b", "b"]))
    right = c.count_categories(np.array(["b", "c"]))
    categories, lc, rc = c.align(left, right)
    assert categories.tolist() == ["a", "b", "c"]
    assert lc.tolist() == [1, 2, 0] and rc.tolist() == [0, 1, 1]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["a", "b", "a\x00", "é", "", "日本"]), st.none(), st.just(float("nan")), st.text(max_size=3)
        ),
        max_size=60,
    ),
    st.sampled_from([1, 2, 7, 1 << 20]),
    st.sampled_from([None, 5, b"a"]),
)
def test_texts_counted_a_piece_at_a_time_are_the_whole_columns_counts(values, piece, odd):
    """Objects are made Arrow text a piece at a time and the pieces' tallies summed; a piece
    that is not all text sends the column to the whole count, as before. Either way the counts
    are those of the whole column made Arrow text at once (or of its texts as str() gives them)."""
    column = np.array([*values, *([] if odd is None else [odd])], dtype=object)
    with mock.patch.object(c, "COUNT_PIECE_ROWS", piece):
        counted = c.count_categories(column)
    try:
        whole = c._arrow_counts(pa.array(column, from_pandas=True))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        whole = c._object_counts(column)
    assert counted.categories.tolist() == whole.categories.tolist()
    assert counted.counts.dtype == np.int64 and counted.counts.tolist() == whole.counts.tolist()
    assert counted.missing == whole.missing
