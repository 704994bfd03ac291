"""KYC documents: checked by content, stripped of metadata, encrypted with a key of their own.

Rules (each a 4xx ``DocumentError`` that stores nothing):

1. A document is one of ``KINDS`` and at most ``DOCUMENT_BYTES_MAX`` bytes, and not empty.
2. Its type is what its bytes are (JPEG, PNG or PDF by their magic numbers), never what the
   client claims: a declared ``Content-Type`` that disagrees with the bytes is refused (415).
3. Images are decoded by Pillow (at most ``IMAGE_PIXELS_MAX`` pixels: no decompression bombs)
   and re-encoded from their pixels alone, so EXIF (GPS position, camera serial, timestamps)
   and every other metadata block is gone; an image Pillow cannot decode is refused.
4. A file name is kept only as a label: a bare name of at most ``FILE_NAME_CHARS_MAX``
   printable characters, no path separators, no ``..``, no NUL (path tricks are refused, and
   nothing is ever written under a client-given name).
5. At rest a document is AES-256-GCM ciphertext under a fresh random key per file, the file's
   id as associated data; the key is stored wrapped by the server key (``MultiFernet``, which
   rotates). Only reviewers read documents back (``open_document``).
"""

import hashlib
import io
import secrets
from dataclasses import dataclass
from typing import Final

from cryptography.fernet import MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from PIL import Image, UnidentifiedImageError

__all__ = [
    "DOCUMENT_BYTES_MAX",
    "KINDS",
    "DocumentError",
    "Sealed",
    "checked_name",
    "open_document",
    "prepare",
    "seal",
    "sniff",
]

DOCUMENT_BYTES_MAX: Final = 5 * 1024 * 1024
IMAGE_PIXELS_MAX: Final = 40_000_000
FILE_NAME_CHARS_MAX: Final = 100
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
KINDS: Final = (
    "id_front",
    "id_back",
    "selfie",
    "proof_of_address",
    "source_of_funds",
    "incorporation",
)
_MAGIC: Final = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)
_PIL_FORMATS: Final = {"image/jpeg": "JPEG", "image/png": "PNG"}


class DocumentError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def sniff(data: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return None


def checked_name(name: str) -> str:
    label = name.strip()
    if (
        not label
        or len(label) > FILE_NAME_CHARS_MAX
        or any(c in label for c in "/\\\0")
        or ".." in label
        or not label.isprintable()
    ):
        raise DocumentError(400, "Invalid file name: a bare name, no path")
    return label


def _stripped(data: bytes, content_type: str) -> bytes:
    Image.MAX_IMAGE_PIXELS = IMAGE_PIXELS_MAX
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > IMAGE_PIXELS_MAX:
                raise DocumentError(413, "Image too large")
            image.load()
            fmt = _PIL_FORMATS[content_type]
            keep = ("RGB", "L") if fmt == "JPEG" else ("RGB", "RGBA", "L", "LA")
            pixels = (
                image if image.mode in keep else image.convert(keep[0] if fmt == "JPEG" else "RGBA")
            )
            # a new image from the pixels alone: no EXIF, ICC, XMP or text chunks survive
            clean = Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())
            out = io.BytesIO()
            if fmt == "JPEG":
                clean.save(out, format=fmt, quality=92)
            else:
                clean.save(out, format=fmt)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DocumentError(400, f"Invalid image: {type(error).__name__}") from None
    except Image.DecompressionBombError:
        raise DocumentError(413, "Image too large") from None


def prepare(kind: str, data: bytes, declared_type: str, file_name: str) -> tuple[bytes, str, str]:
    """(clean bytes, content type, file name label) of an upload, or ``DocumentError``."""
    if kind not in KINDS:
        raise DocumentError(400, f"Invalid document kind: one of {', '.join(KINDS)}")
    if not data:
        raise DocumentError(400, "Empty document")
    if len(data) > DOCUMENT_BYTES_MAX:
        raise DocumentError(413, f"Document larger than {DOCUMENT_BYTES_MAX} bytes")
    label = checked_name(file_name)
    actual = sniff(data)
    if actual is None:
        raise DocumentError(415, "Unsupported document type: JPEG, PNG or PDF")
    declared = declared_type.split(";", 1)[0].strip().lower()
    if declared and declared != "application/octet-stream" and declared != actual:
        raise DocumentError(415, f"Content-Type {declared} does not match the content ({actual})")
    if actual in _PIL_FORMATS:
        data = _stripped(data, actual)
    return data, actual, label


@dataclass(frozen=True, slots=True)
class Sealed:
    doc_id: str
    ciphertext: bytes  # nonce + AES-GCM ciphertext
    wrapped_key: bytes  # the file key under the server key
    sha256: str  # of the clean plaintext (duplicate detection)


def seal(data: bytes, server_key: MultiFernet) -> Sealed:
    doc_id = secrets.token_hex(16)
    key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = nonce + AESGCM(key).encrypt(nonce, data, doc_id.encode())
    return Sealed(doc_id, ciphertext, server_key.encrypt(key), hashlib.sha256(data).hexdigest())


def open_document(
    doc_id: str, ciphertext: bytes, wrapped_key: bytes, server_key: MultiFernet
) -> bytes:
    key = server_key.decrypt(wrapped_key)
    nonce, body = ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:]
    return AESGCM(key).decrypt(nonce, body, doc_id.encode())
