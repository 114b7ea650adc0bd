"""Spec files → validated, typed desired state, with ``file:line:col`` errors.

This package reads YAML and nothing else: it does not resolve secrets, read the clock or
talk to a backend. Its public names are re-exported here; other packages never import
its ``_modules``.
"""

from controller.spec._access import RESERVED, SecretAccess
from controller.spec._catalog import Catalog, SpecObject, build_catalog
from controller.spec._errors import SpecError
from controller.spec._loading import (
    DirectoryResult,
    FileResult,
    ParsedFiles,
    load_directory,
    load_file,
    load_paths,
)
from controller.spec._models import (
    API_VERSION,
    BATCH_TASK_LIMIT,
    Metadata,
    NodeCounts,
    NodeImage,
    PoolDocument,
    PoolSpec,
    Registry,
    RestartBackoff,
    RestartPolicy,
    Rollout,
    SecretRef,
    SimulationDocument,
    SimulationSpec,
)
from controller.spec._policy import (
    DEFAULT_ALLOWED_RUN_OPTIONS,
    PolicyError,
    RunOptionsPolicy,
    policy_errors,
    run_options_errors,
)
from controller.spec._references import image_reference_problem, registry_of
from controller.spec._schema import json_schema
from controller.spec._values import (
    AUTO,
    Auto,
    Percent,
    format_duration,
    parse_duration,
    parse_int_or_percent,
)

__all__ = [
    "API_VERSION",
    "AUTO",
    "BATCH_TASK_LIMIT",
    "DEFAULT_ALLOWED_RUN_OPTIONS",
    "RESERVED",
    "Auto",
    "Catalog",
    "DirectoryResult",
    "FileResult",
    "Metadata",
    "NodeCounts",
    "NodeImage",
    "ParsedFiles",
    "Percent",
    "PolicyError",
    "PoolDocument",
    "PoolSpec",
    "Registry",
    "RestartBackoff",
    "RestartPolicy",
    "Rollout",
    "RunOptionsPolicy",
    "SecretAccess",
    "SecretRef",
    "SimulationDocument",
    "SimulationSpec",
    "SpecError",
    "SpecObject",
    "build_catalog",
    "format_duration",
    "image_reference_problem",
    "json_schema",
    "load_directory",
    "load_file",
    "load_paths",
    "parse_duration",
    "parse_int_or_percent",
    "policy_errors",
    "registry_of",
    "run_options_errors",
]
