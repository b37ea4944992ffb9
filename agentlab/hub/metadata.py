"""The Hub's rules for dataset-card metadata, checked offline.

`huggingface_hub.DatasetCard.validate()` asks the Hub server (network); these are the same rules for the
fields agentlab writes, taken from the Hub's documented tag lists, so a card is checked here, offline, before
it is written or pushed.
"""

from __future__ import annotations

import re
from typing import Any

# https://huggingface.co/docs/hub/datasets-cards (size_categories)
SIZE_CATEGORIES = ["n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
                   "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T"]

# the Hub's task categories (pipeline types) agentlab's tasks map to, plus their neighbours
TASK_CATEGORIES = {
    "text-classification", "token-classification", "table-question-answering", "question-answering",
    "zero-shot-classification", "translation", "summarization", "feature-extraction", "text-generation",
    "text2text-generation", "fill-mask", "sentence-similarity", "text-retrieval", "text-ranking",
    "image-classification", "image-to-text", "visual-question-answering", "tabular-classification", "other",
}

# https://huggingface.co/docs/hub/repositories-licenses (the "license identifier" column)
LICENSES = {
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0",
    "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1",
    "lgpl-3.0", "isc", "h-research", "intel-research", "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr", "mpl-2.0",
    "odc-by", "odbl", "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl",
    "lgpl-lr", "deepfloyd-if-license", "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "gemma", "unknown",
    "other",
}

ANNOTATIONS_CREATORS = {"crowdsourced", "expert-generated", "found", "machine-generated", "no-annotation", "other"}

# ISO 639-1 / 639-2/3 codes, optionally with a region or script (en, en-US, zh-Hant, yue)
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def size_category(n: int) -> str:
    """The Hub's size bucket for `n` rows."""
    bounds = [(1_000, 0), (10_000, 1), (100_000, 2), (1_000_000, 3), (10_000_000, 4), (100_000_000, 5),
              (1_000_000_000, 6), (10_000_000_000, 7), (100_000_000_000, 8), (1_000_000_000_000, 9)]
    for bound, i in bounds:
        if n < bound:
            return SIZE_CATEGORIES[i]
    return SIZE_CATEGORIES[-1]


def license_problem(value: str) -> str | None:
    """Why `value` is not a Hub license identifier, or None when it is one."""
    if value in LICENSES:
        return None
    close = sorted(x for x in LICENSES if x.startswith(value.lower().split("-")[0]))[:5]
    hint = f"did you mean {', '.join(close)}?" if close else "e.g. cc-by-4.0, apache-2.0, mit, or `other`"
    return f"{value!r} is not a Hugging Face license identifier ({hint})"


def language_problem(value: str) -> str | None:
    """Why `value` is not an ISO 639 language code, or None when it is one."""
    return None if _LANGUAGE.match(value) else f"{value!r} is not an ISO 639 language code (e.g. en, de, pt-BR)"


def metadata_problems(data: dict[str, Any]) -> list[str]:
    """Everything in a dataset card's metadata the Hub would reject (empty = valid)."""
    problems: list[str] = []
    for field, allowed in (("task_categories", TASK_CATEGORIES), ("size_categories", set(SIZE_CATEGORIES)),
                           ("annotations_creators", ANNOTATIONS_CREATORS)):
        values = data.get(field) or []
        if not isinstance(values, list):
            problems.append(f"{field} must be a list (got {values!r})")
            continue
        problems += [f"{field}: {v!r} is not one of the Hub's values" for v in values if v not in allowed]
    lic = data.get("license")
    for v in lic if isinstance(lic, list) else [lic] if lic else []:
        if (p := license_problem(str(v))) is not None:
            problems.append(f"license: {p}")
    lang = data.get("language")
    for v in lang if isinstance(lang, list) else [lang] if lang else []:
        if (p := language_problem(str(v))) is not None:
            problems.append(f"language: {p}")
    problems += _config_problems(data.get("configs"))
    return problems


def _config_problems(configs: Any) -> list[str]:
    if configs is None:
        return []
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        return [f"configs must be a list of mappings (got {configs!r})"]
    out = []
    for c in configs:
        if not c.get("config_name"):
            out.append(f"configs: every config needs a config_name (got {c!r})")
        files = c.get("data_files")
        if not isinstance(files, (str, list)) or (isinstance(files, list) and not all(
                isinstance(f, str) or (isinstance(f, dict) and f.get("split") and f.get("path")) for f in files)):
            out.append(f"configs.{c.get('config_name')}.data_files must be a path or a list of {{split, path}}")
    return out
