"""Which controller environment variables a spec's ``fromEnv`` may read.

In a GitOps setup anyone who can merge a spec can name any variable in ``secretEnv``; the
value then reaches their simulator (and, on Azure, the task's environment settings). So
the variables the controller uses for itself can never be read: the Azure credentials
and everything ``azure-identity`` reads, the controller's own ``SIMFLEET_*`` options,
the Docker CLI's configuration, and every variable a Pool names in ``passwordFromEnv``
(a registry password is for the pool's nodes, not for a simulator to print). The operator
may narrow further with an allow-list of glob patterns (``--allow-secret-env 'SIM_*'``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

#: Variables the controller reads for itself, as glob patterns. azure-identity reads
#: AZURE_* (client, tenant, secret, certificate, username/password, federated token,
#: authority) and the managed-identity endpoints IDENTITY_*, MSI_* and IMDS_*.
RESERVED: Final = (
    "AZURE_*",
    "IDENTITY_*",
    "MSI_*",
    "IMDS_*",
    "SIMFLEET_*",
    "DOCKER_*",
)


@dataclass(frozen=True)
class SecretAccess:
    """The operator's rule for ``fromEnv``.

    Attributes:
        allow: glob patterns of readable variables; empty means "any not reserved".
        reserved: variable names that are never readable besides :data:`RESERVED`
            (the pools' ``passwordFromEnv`` variables).
    """

    allow: tuple[str, ...] = ()
    reserved: frozenset[str] = frozenset()

    def refusal(self, variable: str) -> str | None:
        """Why ``variable`` may not be read, or None when it may."""
        if variable in self.reserved or any(
            fnmatch.fnmatchcase(variable, pattern) for pattern in RESERVED
        ):
            return (
                f"{variable} is one of the controller's own variables (its credentials"
                " or settings) and can never be read by a spec"
            )
        if self.allow and not any(fnmatch.fnmatchcase(variable, p) for p in self.allow):
            return (
                f"{variable} is not allowed by the operator (--allow-secret-env "
                + " ".join(self.allow)
                + ")"
            )
        return None

    def with_reserved(self, names: Collection[str]) -> SecretAccess:
        """The same rule, with ``names`` reserved as well."""
        return SecretAccess(self.allow, self.reserved | frozenset(names))
