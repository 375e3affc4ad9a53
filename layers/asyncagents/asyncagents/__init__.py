"""asyncagents: durable asynchronous processing for AI-agent requests on AWS.

Layers, imports pointing one way: ``functions/*/app.py`` (handlers) → domain (``requests``,
``workflow``, ``auth``, ``lifecycle``; no boto3) → data access (``asyncagents.data``: one class per AWS
resource). ``asyncagents.local`` runs the whole application on moto for development and tests.
"""

# The one source of the version: the package (pyproject reads it), the layer (it ships this file),
# GET /v1/health, the CHANGELOG's newest entry and the template's SemanticVersion (both checked by tests).
__version__ = "0.2.0"
