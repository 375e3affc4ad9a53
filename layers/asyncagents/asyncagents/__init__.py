"""asyncagents: durable asynchronous processing for AI-agent requests on AWS.

Layers, imports pointing one way: ``functions/*/app.py`` (handlers) → domain (``requests``,
``workflow``, ``auth``, ``lifecycle``; no boto3) → data access (``asyncagents.data``: one class per AWS
resource). ``asyncagents.local`` runs the whole application on moto for development and tests.
"""

__version__ = "0.1.0"
