"""Blockwise top-k against numpy: values, indices, ties, k > N, sharded == single device."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

from embeddings_jax.ops import topk


def np_topk(scores, k):
    """Stable reference: descending score, ties to the lower index."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), order


def dot_score(q_state, block):
    (q,) = q_state
    return jnp.dot(q, block[0].T, precision="highest")


@pytest.mark.parametrize("width,k", [(64, 3), (1024, 5), (4096, 10), (1000, 7)])
def test_chunked_topk_matches_numpy_with_ties(width, k):
    rng = np.random.default_rng(width)
    s = rng.integers(0, 20, size=(9, width)).astype(np.float32)  # many exact ties
    v, i = jax.jit(lambda s: topk.chunked_topk(s, k))(s)
    ref_v, ref_i = np_topk(s, k)
    np.testing.assert_array_equal(v, ref_v)
    np.testing.assert_array_equal(i, ref_i)


def test_merge_prefers_first_list_on_ties():
    v, i = topk.merge_topk(jnp.array([[3.0, 1.0]]), jnp.array([[5, 9]]), jnp.array([[3.0, 2.0]]), jnp.array([[7, 8]]), 3)
    assert i.tolist() == [[5, 7, 8]] and v.tolist() == [[3.0, 3.0, 2.0]]


def test_block_database_pads():
    blocks = topk.block_database((np.ones((10, 3)), np.arange(10)), block_size=4, num_shards=2)
    assert blocks[0].shape == (4, 4, 3) and blocks[1].shape == (4, 4)
    assert blocks[1].reshape(-1)[:10].tolist() == list(range(10)) and (blocks[1].reshape(-1)[10:] == 0).all()


@pytest.mark.parametrize("n,k,block", [(300, 10, 64), (50, 8, 64), (5, 9, 8), (128, 128, 32)])
def test_blockwise_matches_numpy(n, k, block):
    rng = np.random.default_rng(n)
    x = rng.integers(-3, 4, size=(n, 8)).astype(np.float32)  # integer data: exact scores, many ties
    q = rng.integers(-3, 4, size=(13, 8)).astype(np.float32)
    blocks = topk.put_blocks(topk.block_database((x,), block))
    v, i = topk.search_blocks(dot_score, (q,), blocks, n, k, query_batch=8)  # ragged last query batch
    ref = q @ x.T
    kk = min(k, n)
    ref_v, ref_i = np_topk(ref, kk)
    np.testing.assert_array_equal(v[:, :kk], ref_v)
    np.testing.assert_array_equal(i[:, :kk], ref_i)
    assert (i[:, kk:] == -1).all() and np.isneginf(v[:, kk:]).all()


def test_memory_is_per_block():
    """The compiled program never holds a [Q, N] score matrix: its temporaries scale with the block."""
    x = np.zeros((8192, 16), np.float32)
    q = np.zeros((64, 16), np.float32)
    sizes = {}
    for block in (256, 4096):
        blocks = topk.put_blocks(topk.block_database((x,), block))
        fn = jax.jit(lambda q, b: topk.blockwise_topk(dot_score, q, b, 8192, 10))
        sizes[block] = fn.lower((q,), blocks).compile().memory_analysis().temp_size_in_bytes
    assert sizes[256] < 64 * 8192 * 4 / 4  # well below one [Q, N] f32 matrix
    assert sizes[256] < sizes[4096]


@pytest.mark.parametrize("n", [1000, 37])
def test_sharded_equals_single_device(n):
    rng = np.random.default_rng(3)
    x = rng.integers(-3, 4, size=(n, 8)).astype(np.float32)
    q = rng.integers(-3, 4, size=(11, 8)).astype(np.float32)
    mesh = Mesh(np.array(jax.devices()[:8]), ("data",))
    single = topk.search_blocks(dot_score, (q,), topk.put_blocks(topk.block_database((x,), 32)), n, 12)
    sharded = topk.search_blocks(dot_score, (q,), topk.put_blocks(topk.block_database((x,), 32, 8), mesh), n, 12,
                                 mesh=mesh)
    np.testing.assert_array_equal(single[0], sharded[0])
    np.testing.assert_array_equal(single[1], sharded[1])
    _ref_v, ref_i = np_topk(q @ x.T, min(12, n))
    np.testing.assert_array_equal(sharded[1][:, :min(12, n)], ref_i)


def test_approx_max_k_path_recall():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2000, 16)).astype(np.float32)
    q = rng.standard_normal((20, 16)).astype(np.float32)
    blocks = topk.put_blocks(topk.block_database((x,), 512))
    _, i = topk.search_blocks(dot_score, (q,), blocks, 2000, 10, approx=True)
    _, ref = np_topk(q @ x.T, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i, ref)])
    assert recall >= 0.95
