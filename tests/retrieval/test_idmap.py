"""IdMap and IdBytes against a dict, for any sequence of changes, dense and sparse ids alike."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hebbian_memory.retrieval.idmap import IdBytes, IdMap

IDS = st.one_of(st.integers(1, 3000), st.integers(-5, 0), st.integers(2**20, 2**40))
OPS = st.lists(
    st.tuples(st.sampled_from(["set", "pop"]), IDS, st.one_of(st.integers(1, 3000), st.integers(2**31, 2**40)))
)


@given(OPS)
def test_an_id_map_answers_as_a_dict_does(ops: list[tuple[str, int, int]]) -> None:
    got, want = IdMap(), dict[int, int]()
    for op, key, value in ops:
        if op == "set":
            got[key] = value
            want[key] = value
        else:
            got.pop(key)
            want.pop(key, None)
        for probe in {key, value, 1, 2**20}:
            assert got.get(probe) == want.get(probe)


def test_a_dense_map_grows_with_the_ids_not_with_their_count() -> None:
    ids = IdMap()
    for i in range(1, 100_001):
        ids[i] = i - 1 or 1
    assert ids[100_000] == 99_999
    assert ids._dense.buffer_info()[1] * ids._dense.itemsize < 1_000_000  # pyright: ignore[reportPrivateUsage]
    assert not ids._sparse  # pyright: ignore[reportPrivateUsage]


@given(st.lists(st.tuples(IDS, st.integers(0, 255))))
def test_id_bytes_answer_as_a_dict_does(ops: list[tuple[int, int]]) -> None:
    got, want = IdBytes(), dict[int, int]()
    for key, value in ops:
        got[key] = value  # 0 removes
        if value:
            want[key] = value
        else:
            want.pop(key, None)
        for probe in {key, 0, 1, 2**20}:
            assert got.get(probe) == want.get(probe, 0)


def test_id_bytes_hold_a_byte() -> None:
    with pytest.raises(ValueError, match="0-255"):
        IdBytes()[1] = 256
