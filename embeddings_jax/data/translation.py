"""A parallel corpus for translation: loaders, tokenisers, vocabularies, length-bucketed batches.

Data (through the registry, never a hard-coded path):
  * ``load_multi30k(split, src, tgt)``: Multi30k task 1, ``split`` in {"train", "val"},
    languages in {"en", "de", "fr", "cs"}; raw (cased, punctuated) sentences.
  * ``load_fra_eng(split)``: Tatoeba eng-fra (the d2l ``fra-eng`` file), with a deterministic
    held-out ``"val"`` split chosen by a hash of the English sentence (so every translation of one
    English sentence falls on the same side).
  * ``load_pairs(dataset, src, tgt)``: either corpus as (train src, train tgt, val src, val tgt).

Tokenisers share one interface (``encode(text) -> list[int]``, ``decode(ids) -> str``,
``vocab_size``) and the same reserved ids ``<pad>=0 <bos>=1 <eos>=2 <unk>=3``:
  * ``WordTokenizer``: the d2l word level (spaces before ``, . ! ?``, optional lower-casing).
  * ``SubwordTokenizer``: byte-pair encoding trained with the ``tokenizers`` library (optional
    dependency, imported when used).

Bad input policy (at ``encode_pairs`` / ``encode_sources``):
  * unknown words map to ``<unk>`` (subwords rarely need it);
  * empty sentences: training pairs with an empty side are dropped (counted in the returned
    stats); an empty source at translation time is encoded as ``[<eos>]`` and still translated;
  * sentences longer than ``max_len`` tokens: ``on_long="truncate"`` (default: keep the first
    ``max_len - 1`` tokens, append ``<eos>``, and warn once with the count), ``"drop"`` (skip the
    pair, for training) or ``"error"`` (raise ``ValueError``).
"""

from __future__ import annotations

import collections
import gzip
import json
import re
import warnings
import zlib
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from embeddings_jax.data import registry

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = 0, 1, 2, 3
MULTI30K_LANGS = ("en", "de", "fr", "cs")


# ---------------------------------------------------------------------------------------------
# Loaders.


def _read_lines(path) -> list[str]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def load_multi30k(
    split: str = "train", src: str = "en", tgt: str = "de"
) -> tuple[list[str], list[str]]:
    """Line-aligned Multi30k sentences: (source sentences, target sentences), 29000 / 1014 lines."""
    if split not in ("train", "val"):
        raise ValueError(
            f"Multi30k split must be 'train' or 'val' (test sets are held out), got {split!r}"
        )
    for lang in (src, tgt):
        if lang not in MULTI30K_LANGS:
            raise ValueError(f"Multi30k has languages {MULTI30K_LANGS}, got {lang!r}")
    if src == tgt:
        raise ValueError(f"source and target language are both {src!r}")
    s = _read_lines(registry.fetch("multi30k", f"{split}.{src}.gz"))
    t = _read_lines(registry.fetch("multi30k", f"{split}.{tgt}.gz"))
    if len(s) != len(t):
        raise ValueError(f"Multi30k {split}: {len(s)} {src} lines but {len(t)} {tgt} lines")
    return s, t


def fra_eng_is_val(english: str, val_fraction: float) -> bool:
    """Deterministic split rule: a stable hash of the English side, independent of file order."""
    return zlib.crc32(english.encode("utf-8")) % 10_000 < round(val_fraction * 10_000)


def load_fra_eng(split: str = "train", val_fraction: float = 0.02) -> tuple[list[str], list[str]]:
    """Tatoeba (English, French) sentences of the staged training file, split train/val.

    ``split`` in {"train", "val", "all"}; "val" holds about ``val_fraction`` of the pairs.
    """
    if split not in ("train", "val", "all"):
        raise ValueError(f"fra-eng split must be 'train', 'val' or 'all', got {split!r}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    eng, fra = [], []
    for n, line in enumerate(_read_lines(registry.fetch("fra-eng", "train.txt.gz"))):
        parts = line.split("\t")
        if len(parts) < 2:
            raise ValueError(f"fra-eng line {n + 1} is not 'English<TAB>French': {line!r}")
        if split != "all" and fra_eng_is_val(parts[0], val_fraction) != (split == "val"):
            continue
        eng.append(parts[0])
        fra.append(parts[1])
    return eng, fra


def load_pairs(
    dataset: str, src: str, tgt: str, fra_eng_val_fraction: float = 0.02
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Raw (train_src, train_tgt, val_src, val_tgt) sentences of ``"multi30k"`` or ``"fra-eng"``."""
    if dataset == "multi30k":
        return (*load_multi30k("train", src, tgt), *load_multi30k("val", src, tgt))
    if dataset == "fra-eng":
        if (src, tgt) not in (("en", "fr"), ("fr", "en")):
            raise ValueError(f"fra-eng pairs are en/fr, got {src}->{tgt}")
        tr = load_fra_eng("train", fra_eng_val_fraction)
        va = load_fra_eng("val", fra_eng_val_fraction)
        return (tr[1], tr[0], va[1], va[0]) if src == "fr" else (*tr, *va)
    raise ValueError(f"dataset must be 'multi30k' or 'fra-eng', got {dataset!r}")


# ---------------------------------------------------------------------------------------------
# Word-level tokenisation (d2l) and vocabularies.

_SPACE_BEFORE_PUNCT = re.compile(r"(?<=\S)([,.!?])")
_SPACE_BEFORE_DETOK = re.compile(r" ([,.!?])")


def preprocess(text: str, lowercase: bool = True) -> str:
    """d2l preprocessing: non-breaking spaces -> spaces, optional lower-case, a space before , . ! ?"""
    text = text.replace("\u202f", " ").replace("\xa0", " ")
    if lowercase:
        text = text.lower()
    return _SPACE_BEFORE_PUNCT.sub(r" \1", text)


def detokenize(tokens: Sequence[str]) -> str:
    """Joins word tokens, removing the space inserted before , . ! ? (inverse of ``preprocess``)."""
    return _SPACE_BEFORE_DETOK.sub(r"\1", " ".join(tokens))


class Vocab:
    """Token <-> id map; ids 0..3 are ``<pad> <bos> <eos> <unk>``, then tokens by frequency."""

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            tokens = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.itos = tokens
        self.stoi = {t: i for i, t in enumerate(tokens)}
        if len(self.stoi) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")

    @classmethod
    def build(
        cls, sentences: Sequence[Sequence[str]], min_freq: int = 2, max_size: int | None = None
    ):
        """Tokens seen at least ``min_freq`` times, most frequent first (ties: alphabetical)."""
        counts = collections.Counter(t for s in sentences for t in s)
        kept = sorted(
            (t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t)
        )
        return cls(kept[:max_size] if max_size else kept)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.stoi.get(t, UNK) for t in tokens]

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Tokens up to the first ``<eos>``, without ``<pad>``/``<bos>``."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.itos[i] if 0 <= i < len(self.itos) else SPECIALS[UNK])
        return out


class Tokenizer(Protocol):
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class WordTokenizer:
    """d2l word-level tokeniser: ``preprocess`` then split on spaces, over a ``Vocab``."""

    kind = "word"

    def __init__(self, vocab: Vocab, lowercase: bool = True):
        self.vocab, self.lowercase = vocab, lowercase
        self.vocab_size = len(vocab)

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        min_freq: int = 2,
        max_size: int | None = None,
        lowercase: bool = True,
    ):
        toks = [preprocess(t, lowercase).split() for t in texts]
        return cls(Vocab.build(toks, min_freq, max_size), lowercase)

    def tokenize(self, text: str) -> list[str]:
        return preprocess(text, self.lowercase).split()

    def encode(self, text: str) -> list[int]:
        return self.vocab.encode(self.tokenize(text))

    def decode(self, ids: Sequence[int]) -> str:
        return detokenize(self.vocab.decode(ids))

    def to_json(self) -> str:
        return json.dumps(
            {"kind": self.kind, "lowercase": self.lowercase, "tokens": self.vocab.itos}
        )


class SubwordTokenizer:
    """Byte-pair encoding from the ``tokenizers`` library (NFKC, Metaspace, reversible decode)."""

    kind = "bpe"

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()
        for i, s in enumerate(SPECIALS):
            if tokenizer.token_to_id(s) != i:
                raise ValueError(f"subword tokenizer must map {s} to id {i}")

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        vocab_size: int = 8000,
        lowercase: bool = False,
        min_frequency: int = 2,
    ):
        try:
            from tokenizers import Tokenizer as HFTokenizer
            from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers
        except ImportError as e:  # optional dependency
            raise ImportError(
                "SubwordTokenizer needs the `tokenizers` package: pip install tokenizers"
            ) from e
        tok = HFTokenizer(models.BPE(unk_token=SPECIALS[UNK]))
        norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
        tok.normalizer = normalizers.Sequence(norms)
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIALS),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer)
        return cls(tok)

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids]
        if EOS in ids:
            ids = ids[: ids.index(EOS)]
        return self.tok.decode([i for i in ids if i not in (PAD, BOS)], skip_special_tokens=False)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "tokenizer": self.tok.to_str()})


def make_tokenizer(
    kind: str,
    texts: Sequence[str],
    *,
    vocab_size: int = 8000,
    min_freq: int = 2,
    lowercase: bool = False,
):
    """``kind`` "word" (d2l) or "bpe" (subwords), trained on ``texts``."""
    if kind == "word":
        return WordTokenizer.train(texts, min_freq=min_freq, lowercase=lowercase)
    if kind == "bpe":
        return SubwordTokenizer.train(
            texts, vocab_size=vocab_size, lowercase=lowercase, min_frequency=min_freq
        )
    raise ValueError(f"tokenizer kind must be 'word' or 'bpe', got {kind!r}")


def tokenizer_from_json(text: str):
    d = json.loads(text)
    if d["kind"] == "word":
        return WordTokenizer(Vocab(d["tokens"]), d["lowercase"])
    if d["kind"] == "bpe":
        from tokenizers import Tokenizer as HFTokenizer

        return SubwordTokenizer(HFTokenizer.from_str(d["tokenizer"]))
    raise ValueError(f"unknown tokenizer kind {d['kind']!r}")


# ---------------------------------------------------------------------------------------------
# Encoding with the bad-input policy.


def _fit(ids: list[int], max_len: int, on_long: str) -> list[int] | None:
    """Appends <eos>; applies the long-sentence policy; None = drop."""
    if len(ids) + 1 <= max_len:
        return ids + [EOS]
    if on_long == "truncate":
        return ids[: max_len - 1] + [EOS]
    if on_long == "drop":
        return None
    raise ValueError(
        f"sentence has {len(ids)} tokens (+ <eos>) but max_len is {max_len}; "
        "shorten it or use on_long='truncate'"
    )


def _check_policy(on_long: str, max_len: int) -> None:
    if on_long not in ("truncate", "drop", "error"):
        raise ValueError(f"on_long must be 'truncate', 'drop' or 'error', got {on_long!r}")
    if max_len < 2:
        raise ValueError(f"max_len must be >= 2 (one token + <eos>), got {max_len}")


def encode_sources(
    texts: Sequence[str], tok: Tokenizer, max_len: int, on_long: str = "truncate"
) -> list[list[int]]:
    """Source sentences -> id lists ending in <eos> (empty text -> [<eos>]); see the module policy."""
    _check_policy(on_long, max_len)
    if on_long == "drop":
        raise ValueError(
            "on_long='drop' would lose sentences at translation time; use 'truncate' or 'error'"
        )
    out, n_long = [], 0
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(f"source sentences must be str, got {type(t).__name__}")
        ids = tok.encode(t)
        n_long += len(ids) + 1 > max_len
        out.append(_fit(ids, max_len, on_long))
    if n_long:
        warnings.warn(
            f"{n_long} source sentence(s) longer than max_len={max_len} tokens were truncated"
        )
    return out


def encode_pairs(
    src_texts: Sequence[str],
    tgt_texts: Sequence[str],
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    max_len: int,
    on_long: str = "drop",
) -> tuple[list[list[int]], list[list[int]], dict]:
    """Training pairs -> (source ids + <eos>, target ids + <eos>, stats); drops empty pairs."""
    if len(src_texts) != len(tgt_texts):
        raise ValueError(f"{len(src_texts)} source but {len(tgt_texts)} target sentences")
    _check_policy(on_long, max_len)
    src, tgt = [], []
    stats = {"pairs": len(src_texts), "empty": 0, "long": 0}
    for s, t in zip(src_texts, tgt_texts):
        si, ti = src_tok.encode(s), tgt_tok.encode(t)
        if not si or not ti:
            stats["empty"] += 1
            continue
        if len(si) + 1 > max_len or len(ti) + 1 > max_len:
            stats["long"] += 1
        si, ti = _fit(si, max_len, on_long), _fit(ti, max_len, on_long)
        if si is None or ti is None:
            continue
        src.append(si)
        tgt.append(ti)
    if stats["long"] and on_long == "truncate":
        warnings.warn(
            f"{stats['long']} pair(s) longer than max_len={max_len} tokens were truncated"
        )
    stats["kept"] = len(src)
    return src, tgt, stats


# ---------------------------------------------------------------------------------------------
# Padding and length-bucketed batches.


def pad(seqs: Sequence[Sequence[int]], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pads id lists: int32 [N, length] and the bool mask of real tokens."""
    out = np.full((len(seqs), length), PAD, np.int32)
    for i, s in enumerate(seqs):
        if len(s) > length:
            raise ValueError(
                f"sequence {i} has {len(s)} tokens, more than the padded length {length}"
            )
        out[i, : len(s)] = s
    return out, out != PAD


def bucket_length(n: int, boundaries: Sequence[int]) -> int:
    """The smallest boundary >= n (so a few fixed shapes cover every batch)."""
    for b in boundaries:
        if n <= b:
            return b
    raise ValueError(f"length {n} exceeds the largest bucket boundary {boundaries[-1]}")


def make_batch(
    src: Sequence[Sequence[int]],
    tgt: Sequence[Sequence[int]],
    src_len: int,
    tgt_len: int,
    batch_size: int | None = None,
) -> dict:
    """One padded batch. Targets carry <eos>; decoder input = <bos> + target[:-1].

    Returns numpy: src [B, S], src_mask [B, S], tgt_in / tgt_out / tgt_mask [B, T];
    with ``batch_size`` the batch is filled up with empty rows (all masks False).
    """
    n = batch_size or len(src)
    src = list(src) + [[]] * (n - len(src))
    tgt = list(tgt) + [[]] * (n - len(tgt))
    s, s_mask = pad(src, src_len)
    t_out, t_mask = pad(tgt, tgt_len)
    t_in = np.where(
        t_mask, np.concatenate([np.full((n, 1), BOS, np.int32), t_out[:, :-1]], axis=1), PAD
    )
    return {
        "src": s,
        "src_mask": s_mask,
        "tgt_in": t_in.astype(np.int32),
        "tgt_out": t_out,
        "tgt_mask": t_mask,
    }


def bucket_plan(
    src: Sequence[Sequence[int]],
    tgt: Sequence[Sequence[int]],
    batch_size: int,
    boundaries: Sequence[int],
    *,
    seed: int = 0,
    shuffle: bool = True,
) -> list[tuple[int, np.ndarray]]:
    """One epoch as (padded length, pair indices) batches, each from one length bucket.

    A pair goes to the smallest boundary holding both sides; batches are shuffled within and
    across buckets with ``seed`` (pass ``seed + epoch`` for a new order each epoch).
    """
    if len(src) != len(tgt):
        raise ValueError(f"{len(src)} sources but {len(tgt)} targets")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    buckets: dict[int, list[int]] = collections.defaultdict(list)
    for i, (s, t) in enumerate(zip(src, tgt)):
        buckets[bucket_length(max(len(s), len(t)), boundaries)].append(i)
    rng = np.random.default_rng(seed)
    chunks = []
    for length in sorted(buckets):
        idx = np.array(buckets[length])
        if shuffle:
            idx = rng.permutation(idx)
        chunks += [(length, idx[i : i + batch_size]) for i in range(0, len(idx), batch_size)]
    order = rng.permutation(len(chunks)) if shuffle else range(len(chunks))
    return [chunks[c] for c in order]


def bucket_batch_fn(src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]], batch_size: int,
                    boundaries: Sequence[int], seed: int = 0) -> tuple[Callable[[int], dict], int]:
    """``(batch_fn(step) -> make_batch batch, steps_per_epoch)`` for the training loop.

    Epoch ``e`` is ``bucket_plan(..., seed=seed + e)``, so a step's batch depends on the step alone
    (what a run resumed from a checkpoint needs); only the current epoch's plan is kept.
    """
    plans: dict[int, list] = {}

    def plan(epoch):
        if epoch not in plans:
            plans.clear()
            plans[epoch] = bucket_plan(src, tgt, batch_size, boundaries, seed=seed + epoch)
        return plans[epoch]

    steps_per_epoch = len(plan(0))

    def batch_fn(step):
        length, idx = plan(step // steps_per_epoch)[step % steps_per_epoch]
        return make_batch([src[i] for i in idx], [tgt[i] for i in idx], length, length, batch_size)

    return batch_fn, steps_per_epoch
