"""The recsys experiment end to end (runlocal), and its report of the committed results."""

import json
import pathlib

import ml_collections
import pytest

from embeddings_jax.data import ratings as R

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "results"


@pytest.fixture
def ml100k(shared_data):
    shared_data(R.DATASET)


def test_runlocal_end_to_end(ml100k, tmp_path):
    from experiments import recsys as experiment

    result = experiment.run(experiment.get_config("runlocal"), str(tmp_path))
    assert 0.7 < result["ml100k_u1u5_rmse_mean_biased_mf"] < 1.3
    for name in ("random", "popularity", "two_tower_softmax", "node2vec"):
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


def test_report_renders_the_committed_results_from_their_json():
    """The committed recsys.md is the report of the committed recsys.json's config and tables."""
    from experiments.reports import recsys as report

    record = json.loads((RESULTS / "recsys.json").read_text())
    page = report.markdown(ml_collections.ConfigDict(record["config"]), record["details"],
                           ["recsys_item_embeddings.png"])
    committed = (RESULTS / "recsys.md").read_text()
    assert committed.startswith(page.rstrip() + "\n\nCommand: ")
    metrics = report.metrics(record["details"])
    assert metrics == {k: v for k, v in record.items() if k.startswith("ml100k_")}
