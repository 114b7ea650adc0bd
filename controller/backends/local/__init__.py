"""The ``local`` backend: simfleet's pools, jobs and simulators, run on this machine.

It emulates Azure Batch's semantics closely enough that a spec tried here behaves the
same on Batch: slots limit how many simulators run, the rest wait; stops are SIGTERM then
SIGKILL; a controller killed outright and started again adopts what still runs. State
lives in ``<state_dir>/local/``. Only this package starts processes.
"""

from controller.backends.local._backend import LocalBackend

__all__ = ["LocalBackend"]
