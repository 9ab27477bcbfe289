"""What ``mms eval`` shows: the figures of each system, built once and rendered as a table
or JSON, and the quality bars. Plain data (no numpy, no index), so a report that
``mms serve`` computed is rendered by the client exactly as one computed in-process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmsearch_cli.errors import QualityBarError

MODALITIES = ("text", "image", "audio", "video")


@dataclass
class EvalReport:
    """Per system (first stage, reranked) its summary and, per query, the first relevant
    rank and the top paths."""

    k: int
    queries: int
    summaries: dict[str, dict[str, Any]]
    per_query: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def check_bars(
        self,
        *,
        min_ndcg: float | None = None,
        min_mrr: float | None = None,
        min_recall: float | None = None,
    ) -> None:
        """Raise ``QualityBarError`` (exit 9) if the last system's overall figure falls
        below a bar: a CI gate on retrieval quality."""
        k = self.k
        last = self.summaries[list(self.summaries)[-1]]["groups"].get("all", {})
        for bar, key in ((min_ndcg, f"nDCG@{k}"), (min_mrr, f"MRR@{k}"), (min_recall, f"R@{k}")):
            if bar is not None and last.get(key, 0.0) < bar:
                raise QualityBarError(f"{key} {last.get(key, 0.0):.3f} is below the bar {bar:.3f}")

    def table(self) -> list[tuple[str, str, dict[str, float]]]:
        """(system, group, figures) in reading order: overall, then per query modality,
        per target modality and per (query, target) pair."""
        return [
            (name, group, summary["groups"][group])
            for name, summary in self.summaries.items()
            for group in group_order(summary["groups"])
        ]

    def to_dict(self, per_query: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"k": self.k, "systems": self.summaries}
        if per_query:
            data["per_query"] = self.per_query
        return data

    def wire(self) -> dict[str, Any]:
        """Everything, for ``from_wire`` on the other side of a socket."""
        return {"k": self.k, "queries": self.queries, "summaries": self.summaries,
                "per_query": self.per_query}  # fmt: skip

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> EvalReport:
        return cls(int(data["k"]), int(data["queries"]), data["summaries"], data["per_query"])


def group_order(groups: dict[str, Any]) -> list[str]:
    """all, then per query modality, per target modality, per (query, target) pair."""
    order = ["all"]
    order += [f"query:{m}" for m in MODALITIES] + [f"target:{m}" for m in MODALITIES]
    order += [f"{q}->{t}" for q in MODALITIES for t in MODALITIES]
    return [g for g in order if g in groups]
