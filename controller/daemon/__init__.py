"""The long-running controller: file watching, the control loop, HTTP status and metrics."""

from controller.daemon._connections import HttpLimits
from controller.daemon._document import status_document
from controller.daemon._keys import RevisionKeyError, revision_key
from controller.daemon._leadership import Leadership
from controller.daemon._listening import ListenError, bind, is_loopback, shown
from controller.daemon._logging import REDACTOR, configure
from controller.daemon._loop import Controller, DaemonConfig, origin
from controller.daemon._revision import git_revision
from controller.reconcile import utc_now

__all__ = [
    "REDACTOR",
    "Controller",
    "DaemonConfig",
    "HttpLimits",
    "Leadership",
    "ListenError",
    "RevisionKeyError",
    "bind",
    "configure",
    "git_revision",
    "is_loopback",
    "origin",
    "revision_key",
    "shown",
    "status_document",
    "utc_now",
]
