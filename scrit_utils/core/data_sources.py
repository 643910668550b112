"""Where the real evaluation data comes from: every file, its public home (a pinned commit) and its sha256.

``scrit data fetch`` (:mod:`scrit_utils.data_cli`, :mod:`scrit_utils.core.data_fetch`) downloads these files
into a data folder laid out as below (the layout every loader and profile reads; see
:mod:`scrit_utils.core.data_dir`) and refuses a file whose sha256 differs from the one recorded here.

The checksums are those of the files as the study uses them (the team's read-only copy in ``../shared/data``),
and each commit is one at which the upstream repository holds exactly those bytes (checked blob by blob
against the repositories' git histories when the table was written):

- RealCritic: ``tangzhy/RealCritic`` at 149f6a3 has both ``data/mix_data`` and ``data/wrong_data`` (the later
  "final version" commit dd88a05 deleted ``wrong_data``; ``mix_data`` is unchanged at the head).
- ProcessBench: ``QwenLM/ProcessBench`` at 2f2fd8a, the last commit with ``dataset/*.json`` in the repository
  (606615c moved the data to the Hugging Face Hub, ``Qwen/ProcessBench``, which serves it as Parquet, not as
  these JSON files; the loaders also take that hub id).
- GSM8K: ``openai/grade-school-math`` at its head 3101c7d.
- Qwen2.5-Math evaluation sets: ``QwenLM/Qwen2.5-Math`` at its head a45202b (``evaluation/data``; the
  MIT license in ``evaluation/LICENSE`` is the one of the evaluation harness it derives from).

Usage::

    from scrit_utils.core import data_sources
    for f in data_sources.FILES: print(f.path, f.url(), f.sha256)
"""
from __future__ import annotations

from dataclasses import dataclass

#: where GitHub serves a file of a repository at a commit: ``{RAW_BASE}/{repo}/{commit}/{path}``
RAW_BASE = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class Source:
    name: str  # the top-level folder under the data folder
    repo: str  # owner/name on GitHub
    commit: str  # the pinned commit (full hash)
    license: str
    what: str


@dataclass(frozen=True)
class DataFile:
    path: str  # under the data folder, e.g. "realcritic/mix_data/gsm8k/test.jsonl"
    source: Source
    remote: str  # path inside the source repository at its commit
    sha256: str
    size: int  # bytes

    def url(self, base: str = RAW_BASE) -> str:
        """The file's download URL; ``base`` replaces ``https://raw.githubusercontent.com`` (a mirror)."""
        return f"{base.rstrip('/')}/{self.source.repo}/{self.source.commit}/{self.remote}"


REALCRITIC = Source("realcritic", "tangzhy/RealCritic", "149f6a31da19827746585626157af0a83f8cc2f1", "MIT",
                    "RealCritic critique-correction sets: mix_data (balanced) and wrong_data (all solutions wrong)")
PROCESSBENCH = Source("processbench", "QwenLM/ProcessBench", "2f2fd8ae590aeb949f7be265478b05280f93db68",
                      "Apache-2.0", "ProcessBench: earliest wrong paragraph of a solution (gsm8k, math, olympiadbench)")
GSM8K = Source("gsm8k", "openai/grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c", "MIT",
               "GSM8K train and test (answers end in '#### <answer>')")
MATH_EVAL = Source("math_eval", "QwenLM/Qwen2.5-Math", "a45202bd16f1ec06f433442dc1152d0074773465", "MIT",
                   "Qwen2.5-Math evaluation sets (problem + answer), ProcessBench's answer sources")
SOURCES: dict[str, Source] = {s.name: s for s in (REALCRITIC, PROCESSBENCH, GSM8K, MATH_EVAL)}

# (path under the data folder, sha256, size); the remote path follows from the source's layout below
_ROWS: tuple[tuple[str, str, int], ...] = (
    ("realcritic/LICENSE", "fad7c7435d19a4c635225d0d64915c12175608f44c68eedc62eaa5253bf43b79", 1067),
    ("realcritic/mix_data/arc-challenge/test.jsonl", "25fef6e9039ccbed0fde41c2a3650c7bd25fcd1ef522ec0cd6315f0453e9fb50", 458127),
    ("realcritic/mix_data/college_math/test.jsonl", "449fd0469265dddd31ba768038609e8e31f51848ae0f59d575112f8ae3615f81", 549847),
    ("realcritic/mix_data/gpqa/test.jsonl", "f4565d5cbe5585d79f4c63b5ec30c1701871b61b5cb2bd4da04fd98579db67d7", 511773),
    ("realcritic/mix_data/gsm8k/test.jsonl", "ee725c8c11ed0995ef1e22fed98a91db435faf932e9064dcf5d9aadf440c70c6", 511631),
    ("realcritic/mix_data/math/test.jsonl", "4437c0524044a98bd935db16d3f09580224147973725271b44ab19a3877ce7d1", 800964),
    ("realcritic/mix_data/mmlu_stem/test.jsonl", "f96daee88f9b0788cb6ea25a216d86292d295431b020ff5961660b643f327d46", 551242),
    ("realcritic/wrong_data/arc-challenge/test.jsonl", "c1699ea37169089a8b07e86a5e37410d7de04a6ef41422f4db63e13ac8008bc9", 581295),
    ("realcritic/wrong_data/college_math/test.jsonl", "93a223efdc611eaa14b9bc63d04a21f6924f55f4b41209009f09bbd946639829", 602297),
    ("realcritic/wrong_data/gpqa/test.jsonl", "e591a9ba91945d937d26ee742bc2e465e35f8a2f3236fd2ebe899719ec594c30", 729383),
    ("realcritic/wrong_data/gsm8k/test.jsonl", "fd14aeda5ebe52df31fea1ca0017c3902e7cc99373f61de11ca37a63d7abc7cf", 591957),
    ("realcritic/wrong_data/math/test.jsonl", "b669ace90bbc6bbc15b7641f8593c253e9f102480c448d9add4c9ffdaba7df59", 879073),
    ("realcritic/wrong_data/mmlu_stem/test.jsonl", "608a4f044151e60c84df2708a91b029979e8c84a87ec5317d13066bf9a8c44db", 729594),
    ("processbench/gsm8k.json", "fb1c59dfd1e83e1c5a48dbe598db27e4bc0b8bc524a09445f2d4b69178f61349", 574343),
    ("processbench/math.json", "520ae64463d6ceb4bf13af31693389a5d5b14934cdad3468193dea4a5ceb0414", 1938778),
    ("processbench/olympiadbench.json", "e9d801c9f3c03f949adbfa08e90cb21ad85c0b9224bc5e98326f8215c218aa55", 2808955),
    ("gsm8k/LICENSE", "86bbb73e855821d7c401912fd4bf82e34313e6e3b6fd6f909f2b6cc9e209a53b", 1062),
    ("gsm8k/test.jsonl", "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14", 749738),
    ("gsm8k/train.jsonl", "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465", 4166206),
    ("math_eval/LICENSE", "fad7c7435d19a4c635225d0d64915c12175608f44c68eedc62eaa5253bf43b79", 1067),
    ("math_eval/aime24/test.jsonl", "af2b8bd2aa911b6333ad0df32f3ca05c7ae8ed10f1731f4372c8ae26990bf7ac", 156944),
    ("math_eval/amc23/test.jsonl", "43707e1ca784602d8479de24ee8ce36609dbebc46dd152b0b12a46611aa898a4", 27631),
    ("math_eval/college_math/test.jsonl", "91131bc4a355b884fc63ef7c4f048c35adb030004a4cb07b1475698f120aa4a6", 1188309),
    ("math_eval/gsm8k/test.jsonl", "9f098df7ff4522078d6ccec27a5c38a454790fdb51131bedfaa0e490070d5394", 761421),
    ("math_eval/minerva_math/test.jsonl", "0e656b430d3a0a1dab6aa853f453ba3805e28e2cabe4fc72486a897cc09d8ba2", 247267),
    ("math_eval/olympiadbench/test.jsonl", "bb8c1e38a16ea9eacb77530315a674d883f267fbff79183effc53681b4fcc416", 1493870),
)


def _remote(top: str, rel: str) -> str:
    """Our path under a source's folder -> the path in its repository."""
    if top == "realcritic":
        return rel if rel == "LICENSE" else f"data/{rel}"
    if top == "processbench":
        return f"dataset/{rel}"
    if top == "gsm8k":
        return rel if rel == "LICENSE" else f"grade_school_math/data/{rel}"
    return "evaluation/LICENSE" if rel == "LICENSE" else f"evaluation/data/{rel}"  # math_eval


def _file(path: str, sha256: str, size: int) -> DataFile:
    top, rel = path.split("/", 1)
    return DataFile(path, SOURCES[top], _remote(top, rel), sha256, size)


FILES: tuple[DataFile, ...] = tuple(_file(*row) for row in _ROWS)


def files(sources: list[str] | tuple[str, ...] | None = None) -> tuple[DataFile, ...]:
    """The files of the named sources (all when None); an unknown name raises, listing the known ones."""
    if not sources:
        return FILES
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown data source(s) {unknown}; known: {sorted(SOURCES)}")
    return tuple(f for f in FILES if f.source.name in sources)
