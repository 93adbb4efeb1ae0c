"""Akeneo's Event Platform management API, as the App uses it: a subscriber per PIM, one https
subscription. Every call goes through the App's HTTP layer (time-outs, size caps, retries of
idempotent calls, no redirects), with the App's token for that PIM.

Endpoints (https://event.prd.sdk.akeneo.cloud/api/v1, headers X-PIM-URL, X-PIM-TOKEN and
X-PIM-CLIENT-ID): `/subscribers`, `/subscribers/{id}`, `/subscribers/{id}/subscriptions` and
`/subscribers/{id}/subscriptions/{id}`; GET lists, POST creates, PATCH changes, DELETE deletes.
A list may come as a JSON array or as an object holding it (`items`, `data`): both are read.
"""

from __future__ import annotations

from typing import Any

from ..akeneo import AkeneoClient
from ..errors import PimError

#: what the copy of a catalog needs to hear of
EVENTS = (
    "com.akeneo.pim.v1.product.created",
    "com.akeneo.pim.v1.product.updated",
    "com.akeneo.pim.v1.product.deleted",
    "com.akeneo.pim.v1.app.deleted",
)
MAX_SUBSCRIBERS = 20  # per PIM (the platform's limit): the App never makes a second one


class EventPlatform:
    """The management API for one PIM, with the App's token there."""

    def __init__(self, client: AkeneoClient, platform_url: str, pim_url: str, token: str) -> None:
        self.client, self.platform_url, self.pim_url = client, platform_url, pim_url
        self._headers = {
            "X-PIM-URL": pim_url,
            "X-PIM-TOKEN": token,
            "X-PIM-CLIENT-ID": client.client_id or "",
        }

    def subscribers(self) -> list[dict[str, Any]]:
        return _listed(self._call("GET", "/subscribers"))

    def create_subscriber(self, body: dict[str, Any]) -> dict[str, Any]:
        return _object(self._call("POST", "/subscribers", json=body))

    def update_subscriber(self, subscriber_id: str, body: dict[str, Any]) -> None:
        self._call("PATCH", f"/subscribers/{subscriber_id}", json=body)

    def delete_subscriber(self, subscriber_id: str) -> None:
        self._call("DELETE", f"/subscribers/{subscriber_id}")

    def subscriptions(self, subscriber_id: str) -> list[dict[str, Any]]:
        return _listed(self._call("GET", f"/subscribers/{subscriber_id}/subscriptions"))

    def create_subscription(self, subscriber_id: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/subscribers/{subscriber_id}/subscriptions"
        return _object(self._call("POST", path, json=body))

    def subscription(self, subscriber_id: str, subscription_id: str) -> dict[str, Any]:
        path = f"/subscribers/{subscriber_id}/subscriptions/{subscription_id}"
        return _object(self._call("GET", path))

    def update_subscription(
        self, subscriber_id: str, subscription_id: str, body: dict[str, Any]
    ) -> None:
        path = f"/subscribers/{subscriber_id}/subscriptions/{subscription_id}"
        self._call("PATCH", path, json=body)

    def delete_subscription(self, subscriber_id: str, subscription_id: str) -> None:
        self._call("DELETE", f"/subscribers/{subscriber_id}/subscriptions/{subscription_id}")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.send(
            method,
            self.platform_url,
            path,
            what=f"Event Platform call {method} {path.split('/')[1]}",
            headers=self._headers,
            **kwargs,
        )
        return response.json("Event Platform answer") if response.body else None


def _listed(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict):
        body = body.get("items", body.get("data"))
    if not isinstance(body, list):
        raise PimError("The Event Platform's answer is not a list.")
    return [item for item in body if isinstance(item, dict)]


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise PimError("The Event Platform's answer has no id.")
    return body
