"""Webhooks: what we send (signed payloads), how receivers check them, and where we may send them.

Receivers use ``verify_signature`` and ``parse``::

    from asyncagents import webhooks

    if not webhooks.verify_signature(body, headers["X-Muxi-Signature"], secret):
        return 401
    event = webhooks.parse(body)
"""

from asyncagents.domain.webhooks.signing import SIGNATURE_HEADER, parse, sign, verify_signature

__all__ = ["SIGNATURE_HEADER", "parse", "sign", "verify_signature"]
