"""maskgate: an event-driven gateway in front of the hosted SAM3 segmentation model.

The package is the Lambda layer's domain: prompt models, the WaveSpeed client, the job and mask
stores, webhook signing and delivery, and the workflow steps the thin handlers in ``functions/`` call.
Importing it does no work: clients and settings are built on first use (cold start is product).
"""

__version__ = "0.1.0"
