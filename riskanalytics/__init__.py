"""riskanalytics: close the loop between a risk register and real incidents.

Incidents from paging, alerting, rollback logs and manual reports are matched
against the risks a team predicted in ``risk-register.md``. Predicted risks are
marked Realized, unpredicted ones become new risks, every incident gets a
pre-filled post-incident review, and the register's predictive accuracy is
measured over time.
"""

import logging

from riskanalytics.exceptions import (
    ConfigError,
    InputFormatError,
    RegisterFormatError,
    RiskAnalyticsError,
)

__all__ = [
    "ConfigError",
    "InputFormatError",
    "RegisterFormatError",
    "RiskAnalyticsError",
    "__version__",
]

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
