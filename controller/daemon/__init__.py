"""The long-running controller: file watching, the control loop, HTTP status and metrics."""

from controller.daemon._document import status_document
from controller.daemon._keys import RevisionKeyError, revision_key
from controller.daemon._logging import REDACTOR, configure
from controller.daemon._loop import Controller, DaemonConfig, utc_now
from controller.daemon._revision import git_revision

__all__ = [
    "REDACTOR",
    "Controller",
    "DaemonConfig",
    "RevisionKeyError",
    "configure",
    "git_revision",
    "revision_key",
    "status_document",
    "utc_now",
]
