"""BERT-family encoders (BERT, RoBERTa, XLM-R, MPNet): the Flax encoder (`encoder`), Hugging Face
checkpoint loading (`checkpoint`), sentence and word embeddings with sentence-transformers' surface
(`sentence_encoder`) and contrastive fine-tuning with retrieval metrics (`finetune`).

    from embeddings_jax.models.bert import SentenceEncoder
    enc = SentenceEncoder("all-MiniLM-L6-v2")   # the HF hub cache, else the packaged copy
    x = enc.encode(["A dog runs.", "A cat sleeps."])   # [2, 384], unit length as the model says
"""

from embeddings_jax.models.bert.checkpoint import (
    SentenceConfig,
    convert_state_dict,
    load_checkpoint,
    load_config,
    load_params,
    load_sentence_config,
    load_tokenizer,
    packaged_model_dir,
    resolve_model_dir,
)
from embeddings_jax.models.bert.encoder import BertConfig, BertEncoder, BertOutput, init_params
from embeddings_jax.models.bert.sentence_encoder import (
    LAYERS,
    POOLINGS,
    PRECISIONS,
    SentenceEncoder,
    combine_layers,
    make_batch,
    pool,
    pooled_forward,
    quantize_embeddings,
)

__all__ = [
    "LAYERS", "POOLINGS", "PRECISIONS", "BertConfig", "BertEncoder", "BertOutput", "SentenceConfig",
    "SentenceEncoder", "combine_layers", "convert_state_dict", "init_params", "load_checkpoint",
    "load_config", "load_params", "load_sentence_config", "load_tokenizer", "make_batch",
    "packaged_model_dir", "pool", "pooled_forward", "quantize_embeddings", "resolve_model_dir",
]
