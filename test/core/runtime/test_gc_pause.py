"""freeze_startup_objects: garbage collected first, what is alive frozen (runtime/gc_pause.py)."""

import gc
import weakref

from hax_conn_core.runtime.gc_pause import freeze_startup_objects


class _Node:
    pass


def test_garbage_goes_first_and_live_objects_leave_the_collectors_generations():
    was_enabled = gc.isenabled()
    gc.disable()  # so that only our call can collect the cycle below
    try:
        cycle = _Node()
        cycle.me = cycle
        gone = weakref.ref(cycle)
        del cycle
        alive = [_Node()]
        assert gone() is not None  # still there: nothing collected it yet
        freeze_startup_objects()
        assert gone() is None  # collected before the freeze, not frozen with the rest
        assert gc.get_freeze_count() > 0
        assert not any(o is alive for o in gc.get_objects())  # frozen: no collection walks it
        made_after = [_Node()]
        assert any(o is made_after for o in gc.get_objects())
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()
