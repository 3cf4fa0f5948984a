"""Matrix factorization, two-tower pieces, training and top-k serving: references, recovery,
sharded training, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from embeddings_jax.data import ratings as R
from embeddings_jax.data.ratings import Ratings
from embeddings_jax.eval import recommend as rec
from embeddings_jax.index import FlatIndex
from embeddings_jax.models import recsys
from embeddings_jax.models.recsys import bpmf
from embeddings_jax.models.recsys import factorization as F
from embeddings_jax.models.recsys import two_tower as T
from embeddings_jax.train import make_mesh


@pytest.fixture
def ml100k(shared_data):
    shared_data(R.DATASET)


def _ratings(user, item, rating):
    n = len(user)
    return Ratings(np.asarray(user, np.int32), np.asarray(item, np.int32),
                   np.asarray(rating, np.float32), np.zeros(n, np.int64))


def test_mf_prediction_matches_formula_with_implicit_term():
    model = F.BiasedMF(5, 7, dim=3, implicit=True, global_mean=3.0, init_scale=0.5)
    iu, ii = jnp.array([0, 0, 1, 3, 3, 3]), jnp.array([1, 2, 2, 0, 4, 6])
    params = jax.jit(model.init)(jax.random.PRNGKey(0), iu[:1], ii[:1], iu, ii)["params"]
    params = dict(params, y=jax.random.normal(jax.random.PRNGKey(1), (7, 3)),
                  user_bias=jnp.arange(5.0) / 10, item_bias=-jnp.arange(7.0) / 10)
    u, i = np.array([0, 3, 2]), np.array([5, 1, 2])
    pred, pen = jax.jit(model.apply)({"params": params}, u, i, iu, ii)
    p, q, y = (np.asarray(params[k]) for k in ("p", "q", "y"))
    for b, (uu, it) in enumerate(zip(u, i)):
        n_u = [j for a, j in zip(np.asarray(iu), np.asarray(ii)) if a == uu]
        imp = y[n_u].sum(0) / np.sqrt(len(n_u)) if n_u else np.zeros(3)
        want = 3.0 + uu / 10 - it / 10 + q[it] @ (p[uu] + imp)
        assert pred[b] == pytest.approx(want, abs=1e-5)
        assert pen[0][b] == pytest.approx(p[uu] @ p[uu] + imp @ imp, abs=1e-5)
        assert pen[1][b] == pytest.approx(q[it] @ q[it], abs=1e-5)


def test_mf_side_features_match_formula():
    model = F.BiasedMF(4, 3, dim=2, global_mean=3.0, user_feature_dim=2, item_feature_dim=3)
    zu = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    xi = jnp.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    u, i = jnp.array([0, 2, 3]), jnp.array([1, 0, 2])
    params = jax.jit(model.init)(jax.random.PRNGKey(0), u, i, None, None, zu, xi)["params"]
    params = dict(params, a=jax.random.normal(jax.random.PRNGKey(1), (2, 2)),
                  g=jax.random.normal(jax.random.PRNGKey(2), (3, 2)))
    pred, _ = jax.jit(model.apply)({"params": params}, u, i, None, None, zu, xi)
    p, q, a, g = (np.asarray(params[k]) for k in ("p", "q", "a", "g"))
    zu, xi = np.asarray(zu), np.asarray(xi)
    want = [3.0 + (q[it] + xi[it] @ g) @ (p[uu] + zu[uu] @ a) for uu, it in zip(u, i)]
    np.testing.assert_allclose(pred, want, rtol=1e-5)
    with pytest.raises(ValueError, match="side features"):
        model.apply({"params": params}, u, i)
    train = _ratings([0, 1, 2], [0, 1, 2], [1, 3, 5])
    with pytest.raises(ValueError, match="user_features"):
        F.fit(train, F.MFConfig(dim=2, batch_size=2, epochs=1), num_users=4, num_items=3,
              user_features=np.ones((3, 2)))


def test_mf_fit_recovers_low_rank_ratings_and_cold_fallback():
    rng = np.random.default_rng(0)
    nu, ni = 60, 40
    pu, qi = rng.normal(size=(nu, 2)), rng.normal(size=(ni, 2))
    full = np.clip(3 + 0.6 * pu @ qi.T, 1, 5)
    u, i = np.divmod(rng.permutation(nu * ni)[: nu * ni * 7 // 10], ni)
    u = u[u < nu - 1]  # the last user never appears: cold
    i = i[: len(u)]
    train = _ratings(u, i, full[u, i])
    cfg = F.MFConfig(dim=4, reg=0.001, bias_reg=0.0, learning_rate=0.02, batch_size=64,
                     epochs=60, cosine_decay=True)
    model = F.fit(train, cfg, num_users=nu, num_items=ni)
    mask = np.ones((nu, ni), bool)
    mask[u, i] = False
    mask[nu - 1] = False
    hu, hi = np.nonzero(mask)
    err = F.rating_errors(model.predict(hu, hi), full[hu, hi])
    baseline = F.rating_errors(np.full(len(hu), train.rating.mean()), full[hu, hi])
    assert err["rmse"] < 0.5 * baseline["rmse"]
    # A user without training ratings gets mu + b_i (zero factors, zero user bias).
    params = model.params
    cold = model.predict(np.full(ni, nu - 1), np.arange(ni), clip=None)
    np.testing.assert_allclose(cold, params["mu"] + params["item_bias"], rtol=1e-5)
    # Same seed, same model.
    again = F.fit(train, cfg, num_users=nu, num_items=ni)
    np.testing.assert_array_equal(again.predict(hu, hi), model.predict(hu, hi))


@pytest.mark.parametrize("fit,cfg,bad", [
    (F.fit, F.MFConfig(dim=2, batch_size=2, epochs=1), _ratings([0, 1], [0, 1], [0.0, 6.0])),
    (bpmf.fit, bpmf.BPMFConfig(dim=3, samples=3, burn_in=1), _ratings([0], [0], [7.0])),
], ids=["mf", "bpmf"])
def test_rating_models_reject_unknown_ids_and_bad_ratings(fit, cfg, bad):
    model = fit(_ratings([0, 1, 2], [0, 1, 2], [1, 3, 5]), cfg, num_users=3, num_items=3)
    with pytest.raises(ValueError, match="unknown user id 3"):
        model.predict([3], [0])
    with pytest.raises(ValueError, match="unknown item id -1"):
        model.predict([0], [-1])
    with pytest.raises(ValueError, match="outside \\[1.0, 5.0\\]"):
        fit(bad, cfg, num_users=3, num_items=3)
    with pytest.raises(ValueError, match="empty"):
        fit(_ratings([], [], []), cfg, num_users=3, num_items=3)


def test_mf_bad_input():
    train = _ratings([0, 1, 2], [0, 1, 2], [1, 3, 5])
    with pytest.raises(ValueError, match="batch_size"):
        F.fit(train, F.MFConfig(dim=2, batch_size=10), num_users=3, num_items=3)
    with pytest.raises(ValueError, match="implicit_pairs"):
        F.fit(train, F.MFConfig(dim=2, batch_size=2, epochs=1, implicit=True), num_users=3,
              num_items=3, implicit_pairs=(np.array([0]), np.array([9])))


def test_feature_layout_separate_and_multiplexed():
    feats = {"a": np.array([0, 2, 1]), "b": np.array([[0, 3], [1, -1], [-1, -1]])}
    sep = T.FeatureLayout(("a", "b"), (3, 4), "separate")
    rows, slots = sep.rows(feats)
    np.testing.assert_array_equal(rows, [[0, 3, 6], [2, 4, -1], [1, -1, -1]])
    np.testing.assert_array_equal(slots, [0, 1, 1])
    mux = T.FeatureLayout(("a", "b"), (3, 4), "multiplexed")
    assert mux.table_size == sep.table_size == 7  # same parameter count
    mrows, _ = mux.rows(feats)
    assert ((mrows >= -1) & (mrows < 7)).all() and np.array_equal(mrows < 0, rows < 0)
    with pytest.raises(ValueError, match="size"):
        sep.rows({"a": np.array([3]), "b": np.array([0])})
    with pytest.raises(ValueError, match="missing"):
        sep.rows({"a": np.array([0])})
    with pytest.raises(ValueError, match="sum"):
        T.FeatureLayout(("a",), (3,), "separate", table_size=5)


def test_two_tower_pooling_matches_reference():
    model = T.TwoTower(table_size=6, user_slots=(0, 1, 1), item_slots=(2,), embed_dim=4,
                       hidden=(), out_dim=4, normalize=False)
    rows = jnp.array([[0, 2, 3], [1, 4, -1], [5, -1, -1]])
    params = jax.jit(model.init)(jax.random.PRNGKey(0), rows, None, jnp.array([[0]]), None)["params"]
    pool = jax.jit(lambda p, r: model.apply({"params": p}, r, model.user_slots,
                                            method=T.TwoTower._pool))
    pooled = pool(params, rows)
    table = np.asarray(params["table"]["embedding"])
    want = np.stack([
        [table[0], (table[2] + table[3]) / 2],
        [table[1], table[4]],
        [table[5], np.zeros(4)],
    ])
    np.testing.assert_allclose(pooled, want, rtol=1e-6, atol=1e-7)


def test_bpr_and_warp_losses_match_reference():
    pos = jnp.array([2.0, 0.5, 3.0])
    neg = jnp.array([[0.0, 1.5, 2.5], [0.1, -1.0, 0.0], [1.0, 1.0, 1.0]])
    assert T.bpr_loss(pos, neg[:, 0]) == pytest.approx(
        np.mean(np.log1p(np.exp(np.asarray(neg[:, 0] - pos)))), rel=1e-6)
    n_items = 100
    want = []
    for p, row in zip(np.asarray(pos), np.asarray(neg)):
        viol = [j for j, s in enumerate(row) if s > p - 1.0]
        if not viol:
            want.append(0.0)
            continue
        j = viol[0]
        want.append(np.log1p((n_items - 1) // (j + 1)) * (1.0 - p + row[j]))
    assert T.warp_loss(pos, neg, n_items) == pytest.approx(np.mean(want), rel=1e-6)


def test_top_k_unseen_index_and_baselines():
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(20, 8)).astype(np.float32), rng.normal(size=(50, 8)).astype(np.float32)
    seen = [rng.choice(50, size=rng.integers(0, 45), replace=False) for _ in range(20)]
    brute = rec.top_k_unseen(users @ items.T, seen, 10)
    for u in range(20):
        valid = brute[u][brute[u] >= 0]
        assert not np.isin(valid, seen[u]).any()
        assert len(valid) == min(10, 50 - len(seen[u]))
    index = FlatIndex(8, "ip")
    index.add(items)
    np.testing.assert_array_equal(rec.index_top_k_unseen(index, users, seen, 10), brute)
    # Ties go to the lower item id; popularity ranks by training counts.
    np.testing.assert_array_equal(rec.top_k_unseen(np.zeros((1, 5)), [np.array([1])], 3), [[0, 2, 3]])
    pop = rec.popularity_top_k(np.array([4, 4, 4, 2, 2, 0]), 5, [np.array([4]), np.array([])], 2)
    np.testing.assert_array_equal(pop, [[2, 0], [4, 2]])
    rnd = rec.random_top_k(5, [np.array([0, 1, 2])], 3, seed=1)
    assert sorted(rnd[0][:2]) == [3, 4] and rnd[0][2] == -1
    with pytest.raises(ValueError, match="outside"):
        rec.top_k_unseen(np.zeros((1, 3)), [np.array([3])], 1)
    with pytest.raises(ValueError, match="rows"):
        rec.top_k_unseen(np.zeros((2, 3)), [np.array([0])], 1)


def test_serving_agreement_popularity_prior_and_topk_metrics():
    rng = np.random.default_rng(1)
    users = rng.normal(size=(6, 4)).astype(np.float32)
    items = rng.normal(size=(12, 4)).astype(np.float32)
    seen = [np.array([u]) for u in range(6)]
    brute = rec.top_k_unseen(users @ items.T, seen, 3)
    served = rec.serve_top_k_unseen(FlatIndex(4, "ip"), items, users, seen, 3)
    assert rec.agreement(served, brute) == {"same_list_fraction": 1.0, "same_set_fraction": 1.0,
                                            "recall": 1.0}
    assert rec.agreement(brute[:, ::-1], brute)["same_list_fraction"] == 0.0
    assert rec.agreement(brute[:, ::-1], brute)["same_set_fraction"] == 1.0
    np.testing.assert_allclose(np.exp(rec.log_popularity(np.array([0, 0, 1]), 3)),
                               [2 / 3, 1 / 3, 1 / 3])
    test = _ratings([0, 0, 1], [1, 5, 2], [1, 1, 1])
    m = rec.topk_metrics(np.array([[0, 1], [2, -1]]), test, k=2)
    ndcg_u0 = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert m == pytest.approx({"precision": 0.5, "recall": 0.75, "ndcg": (ndcg_u0 + 1) / 2,
                               "map": 0.625, "map_all": 0.625})
    only_u1 = rec.topk_metrics(np.array([[0, 1], [2, -1]]), test, users=np.array([1]), k=2)
    assert only_u1["recall"] == 1.0
    assert [s.tolist() for s in rec.seen_lists(test, 3)] == [[1, 5], [2], []]


def test_two_tower_multi_device_matches_single_device(ml100k, tmp_path):
    cfg = recsys.TwoTowerConfig(epochs=1, batch_size=256)
    all_r = R.load_ratings()
    train = all_r.take(np.arange(1024))
    feats = recsys.build_features(R.load_users(), R.load_items(), train)
    params = {}
    for n in (1, 8):
        _, params[n] = recsys.train_two_tower(train, feats, cfg, loss="softmax", seed=0,
                                              workdir=tmp_path / f"d{n}", mesh=make_mesh(n))
    for a, b in zip(jax.tree.leaves(params[1]), jax.tree.leaves(params[8])):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-5)


def test_cold_start_path_and_unknown_ids(ml100k):
    users, items = R.load_users(), R.load_items()
    kept, _, cold = R.holdout_users(R.load_ratings(), 0.1, seed=0)
    feats = recsys.build_features(users, items, kept)
    # Cold users' id slot holds the unknown-id row; their features are unchanged.
    id_slot = feats.user_slots.index(0)
    assert len(set(feats.user_rows[cold, id_slot])) == 1  # all unseen ids share the unknown row
    np.testing.assert_array_equal(np.delete(feats.user_rows[cold], id_slot, 1),
                                  np.delete(feats.cold_user_rows[cold], id_slot, 1))
    model = recsys.build_model(feats, recsys.TwoTowerConfig())
    params = model.init(jax.random.PRNGKey(0), feats.user_rows[:1], None, feats.item_rows[:1],
                        feats.item_dense[:1])["params"]
    u, i = recsys.embed(model, params, feats, cold_users=cold)
    assert u.shape == (R.NUM_USERS, 64) and i.shape == (R.NUM_ITEMS, 64)
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="cold user ids"):
        recsys.embed(model, params, feats, cold_users=np.array([R.NUM_USERS]))
    with pytest.raises(ValueError, match="empty"):
        recsys.train_two_tower(kept.take(np.zeros(len(kept), bool)), feats,
                               recsys.TwoTowerConfig(), loss="softmax", seed=0,
                               workdir="/nonexistent")
    with pytest.raises(ValueError, match="unknown loss"):
        recsys.make_loss_fn(model, feats, kept.item, recsys.TwoTowerConfig(), "hinge")


@pytest.mark.parametrize("loss,mode", [("bpr", "multiplexed"), ("warp", "separate"),
                                       ("softmax", "multiplexed")])
def test_losses_on_both_layouts_give_finite_gradients(ml100k, loss, mode):
    train = R.load_ratings().take(np.arange(2000))
    feats = recsys.build_features(R.load_users(), R.load_items(), train, mode=mode)
    assert feats.layout.table_size == sum(feats.layout.sizes)  # same size in both layouts
    cfg = recsys.TwoTowerConfig()
    model = recsys.build_model(feats, cfg)
    params = model.init(jax.random.PRNGKey(0), feats.user_rows[:1], None, feats.item_rows[:1],
                        feats.item_dense[:1])["params"]
    loss_fn = recsys.make_loss_fn(model, feats, train.item, cfg, loss)
    batch = {"user": train.user[:64], "item": train.item[:64]}
    (value, _), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
        params, batch, jax.random.PRNGKey(1))
    assert np.isfinite(value) and value > 0
    assert float(np.abs(grads["table"]["embedding"]).sum()) > 0
