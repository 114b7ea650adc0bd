"""Azure Batch through the official ``azure-batch`` SDK (``azure.batch.aio``), and pools
through Azure Resource Manager with ``azure-mgmt-batch`` when the account's resource id
is configured (``_arm``).

The SDKs are imported here and nowhere else in simfleet (an import-linter contract).
"""

from controller.backends.azure._backend import AzureBackend
from controller.backends.azure._client import AzureSettings
from controller.backends.azure._lease import AzureLease, lease_job_id

__all__ = ["AzureBackend", "AzureLease", "AzureSettings", "lease_job_id"]
