"""The recsys experiment end to end (runlocal) and the two-tower's sharded training path."""

import jax
import numpy as np
import pytest

from embeddings_jax.data import ratings as R
from embeddings_jax.train import make_mesh


@pytest.fixture
def ml100k(shared_data):
    shared_data(R.DATASET)


def test_runlocal_end_to_end(ml100k, tmp_path):
    from experiments import recsys

    result = recsys.run(recsys.get_config("runlocal"), str(tmp_path))
    assert 0.7 < result["ml100k_u1u5_rmse_mean_biased_mf"] < 1.3
    for name in ("random", "popularity", "two_tower_softmax"):
        for metric in ("precision", "recall", "ndcg", "map"):
            assert 0.0 <= result[f"ml100k_stratified_{metric}_at_10_{name}"] <= 1.0
    # Popularity beats random by a wide margin under this protocol.
    assert (result["ml100k_stratified_ndcg_at_10_popularity"]
            > 3 * result["ml100k_stratified_ndcg_at_10_random"])
    # The exact index serves the brute-force top-10.
    assert result["ml100k_stratified_flat_index_same_top10_fraction"] > 0.99
    assert 0.0 < result["ml100k_stratified_ivf_recall_at_10_vs_brute_force"] <= 1.0
    assert "ml100k_cold_start_ndcg_at_10_two_tower_features_only" in result
    assert (tmp_path / "recsys.md").is_file() and (tmp_path / "recsys_item_embeddings.png").is_file()


def test_two_tower_multi_device_matches_single_device(ml100k, tmp_path):
    from experiments import recsys

    cfg = recsys.get_config("runlocal").tt
    cfg.epochs, cfg.batch_size = 1, 256
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
    from experiments import recsys

    users, items = R.load_users(), R.load_items()
    kept, _, cold = R.holdout_users(R.load_ratings(), 0.1, seed=0)
    feats = recsys.build_features(users, items, kept)
    # Cold users' id slot holds the unknown-id row; their features are unchanged.
    id_slot = feats.user_slots.index(0)
    assert len(set(feats.user_rows[cold, id_slot])) == 1  # all unseen ids share the unknown row
    np.testing.assert_array_equal(np.delete(feats.user_rows[cold], id_slot, 1),
                                  np.delete(feats.cold_user_rows[cold], id_slot, 1))
    model = recsys.build_model(feats, recsys.get_config("runlocal").tt)
    params = model.init(jax.random.PRNGKey(0), feats.user_rows[:1], None, feats.item_rows[:1],
                        feats.item_dense[:1])["params"]
    u, i = recsys.embed(model, params, feats, cold_users=cold)
    assert u.shape == (R.NUM_USERS, 64) and i.shape == (R.NUM_ITEMS, 64)
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="cold user ids"):
        recsys.embed(model, params, feats, cold_users=np.array([R.NUM_USERS]))
    with pytest.raises(ValueError, match="empty"):
        recsys.train_two_tower(kept.take(np.zeros(len(kept), bool)), feats,
                               recsys.get_config("runlocal").tt, loss="softmax", seed=0,
                               workdir="/nonexistent")
    with pytest.raises(ValueError, match="unknown loss"):
        recsys.make_loss_fn(model, feats, kept.item, recsys.get_config("runlocal").tt, "hinge")


@pytest.mark.parametrize("loss,mode", [("bpr", "multiplexed"), ("warp", "separate"),
                                       ("softmax", "multiplexed")])
def test_losses_on_both_layouts_give_finite_gradients(ml100k, loss, mode):
    from experiments import recsys

    train = R.load_ratings().take(np.arange(2000))
    feats = recsys.build_features(R.load_users(), R.load_items(), train, mode=mode)
    assert feats.layout.table_size == sum(feats.layout.sizes)  # same size in both layouts
    cfg = recsys.get_config("runlocal").tt
    model = recsys.build_model(feats, cfg)
    params = model.init(jax.random.PRNGKey(0), feats.user_rows[:1], None, feats.item_rows[:1],
                        feats.item_dense[:1])["params"]
    loss_fn = recsys.make_loss_fn(model, feats, train.item, cfg, loss)
    batch = {"user": train.user[:64], "item": train.item[:64]}
    (value, _), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
        params, batch, jax.random.PRNGKey(1))
    assert np.isfinite(value) and value > 0
    assert float(np.abs(grads["table"]["embedding"]).sum()) > 0
