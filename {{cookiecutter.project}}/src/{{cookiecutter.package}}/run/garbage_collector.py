"""Keep Python's garbage collector off what the imports created: it lives until the process ends."""

from __future__ import annotations

import gc


def freeze_imported_objects() -> bool:
    """Move every object alive now into the collector's permanent generation, once per process;
    return whether this call did it.

    Called when a run starts, after torch, Lightning, timm and Hydra are imported: about half a
    million modules, classes and functions that no collection can free. Frozen, they are no longer
    walked by every full collection, nor by the collection at interpreter exit, which otherwise kept
    each `python train.py` waiting about a second after its last line on a 2-core machine. Data-loader
    workers forked from the process also stop copying the memory pages the collector would touch.

    Only the first call freezes: in a sweep, a later job would also freeze what the jobs before it left
    in reference cycles, which would then never be freed.
    """
    if gc.get_freeze_count():
        return False
    gc.freeze()
    return True
