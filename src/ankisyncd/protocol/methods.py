"""The endpoints; each enum value is the URL segment, spelled as clients send it."""

from __future__ import annotations

from enum import Enum


class SyncMethod(str, Enum):
    HOST_KEY = "hostKey"
    META = "meta"
    START = "start"
    APPLY_GRAVES = "applyGraves"
    APPLY_CHANGES = "applyChanges"
    CHUNK = "chunk"
    APPLY_CHUNK = "applyChunk"
    SANITY_CHECK = "sanityCheck2"
    FINISH = "finish"
    ABORT = "abort"
    UPLOAD = "upload"
    DOWNLOAD = "download"


class MediaSyncMethod(str, Enum):
    BEGIN = "begin"
    MEDIA_CHANGES = "mediaChanges"
    UPLOAD_CHANGES = "uploadChanges"
    DOWNLOAD_FILES = "downloadFiles"
    MEDIA_SANITY = "mediaSanity"
