"""A dependency-free safetensors writer for the fixture scripts (Debian's python3 has no
`safetensors` package): 8-byte little-endian header length, JSON header, 8-byte aligned
little-endian tensor bytes, in the order given."""
import json
import struct

import numpy as np

DTYPES = {
    np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
    np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.uint8): "U8",
}


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (one of DTYPES); metadata: dict str -> str or None."""
    header = {"__metadata__": metadata} if metadata else {}
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        begin = (offset + 7) // 8 * 8
        blobs.append((begin - offset) * b"\0" + data)
        header[name] = {"dtype": DTYPES[arr.dtype], "shape": list(arr.shape), "data_offsets": [begin, begin + len(data)]}
        offset = begin + len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
