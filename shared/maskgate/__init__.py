"""maskgate: an event-driven gateway in front of the hosted SAM3 segmentation model.

The package is the Lambda layer's domain: ``steps`` holds one module per function in ``functions/``
(each handler makes one call into it); ``contracts`` the boundary models; ``stores`` DynamoDB and S3;
``wavespeed``, ``webhooks``, ``workflow`` and ``egress`` the outside services; ``api`` the HTTP API.
Importing it does no work: clients and settings are built on first use (cold start is product).
"""

__version__ = "0.1.0"
