"""The images of mapped products (their `uri` targets): the PIM's media files, which need the
App's token, fetched for the browser by a route that is no open proxy."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from ..api import PimApi
from ..errors import AppError, PimError

MEDIA_PREFIX = "/api/rest/v1/media-files/"
MAX_MEDIA_BYTES = 10 * 1024 * 1024
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def fetch_media(api: PimApi, url: str) -> tuple[bytes, str]:
    """An image of this PIM's media files (the `uri` targets), with the App's token.

    Only this PIM's `/api/rest/v1/media-files/…/download` URLs, images only, 10 MB at most:
    the route that serves them is no open proxy.
    """
    path = media_path(url, api.pim_url)
    response = api.send("GET", path, headers={"Accept": "image/*"}, max_bytes=MAX_MEDIA_BYTES)
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type not in IMAGE_TYPES:
        raise PimError("The PIM's media file is not an image.", pim_url=api.pim_url)
    return response.body, content_type


def media_path(url: str, pim_url: str) -> str:
    """The API path of a media file of `pim_url` (`/api/rest/v1/media-files/<code>/download`),
    checked as it will be sent (after percent-decoding, as requests sends it); MediaRefused for
    any other URL."""
    if not url.startswith(pim_url + MEDIA_PREFIX) or any(c in url for c in "?#\\"):
        raise MediaRefused("This is not a media file of the connected PIM.")
    path = urlsplit(url).path
    segments = [unquote(segment) for segment in path.removeprefix(MEDIA_PREFIX).split("/")]
    # a media code holds slashes (1/2/3/abc_image.png), never an empty, `.` or `..` segment
    if (
        segments[-1] != "download"
        or len(segments) < 2
        or any(s in ("", ".", "..") or "/" in s or "\\" in s for s in segments)
        or url != pim_url + path
    ):
        raise MediaRefused("This is not a media file of the connected PIM.")
    return path


class MediaRefused(AppError):
    """A media URL that is not the connected PIM's."""

    status = 404
    title = "No such image"
