"""Process-wide test settings, applied before any maskgate module is imported.

Powertools reads its service name and metrics namespace when ``maskgate.observability`` is imported,
as a Lambda container would from the template's environment.
"""

import os

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "maskgate")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "maskgate")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
