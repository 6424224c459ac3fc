"""What an uploaded image file may be, decided from its header before any voxel is read.

Only single-file formats are accepted: NRRD with its data attached (``.nrrd``), NIfTI-1/2 as one file
(``.nii``, ``.nii.gz``), MetaImage with ``ElementDataFile = LOCAL`` (``.mha``, ``.mhd``). Any header that
points at another file (a detached NRRD ``data file``, a MetaImage data file, a NIfTI ``.hdr``/``.img``
pair) is refused: on a server such a pointer reads files of the server, not of the user.

The size the header declares (voxels x components x bytes) and the size once decoded as float32 must
fit the server's memory budget; a ``.nii.gz`` is unpacked as a stream and refused as soon as it holds
more than its header declares, so a small file cannot unpack into gigabytes.

>>> check_upload(Path("case.nrrd"), budget_bytes=2**30)  # doctest: +SKIP
UploadHeader(size_ijk=(512, 512, 120), components=1, bytes_per_component=2)
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from BreastSubtypeLib.errors import BadInputError

UPLOAD_SUFFIXES = (".nrrd", ".nii", ".nii.gz", ".mha", ".mhd")
MAX_TEXT_HEADER_BYTES = 64 * 1024
DECODED_BYTES_PER_VOXEL = 4  # the pipeline works on float32
_STREAM_CHUNK = 1 << 20

_NRRD_TYPES = {
    **dict.fromkeys(("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"), 1),
    **dict.fromkeys(("short", "short int", "signed short", "signed short int", "int16", "int16_t"), 2),
    **dict.fromkeys(("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"), 2),
    **dict.fromkeys(
        ("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t"), 4
    ),
    **dict.fromkeys(("longlong", "long long", "long long int", "signed long long", "int64", "int64_t"), 8),
    **dict.fromkeys(("ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"), 8),
    "float": 4,
    "double": 8,
}
_NRRD_ENCODINGS = {"raw", "gzip", "gz"}
_META_TYPES = {
    "MET_CHAR": 1,
    "MET_UCHAR": 1,
    "MET_SHORT": 2,
    "MET_USHORT": 2,
    "MET_INT": 4,
    "MET_UINT": 4,
    "MET_LONG": 4,
    "MET_ULONG": 4,
    "MET_LONG_LONG": 8,
    "MET_ULONG_LONG": 8,
    "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
}


@dataclass(frozen=True)
class UploadHeader:
    size_ijk: tuple[int, ...]
    components: int
    bytes_per_component: int

    @property
    def voxels(self) -> int:
        return math.prod(self.size_ijk)

    @property
    def stored_bytes(self) -> int:
        return self.voxels * self.components * self.bytes_per_component

    @property
    def decoded_bytes(self) -> int:
        return self.voxels * self.components * max(self.bytes_per_component, DECODED_BYTES_PER_VOXEL)


def upload_suffix(name: str) -> str:
    """The accepted format suffix of a file name, or a one-line refusal naming the file."""
    lower = name.lower()
    for suffix in sorted(UPLOAD_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return suffix
    raise BadInputError(f"Upload one image file ({', '.join(UPLOAD_SUFFIXES)}); this one is not: {name}")


def check_upload(path: Path, budget_bytes: int) -> UploadHeader:
    """The header of an uploaded file, refused (one line naming the file) if unsafe or over budget."""
    suffix = upload_suffix(path.name)
    reader = {".nrrd": _nrrd_header, ".mha": _meta_header, ".mhd": _meta_header}.get(suffix, _nifti_header)
    header = reader(path)
    if any(extent < 1 for extent in header.size_ijk):
        raise BadInputError(f"The header of {path.name} declares an empty image {header.size_ijk}.")
    budget_mb = budget_bytes / 2**20
    if header.decoded_bytes > budget_bytes:
        raise BadInputError(
            f"{path.name} declares {header.voxels:,} voxels ({header.decoded_bytes / 2**20:,.0f} MB once "
            f"decoded), over this server's {budget_mb:,.0f} MB memory budget for one image."
        )
    return header


def _text_header(path: Path, *, ends_at_blank_line: bool) -> list[str]:
    """The first lines of a text header (NRRD ends at a blank line; MetaImage at ElementDataFile)."""
    with path.open("rb") as stream:
        head = stream.read(MAX_TEXT_HEADER_BYTES)
    if ends_at_blank_line:
        end = head.find(b"\n\n")
        if end < 0 and len(head) == MAX_TEXT_HEADER_BYTES:
            raise BadInputError(f"The header of {path.name} is longer than {MAX_TEXT_HEADER_BYTES} bytes.")
        head = head[: end if end >= 0 else len(head)]
    return head.decode("latin-1").splitlines()


def _positive_ints(values: list[str], path: Path, field: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(v) for v in values)
    except ValueError:
        raise BadInputError(
            f"The header of {path.name} has an unreadable {field}: {' '.join(values)}"
        ) from None
    if not numbers or any(n < 0 for n in numbers):
        raise BadInputError(f"The header of {path.name} has an invalid {field}: {' '.join(values)}")
    return numbers


def _nrrd_header(path: Path) -> UploadHeader:
    lines = _text_header(path, ends_at_blank_line=True)
    if not lines or not lines[0].startswith("NRRD000"):
        raise BadInputError(f"{path.name} is not a NRRD file (no NRRD magic line).")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if line.startswith("#") or ":=" in line or ":" not in line:
            continue  # comments and key/value pairs carry no data pointer
        key, value = line.split(":", 1)
        fields[key.strip().lower()] = value.strip()
    if "data file" in fields or "datafile" in fields:
        raise BadInputError(
            f"{path.name} is a detached NRRD header pointing at another file; upload the .nrrd with its data attached."
        )
    encoding = fields.get("encoding", "").lower()
    if encoding not in _NRRD_ENCODINGS:
        raise BadInputError(f"{path.name} uses NRRD encoding '{encoding}'; raw or gzip are accepted.")
    bytes_per = _NRRD_TYPES.get(fields.get("type", "").lower())
    if bytes_per is None:
        raise BadInputError(f"{path.name} has an unknown NRRD type '{fields.get('type', '')}'.")
    sizes = _positive_ints(fields.get("sizes", "").split(), path, "sizes")
    kinds = fields.get("kinds", "").lower().split()
    if len(sizes) == 4 and kinds and kinds[0] not in ("domain", "space"):
        return UploadHeader(sizes[1:], sizes[0], bytes_per)  # a leading vector/RGB axis holds components
    return UploadHeader(sizes, 1, bytes_per)


def _meta_header(path: Path) -> UploadHeader:
    fields: dict[str, str] = {}
    for line in _text_header(path, ends_at_blank_line=False):
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        fields[key.strip().lower()] = value.strip()
        if key.strip().lower() == "elementdatafile":
            break  # the last header field: the data follow
    data_file = fields.get("elementdatafile")
    if data_file is None:
        raise BadInputError(f"{path.name} is not a MetaImage header (no ElementDataFile).")
    if data_file.upper() != "LOCAL":
        raise BadInputError(
            f"{path.name} points at another file for its voxels (ElementDataFile = {data_file}); "
            "upload one .mha (or .mhd with ElementDataFile = LOCAL)."
        )
    bytes_per = _META_TYPES.get(fields.get("elementtype", "").upper())
    if bytes_per is None:
        raise BadInputError(
            f"{path.name} has an unknown MetaImage ElementType '{fields.get('elementtype', '')}'."
        )
    size = _positive_ints(fields.get("dimsize", "").split(), path, "DimSize")
    channels = _positive_ints(
        fields.get("elementnumberofchannels", "1").split(), path, "ElementNumberOfChannels"
    )
    return UploadHeader(size, channels[0], bytes_per)


def _nifti_header(path: Path) -> UploadHeader:
    compressed = path.name.lower().endswith(".gz")
    try:
        with gzip.open(path, "rb") if compressed else path.open("rb") as stream:
            head = stream.read(540)
    except (OSError, EOFError, zlib.error):
        raise BadInputError(f"{path.name} is not a readable gzip file.") from None
    header, data_end_bytes = _parse_nifti(head, path)
    if compressed:
        _check_unpacked_size(path, data_end_bytes, "NIfTI")
    return header


def _parse_nifti(head: bytes, path: Path) -> tuple[UploadHeader, int]:
    """The NIfTI-1 or NIfTI-2 header (either byte order) and the bytes its single file holds."""
    for endian in "<>":
        sizeof_hdr = struct.unpack(endian + "i", head[:4])[0] if len(head) >= 4 else 0
        if sizeof_hdr == 348 and len(head) >= 348:
            magic, dims = head[344:348], struct.unpack(endian + "8h", head[40:56])
            bitpix = struct.unpack(endian + "h", head[72:74])[0]
            vox_offset = int(struct.unpack(endian + "f", head[108:112])[0])
            break
        if sizeof_hdr == 540 and len(head) >= 540:
            magic, dims = head[4:8], struct.unpack(endian + "8q", head[16:80])
            bitpix = struct.unpack(endian + "h", head[14:16])[0]
            vox_offset = int(struct.unpack(endian + "q", head[168:176])[0])
            break
    else:
        raise BadInputError(f"{path.name} is not a NIfTI file (no NIfTI header).")
    if magic not in (b"n+1\0", b"n+2\0"):
        raise BadInputError(
            f"{path.name} is a NIfTI header whose voxels are in a separate .img file; upload a single .nii or .nii.gz."
        )
    ndim = dims[0]
    if not 1 <= ndim <= 7 or bitpix not in (8, 16, 32, 64, 128, 192, 256):
        raise BadInputError(f"{path.name} has an invalid NIfTI header (dim[0] {ndim}, bitpix {bitpix}).")
    extents = tuple(int(d) for d in dims[1 : ndim + 1])
    components = math.prod(extents[3:]) if ndim > 3 else 1
    header = UploadHeader(extents[:3], components, bitpix // 8)
    return header, max(vox_offset, sizeof_hdr + 4) + header.stored_bytes


def _check_unpacked_size(path: Path, header_end_bytes: int, what: str) -> None:
    """Unpack the gzip stream in chunks, stopping as soon as it outgrows what the header declares."""
    limit = header_end_bytes + _STREAM_CHUNK  # slack for padding after the voxels
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_STREAM_CHUNK):
                total += len(chunk)
                if total > limit:
                    raise BadInputError(
                        f"{path.name} unpacks to more than its {what} header declares "
                        f"({header_end_bytes / 2**20:,.1f} MB); refused."
                    )
    except (OSError, EOFError, zlib.error):
        raise BadInputError(f"{path.name} is not a readable gzip file.") from None
