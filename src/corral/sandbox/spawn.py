"""Children that die with Corral, started without running Python code between fork and exec.

A runtime (or the runc that runs it) must not outlive a Corral that is killed: the kernel
sends it a signal when its parent dies (``PR_SET_PDEATHSIG``). Setting that with
``subprocess``'s ``preexec_fn`` runs Python in the forked child, which Python documents as
unsafe while the parent has threads (the server has: the log store's, ``to_thread``'s): the
child can deadlock on a lock another thread held at the fork. So the setting is made by a
tiny exec wrapper instead, util-linux's ``setpriv --pdeathsig SIG -- COMMAND`` (util-linux is
essential on Debian and Ubuntu): it sets the signal and execs the command, which keeps it.

Where ``setpriv`` is missing the command runs as it is, and Corral says once that its
children would outlive it if it were killed.
"""

from __future__ import annotations

import functools
import logging
import shutil
import signal
from collections.abc import Sequence

__all__ = ["dying_with_parent"]

_log = logging.getLogger("corral.sandbox")


@functools.cache
def _setpriv() -> str | None:
    found = shutil.which("setpriv")
    if found is None:
        _log.warning(
            "setpriv (util-linux) is missing: execution environments would outlive Corral if "
            "it were killed (install util-linux)"
        )
    return found


def dying_with_parent(argv: Sequence[str], sig: signal.Signals) -> list[str]:
    """``argv`` wrapped so the process gets ``sig`` when its parent (Corral) dies."""
    setpriv = _setpriv()
    if setpriv is None:
        return list(argv)
    return [setpriv, "--pdeathsig", sig.name.removeprefix("SIG"), "--", *argv]
