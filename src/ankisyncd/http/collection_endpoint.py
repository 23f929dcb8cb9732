"""``POST /sync/<method>``: login, collection sync and full sync."""

from __future__ import annotations

from starlette.responses import Response

from ankisyncd.http.address import printable
from ankisyncd.http.endpoint import Endpoint, Method, Seen
from ankisyncd.http.framing import Incoming
from ankisyncd.http.replies import file_reply, reply, reply_encoded
from ankisyncd.protocol.messages import (
    HostKeyRequest,
    MetaRequest,
    check_empty_input,
    encode_null,
    encode_plain,
)
from ankisyncd.protocol.methods import SyncMethod
from ankisyncd.protocol.normal import (
    StartRequest,
    UnchunkedChanges,
    parse_apply_chunk,
    parse_apply_graves,
    parse_sanity_check,
)


class SyncEndpoint(Endpoint):
    """``POST /sync/<method>``: login, collection sync and full sync."""

    def method(self, name: str) -> Method | None:
        return _SYNC_METHODS.get(name)

    async def dispatch(self, method: Method, incoming: Incoming, seen: Seen) -> Response:
        version = incoming.version
        if method is SyncMethod.HOST_KEY:
            login = await self.body(incoming, method, HostKeyRequest.from_wire)
            seen.user = printable(login.username)
            answer = await self.server.host_key(login, seen.address, seen.client)
            return await reply(answer.to_wire(), version)
        user = await self.user(incoming.host_key, seen)
        col, skey = self.server.collection, incoming.session_key
        if method is SyncMethod.UPLOAD:
            cap = self.server.max_decompressed_bytes
            text = await col.upload(user, incoming.stream(cap))
            return await reply(text.encode(), version)
        if method is SyncMethod.META:
            req = await self.body(incoming, method, MetaRequest.from_wire)
            return await reply((await self.server.meta(user, req)).to_wire(), version)
        if method is SyncMethod.START:
            start = await self.body(incoming, method, StartRequest.from_wire)
            graves = await col.start(user, skey, start)
            return await reply_encoded(lambda: encode_plain(graves.to_json()), version)
        if method is SyncMethod.APPLY_GRAVES:
            await col.apply_graves(
                user, skey, await self.body(incoming, method, parse_apply_graves)
            )
            return await reply(encode_null(), version)
        if method is SyncMethod.APPLY_CHANGES:
            theirs = await self.body(incoming, method, UnchunkedChanges.from_wire)
            ours = await col.apply_changes(user, skey, theirs)
            return await reply_encoded(ours.to_wire, version)
        if method is SyncMethod.APPLY_CHUNK:
            await col.apply_chunk(user, skey, await self.body(incoming, method, parse_apply_chunk))
            return await reply(encode_null(), version)
        if method is SyncMethod.SANITY_CHECK:
            counts = await self.body(incoming, method, parse_sanity_check)
            return await reply((await col.sanity_check(user, skey, counts)).to_wire(), version)
        await self.body(incoming, method, check_empty_input)
        if method is SyncMethod.ABORT:
            await col.abort(user)
            return await reply(encode_null(), version)
        if method is SyncMethod.DOWNLOAD:
            fh, size = await col.download(user, version)
            return file_reply(fh, size, version)
        if method is SyncMethod.CHUNK:
            chunk = await col.chunk(user, skey)
            return await reply_encoded(chunk.to_wire, version)
        return await reply(encode_plain(await col.finish(user, skey)), version)  # finish


_SYNC_METHODS: dict[str, Method] = {m.value: m for m in SyncMethod}
