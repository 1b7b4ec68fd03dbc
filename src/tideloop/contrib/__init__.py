"""Optional integrations; each needs its library (installed with tideloop's extra of that name,
``pip install tideloop[opentelemetry]`` or ``tideloop[prometheus]``) and tideloop needs none.

- ``tideloop.contrib.opentelemetry``: a loop's metrics as OpenTelemetry observable instruments.
- ``tideloop.contrib.prometheus``: a ``prometheus_client`` collector of a loop's metrics.
"""
