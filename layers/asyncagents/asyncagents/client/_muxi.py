"""MUXI's way to build a client (seed 000's ``FormationClient(server_url=..., formation_id=..., client_key=...)``)."""

from __future__ import annotations

import httpx

from asyncagents.client._sync import Client


class FormationClient(Client):
    """``Client`` built the way MUXI's SDK is (seed 000): ``server_url`` and ``formation_id`` (MUXI's
    ``/api/<formation id>/v1`` path), or ``url``/``base_url``. The seeds' examples run with it unchanged."""

    def __init__(
        self,
        server_url: str | None = None,
        formation_id: str | None = None,
        client_key: str | None = None,
        admin_key: str | None = None,
        *,
        url: str | None = None,
        base_url: str | None = None,
        mode: str = "live",
        user_id: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        api_url = base_url or url
        if api_url is None and server_url and formation_id:
            api_url = f"{server_url.rstrip('/')}/{'draft' if mode == 'draft' else 'api'}/{formation_id}"
        super().__init__(
            api_url or server_url,
            client_key=client_key,
            admin_key=admin_key,
            user_id=user_id,
            timeout=timeout,
            transport=transport,
        )
