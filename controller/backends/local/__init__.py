"""The ``local`` backend: simfleet's pools, jobs and simulators, run on this machine.

It emulates Azure Batch's semantics closely enough that a spec tried here behaves the
same on Batch: slots limit how many simulators run, the rest wait; stops are SIGTERM then
SIGKILL; a controller killed outright and started again adopts what still runs. State
lives in ``<state_dir>/local/``. Only this package starts processes and containers:
``process`` runs the command, ``docker`` runs the image with the local Docker Engine.
"""

from controller.backends.local._backend import LocalBackend
from controller.backends.local._docker import DockerRuntime
from controller.backends.local._fleet import check as check_fleet
from controller.backends.local._lease import LocalLease
from controller.backends.local._processes import ProcessRuntime

__all__ = ["DockerRuntime", "LocalBackend", "LocalLease", "ProcessRuntime", "check_fleet"]
