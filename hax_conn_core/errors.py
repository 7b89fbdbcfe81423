"""The error types of hax_conn.

One root for every failure a user can cause or fix (bad model, bad profile, solver trouble,
backend trouble, bad configuration); the CLI turns any of them into one line and exit status 2,
ROS nodes into a log line and a diagnostics entry. Our own bugs raise InternalError, which is
deliberately *not* a HaxConnError: it is not the user's to fix. The CLI's last-resort handler
reports it, like any other unexpected exception, as one line naming the error and where to
report it, with exit status 70; ``HAX_CONN_DEBUG=1`` prints its traceback as well.

A message says what was wrong, what was expected, and where possible what to try.
"""


class HaxConnError(Exception):
    """Root of all user-facing errors."""


class ModelError(HaxConnError):
    """A model description (prototxt, ONNX, graph) is malformed or unsupported."""


class ProfileError(HaxConnError):
    """A profile file is malformed or inconsistent."""


class ScheduleError(HaxConnError):
    """A schedule file is malformed or does not fit its profile."""


class SolverError(HaxConnError):
    """The planner could not produce a schedule."""


class BackendError(HaxConnError):
    """An accelerator runtime failed to build, load or run an engine."""


class ConfigError(HaxConnError):
    """A configuration value, parameter or command-line option is invalid."""


class SetupError(HaxConnError):
    """The environment lacks something hax_conn needs (a package, a tool, a device)."""


class InternalError(Exception):
    """A bug in hax_conn itself: the CLI reports it as an internal error (exit status 70).

    Its traceback is printed only with ``HAX_CONN_DEBUG=1``.
    """


class FrameError(HaxConnError):
    """One input frame is unusable (wrong shape, dtype or encoding); only its DNN's result in
    that frame-set fails."""
