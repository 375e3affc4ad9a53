"""Triggers: other systems' webhooks that fire agent requests (``POST /v1/triggers/{name}``).

``template`` fills a definition's message from the event's data, ``signatures`` checks providers'
signatures, and ``fire`` turns a call into a request.
"""
