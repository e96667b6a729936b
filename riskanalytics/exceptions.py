"""The exceptions riskanalytics raises.

::

    RiskAnalyticsError            base of everything raised on purpose
    ├── ConfigError               config.yaml is missing, unreadable or invalid
    ├── InputFormatError          an incident file cannot be read or understood
    ├── RegisterFormatError       risk-register.md has no usable risk table
    └── RegisterConflictError     the register changed on disk during an update

Every message names the file and, where known, the line, record or key, what
was expected and what was found. The CLI turns all of them into exit code 2.
"""

__all__ = [
    "ConfigError",
    "InputFormatError",
    "RegisterConflictError",
    "RegisterFormatError",
    "RiskAnalyticsError",
]


class RiskAnalyticsError(Exception):
    """Base of every error riskanalytics raises on purpose."""


class ConfigError(RiskAnalyticsError):
    """The configuration is missing, unreadable or invalid.

    ``problems`` holds one ``(key, message)`` pair per problem found, so that
    every wrong key is reported at once.
    """

    def __init__(self, path, problems):
        self.path = str(path)
        self.problems = list(problems)
        lines = [f"{self.path}: {len(self.problems)} problem(s) in configuration"]
        lines += [f"  {key}: {message}" for key, message in self.problems]
        super().__init__("\n".join(lines))


class InputFormatError(RiskAnalyticsError):
    """An incident input file cannot be read or understood."""


class RegisterFormatError(RiskAnalyticsError):
    """The risk register has no usable risk table, or the table is broken."""


class RegisterConflictError(RiskAnalyticsError):
    """The register changed on disk between reading and writing."""
