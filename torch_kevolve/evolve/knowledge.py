"""The knowledge base: markdown entries (torch_kevolve/knowledge/*.md), each a bottleneck's symptoms and
remedies expressed as genome transformations. A diagnosis finds its entries through the shipped FAISS
knowledge index (retrieval/knowledge_index.py), or by keyword overlap while that index is missing or stale."""
from __future__ import annotations

import functools
import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

from ..families.base import Genome, GenomeSpace
from ..retrieval.key_index import RetrievalIndexError
from ..retrieval.knowledge_index import KnowledgeIndex
from .diagnosis import Diagnosis

KNOWLEDGE_DIR = Path(__file__).resolve().parent.parent / "knowledge"
log = logging.getLogger("torch_kevolve")
_REMEDY = re.compile(r"^(decrease|increase|vary) (\w+)$|^set (\w+) to (\S+)$")


class KnowledgeFormatError(ValueError):
    """A knowledge entry that does not follow knowledge/README.md's format (the message names the file)."""


@dataclass(frozen=True)
class Remedy:
    """One transformation of a genome: move `param` down or up its allowed values, set it, or vary it."""

    action: str
    param: str
    value: str | None = None

    def __str__(self) -> str:
        return f"set {self.param} to {self.value}" if self.action == "set" else f"{self.action} {self.param}"

    def apply(self, genome: Genome, space: GenomeSpace, rng: random.Random) -> Genome | None:
        """The transformed genome, or None when the remedy does not apply (no such gene, already at the end)."""
        allowed = dict(space.choices).get(self.param)
        if allowed is None or len(allowed) < 2:
            return None
        current = genome[self.param]
        if self.action == "set":
            value = next((v for v in allowed if str(v) == self.value), None)
            return None if value is None or value == current else {**genome, self.param: value}
        if self.action == "vary":
            return {**genome, self.param: rng.choice([v for v in allowed if v != current])}
        ordered = sorted(allowed)
        position = ordered.index(current) + (1 if self.action == "increase" else -1)
        return {**genome, self.param: ordered[position]} if 0 <= position < len(ordered) else None


@dataclass(frozen=True)
class KnowledgeEntry:
    name: str
    title: str
    symptoms: tuple[str, ...]
    hardware: tuple[str, ...]
    remedies: tuple[Remedy, ...]
    text: str

    def applies_to(self, hardware: str) -> bool:
        return "any" in self.hardware or hardware in self.hardware

    @property
    def matching_text(self) -> str:
        """What a diagnosis is matched against (knowledge/README.md): the title and the symptoms, not the remedies
        or the prose for people."""
        return f"{self.title}\nsymptoms: {', '.join(self.symptoms)}"


def parse_entry(path: Path) -> KnowledgeEntry:
    text = path.read_text(encoding="utf-8")
    lines = [line.rstrip() for line in text.splitlines()]
    fields: dict[str, str] = {}
    remedies: list[Remedy] = []
    in_remedies = False
    for line in lines:
        if line.startswith("# ") and "title" not in fields:
            fields["title"] = line[2:].strip()
        elif in_remedies and line.startswith("- "):
            match = _REMEDY.match(line[2:].strip())
            if not match:
                raise KnowledgeFormatError(f"{path}: remedy {line[2:]!r} is not 'decrease|increase|vary P' or 'set P to V'")
            action, param, set_param, value = match.groups()
            remedies.append(Remedy("set", set_param, value) if set_param else Remedy(action, param))
        elif ":" in line and not line.startswith(" ") and line.split(":", 1)[0] in ("symptoms", "hardware", "remedies"):
            name, value = line.split(":", 1)
            fields[name] = value.strip()
            in_remedies = name == "remedies"
        else:
            in_remedies = in_remedies and line.startswith("- ")
    missing = {"title", "symptoms", "hardware"} - set(fields)
    if missing or not remedies:
        raise KnowledgeFormatError(f"{path}: missing {sorted(missing) or 'remedies'}")
    split = lambda text: tuple(w.strip().lower() for w in text.split(",") if w.strip())  # noqa: E731
    return KnowledgeEntry(path.stem, fields["title"], split(fields["symptoms"]), split(fields["hardware"]),
                          tuple(remedies), text)


class KnowledgeBase:
    """Every entry of a directory; `retrieve` ranks them against a diagnosis."""

    def __init__(self, directory: Path = KNOWLEDGE_DIR):
        self.entries = [parse_entry(p) for p in sorted(directory.glob("*.md")) if p.name != "README.md"]

    @functools.cached_property
    def index(self) -> KnowledgeIndex | None:
        """The shipped knowledge index, if it matches these entries (else None, said once in the log)."""
        try:
            return KnowledgeIndex({e.name: e.matching_text for e in self.entries})
        except RetrievalIndexError as e:
            log.info("kevolve: knowledge retrieval by keywords: %s", e)
            return None

    def retrieve(self, diagnosis: Diagnosis, hardware: str = "any", k: int = 3) -> list[KnowledgeEntry]:
        """The k entries for this hardware nearest to the diagnosis (none for a diagnosis without findings)."""
        usable = {e.name: e for e in self.entries if e.applies_to(hardware)}
        if self.index is not None:
            ranked = [usable[name] for name, _ in self.index.rank(diagnosis.findings) if name in usable]
            return ranked[:k]
        return self.match_keywords(diagnosis.text, hardware, k)

    def match_keywords(self, text: str, hardware: str = "any", k: int = 3) -> list[KnowledgeEntry]:
        """The k entries whose symptoms share most words with `text` (none that share nothing)."""
        text = text.lower()
        scored = []
        for entry in self.entries:
            if entry.applies_to(hardware):
                score = sum(len(symptom.split()) for symptom in entry.symptoms if symptom in text)
                if score:
                    scored.append((score, entry.title, entry))
        return [entry for _, _, entry in sorted(scored, key=lambda s: (-s[0], s[1]))[:k]]
