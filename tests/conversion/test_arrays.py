"""Weights are made C-contiguous once (large transposes by torch), and the state_dict takes
that memory as it is: no second copy, no view of a larger buffer."""

import numpy as np
import pytest

from codegen.app.convert import _tensor
from codegen.conversion.arrays import c_order


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a.T,  # a Dense kernel (in, out) -> (out, in), large: torch transposes it
        lambda a: a[::-1],  # negative strides: numpy copies it
        lambda a: a[:, :7].T,  # a view of part of a bigger array
        lambda a: a.astype("float64").T,  # converted to float32 on the way
    ],
)
def test_c_order_is_the_same_values_contiguous(make):
    source = np.random.default_rng(0).standard_normal((1024, 600)).astype("float32")
    view = make(source)
    view.flags.writeable = False if view.base is not None else view.flags.writeable
    got = c_order(view, np.float32)
    assert got.flags.c_contiguous and got.dtype == np.float32
    np.testing.assert_array_equal(got, np.ascontiguousarray(view, dtype=np.float32))


def test_state_dict_takes_the_array_torch_made_without_copying():
    source = np.random.default_rng(1).standard_normal((1024, 600)).astype("float32")
    made = c_order(source.T, np.float32)
    tensor = _tensor(made)
    assert tensor.data_ptr() == made.ctypes.data  # the same memory
    assert tensor.untyped_storage().nbytes() == made.nbytes  # and no more of it
    part = _tensor(made[:10])  # a view of a larger array is copied compactly
    assert part.untyped_storage().nbytes() == part.numel() * 4
