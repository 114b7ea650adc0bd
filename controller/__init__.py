"""simfleet: a reconciliation controller for fleets of simulators on Azure Batch."""

__version__ = "0.1.0"
__all__ = ["__version__"]
