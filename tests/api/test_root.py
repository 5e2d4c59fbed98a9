"""GET / leads to the interactive documentation, outside the contract."""

from __future__ import annotations

import httpx


async def test_root_redirects_to_docs(client: httpx.AsyncClient) -> None:
    response = await client.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/docs"
