"""Prune only what was really deleted: a root that is missing, empty, on another device
than when it was indexed (an unmounted drive leaves its empty mount point behind), or
that would lose more than ``max_delete`` of its files in one run keeps its files. The
run says why, exits 6, and ``--force-prune`` (or ``mms forget``) drops them on purpose.
``rsync --max-delete`` guards the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from mmsearch_cli.indexing.scan import under_roots

MAX_DELETE = 0.5  # share of a root's indexed files one run may drop
MAX_DELETE_MIN = 20  # a root with fewer indexed files is not held to the share


def root_device(root: str) -> int | None:
    try:
        return os.stat(root).st_dev
    except OSError:
        return None


def held_back(
    roots: Iterable[str],
    indexed: Iterable[str],
    found: Iterable[str],
    vanished: Iterable[str],
    devices: Mapping[str, int],
    max_delete: float = MAX_DELETE,
) -> dict[str, str]:
    """Roots whose vanished files must not be dropped this run -> why (for the warning)."""
    roots = list(roots)
    known, present, gone = list(indexed), list(found), list(vanished)
    out: dict[str, str] = {}
    for root in roots:
        mine = [p for p in known if under_roots(p, [root])]
        lost = sum(1 for p in gone if under_roots(p, [root]))
        if not mine or not lost:
            continue
        device = root_device(root)
        if device is None:
            out[root] = f"is missing (unmounted?); its {len(mine)} indexed files are kept"
        elif root in devices and devices[root] != device:
            out[root] = (f"is on another device than when it was indexed (unmounted?); "
                         f"its {len(mine)} indexed files are kept")  # fmt: skip
        elif not any(under_roots(p, [root]) for p in present):
            out[root] = f"is empty; its {len(mine)} indexed files are kept"
        elif len(mine) >= MAX_DELETE_MIN and lost > max_delete * len(mine):
            out[root] = (f"would lose {lost} of its {len(mine)} indexed files at once "
                         f"(more than {max_delete:.0%}); they are kept")  # fmt: skip
    return out
