"""``/msync/<method>``: media sync, JSON answers in the media envelope, downloads as zips."""

from __future__ import annotations

from starlette.datastructures import QueryParams
from starlette.responses import PlainTextResponse, Response
from starlette.types import Scope

from ankisyncd.errors import BadRequest
from ankisyncd.http.address import printable
from ankisyncd.http.endpoint import Endpoint, Method, Seen
from ankisyncd.http.framing import Incoming
from ankisyncd.http.replies import reply
from ankisyncd.protocol.media import (
    envelope,
    parse_begin,
    parse_download_files,
    parse_media_changes,
    parse_media_sanity,
)
from ankisyncd.protocol.methods import MediaSyncMethod
from ankisyncd.protocol.versions import LEGACY_WIRE_VERSION

_MEDIA_METHODS: dict[str, Method] = {m.value: m for m in MediaSyncMethod}


class MediaEndpoint(Endpoint):
    """``/msync/<method>``: JSON answers in the media envelope, downloads as raw zips."""

    prefix = "msync/"

    def method(self, name: str) -> Method | None:
        return _MEDIA_METHODS.get(name)

    async def early(self, scope: Scope, method: Method, seen: Seen) -> Response | None:
        if scope["method"] != "GET":
            return None
        if method is not MediaSyncMethod.BEGIN:
            return PlainTextResponse("405", status_code=405)
        # GET /msync/begin?k=<hkey>&v=<version>, as desktop 2.1.22 to 2.1.56 send it.
        query = QueryParams(scope["query_string"])
        key, version = query.get("k"), query.get("v")
        if not key or not version:
            raise BadRequest("begin needs k and v")
        seen.client = printable(version)
        usn = await self.server.media.usn(await self.user(key, seen))
        return await reply(envelope({"usn": usn, "sk": key}), LEGACY_WIRE_VERSION)

    async def dispatch(self, method: Method, incoming: Incoming, seen: Seen) -> Response:
        user = await self.user(incoming.host_key, seen)
        media, version = self.server.media, incoming.version
        if method is MediaSyncMethod.UPLOAD_CHANGES:
            stream = incoming.stream(self.server.max_decompressed_bytes)
            processed, usn = await media.upload(user, stream)
            return await reply(envelope([processed, usn]), version)
        if method is MediaSyncMethod.BEGIN:
            if incoming.legacy and incoming.client_version:
                await incoming.read(self._size(method))  # the version came in the form
            else:
                await self.body(incoming, method, parse_begin)
            usn = await media.usn(user)
            return await reply(envelope({"usn": usn, "sk": incoming.host_key}), version)
        if method is MediaSyncMethod.MEDIA_CHANGES:
            last_usn = await self.body(incoming, method, parse_media_changes)
            return await reply(envelope(await media.changes(user, last_usn)), version)
        if method is MediaSyncMethod.DOWNLOAD_FILES:
            names = await self.body(incoming, method, parse_download_files)
            return await reply(await media.download(user, names), version)
        local = await self.body(incoming, method, parse_media_sanity)
        return await reply(envelope(await media.sanity(user, local)), version)
