"""Azure Batch through the official ``azure-batch`` SDK (``azure.batch.aio``).

The SDK is imported here and nowhere else in simfleet (an import-linter contract).
"""

from controller.backends.azure._backend import AzureBackend
from controller.backends.azure._client import AzureSettings
from controller.backends.azure._lease import AzureLease, lease_job_id

__all__ = ["AzureBackend", "AzureLease", "AzureSettings", "lease_job_id"]
