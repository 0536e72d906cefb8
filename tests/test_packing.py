"""pack_signs / unpack_signs / PackedSigns against the numpy sign rule."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from conftest import sign
from pybinscale import PackedSigns, pack_signs, unpack_signs

SHAPES = [(1, 1), (1, 64), (1, 200), (3, 1), (5, 63), (4, 65), (7, 130), (2, 513), (3, 100_003)]


def reference_words(A: np.ndarray) -> np.ndarray:
    """Packed words computed bit by bit in numpy."""
    rows, cols = A.shape
    stride = -(-(-(-cols // 64)) // 8) * 8
    bits = np.zeros((rows, stride * 64), dtype=bool)
    bits[:, :cols] = A >= 0
    weights = np.uint64(1) << np.arange(64, dtype=np.uint64)
    return (bits.reshape(rows, stride, 64).astype(np.uint64) * weights).sum(axis=2, dtype=np.uint64)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pack_matches_reference_words(simd_path, rng, shape, dtype):
    A = rng.standard_normal(shape).astype(dtype)
    A.flat[:: max(1, A.size // 7)] = 0.0  # sign(0) = +1
    packed = pack_signs(A)
    assert packed.shape == shape
    assert packed.words.shape[1] % 8 == 0
    np.testing.assert_array_equal(packed.words, reference_words(A))
    np.testing.assert_array_equal(unpack_signs(packed, dtype=np.int64), sign(A))


def test_negative_zero_is_non_negative(simd_path):
    packed = pack_signs(np.array([[-0.0, 0.0, -1e-300, 1e-300]]))
    np.testing.assert_array_equal(unpack_signs(packed), [[1, 1, -1, 1]])


@pytest.mark.parametrize("make", ["fortran", "row_slice", "column_slice", "reversed", "step"])
def test_any_layout_packs_like_a_contiguous_copy(rng, make):
    base = rng.standard_normal((40, 300))
    views = {
        "fortran": np.asfortranarray(base),
        "row_slice": base[5:30],
        "column_slice": base[:, 17:250],
        "reversed": base[::-1],
        "step": base[::3, ::2],
    }
    view = views[make]
    assert pack_signs(view) == pack_signs(np.ascontiguousarray(view))


def test_integer_and_boolean_input_is_converted():
    assert pack_signs(np.array([[3, -1, 0]])) == pack_signs(np.array([[3.0, -1.0, 0.0]]))
    assert pack_signs([[True, False]]) == pack_signs([[1.0, 0.0]])


def test_empty_shapes_pack_to_empty_results():
    assert pack_signs(np.zeros((0, 10))).shape == (0, 10)
    packed = pack_signs(np.zeros((3, 0)))
    assert packed.shape == (3, 0) and packed.words.shape == (3, 0)
    assert unpack_signs(packed).shape == (3, 0)


def test_storage_is_one_thirty_second_of_float32(rng):
    A = rng.standard_normal((64, 4096)).astype(np.float32)
    assert pack_signs(A).nbytes * 32 == A.nbytes


def test_packed_signs_pickle_and_compare(rng):
    packed = pack_signs(rng.standard_normal((6, 70)))
    restored = pickle.loads(pickle.dumps(packed))
    assert restored == packed and restored.shape == (6, 70)
    assert restored != pack_signs(rng.standard_normal((6, 70)))
    assert not restored.words.flags.writeable
    assert "PackedSigns(shape=(6, 70)" in repr(packed)


def test_packed_signs_validates_its_words():
    good = pack_signs(np.ones((2, 10))).words
    assert PackedSigns(good, 10) == pack_signs(np.ones((2, 10)))
    dirty = good.copy()
    dirty[0, 0] |= np.uint64(1) << np.uint64(20)  # bit 20 is past column 10
    with pytest.raises(ValueError, match="padding bits must be zero"):
        PackedSigns(dirty, 10)
    with pytest.raises(TypeError, match="uint64"):
        PackedSigns(good.astype(np.int64), 10)
    with pytest.raises(ValueError, match="multiple of 8"):
        PackedSigns(np.zeros((2, 3), dtype=np.uint64), 10)
    with pytest.raises(ValueError, match="cannot hold"):
        PackedSigns(np.zeros((2, 8), dtype=np.uint64), 600)


def test_unpack_dtype_choices(rng):
    packed = pack_signs(rng.standard_normal((3, 9)))
    for dtype in (np.int8, np.int32, np.float32, np.float64):
        assert unpack_signs(packed, dtype=dtype).dtype == dtype
    with pytest.raises(TypeError, match="dtype"):
        unpack_signs(packed, dtype=np.uint8)
    with pytest.raises(TypeError, match="P: expected PackedSigns"):
        unpack_signs(np.ones((2, 2)))
