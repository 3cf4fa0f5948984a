"""Word2Vec under ``jax.distributed``: two local CPU processes (one device, one worker each) train
to the same tables as one process with two devices, for the same schedule (workers merging every
4 steps). Launched with ``test_multihost.launch_two_processes``.

Run as a script (``python tests/test_multihost_word2vec.py RANK PORT OUT``) this file is the worker.
"""

import sys

import numpy as np

SETTINGS = {"vector_size": 16, "sg": 1, "epochs": 2, "seed": 4, "chunk_size": 128,
            "chunks_per_step": 2, "sync_every": 4, "compute_loss": True}  # fmt: skip


def _sentences():
    from embeddings_jax.data import synthetic

    return synthetic.generate_corpus(synthetic.make_world(0), 600, seed=1)


def _worker(rank: int, port: int, out: str) -> None:
    import jax

    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=rank)
    from embeddings_jax.models.word2vec import Word2Vec

    assert jax.process_count() == 2 and jax.device_count() == 2 and jax.local_device_count() == 1
    model = Word2Vec(_sentences(), devices=jax.devices(), **SETTINGS)
    np.savez(f"{out}{rank}.npz", syn0=model.wv.vectors, loss=model.get_latest_training_loss(),
             kept=model.last_train_stats["kept_words"])  # fmt: skip
    jax.distributed.shutdown()


def test_two_processes_train_like_one_process_with_two_workers(tmp_path):
    import jax
    from test_multihost import launch_two_processes

    from embeddings_jax.models.word2vec import Word2Vec

    launch_two_processes(__file__, str(tmp_path / "rank"), devices_per_process=1, timeout=150)
    want = Word2Vec(_sentences(), devices=jax.devices()[:2], **SETTINGS)
    for rank in (0, 1):
        got = np.load(tmp_path / f"rank{rank}.npz")
        np.testing.assert_allclose(got["syn0"], want.wv.vectors, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got["loss"], want.get_latest_training_loss(), rtol=1e-5)
        assert got["kept"] == want.last_train_stats["kept_words"]


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
