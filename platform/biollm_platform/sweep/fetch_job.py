"""Run on a Ray head as a Ray Job by `biollm sweep fetch`: print a sweep directory as a tar.gz stream.

Standard library only (it runs with whatever Python the head has, without BioLLM installed): the
archive goes to stdout as base64 lines prefixed ``BIOLLM_FETCH``, then one ``BIOLLM_FETCH_END <bytes>
<sha256>`` line, which the client checks. Trial checkpoints stay out unless ``--checkpoints``.

    python fetch_job.py <sweep_dir> [--checkpoints]
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import tarfile

PREFIX = "BIOLLM_FETCH "
END = "BIOLLM_FETCH_END "
CHUNK = 3072  # raw bytes per line: 4096 base64 characters


class _Base64Lines:
    """A write-only file object that prints what it is given as prefixed base64 lines."""

    def __init__(self) -> None:
        self.buffer = b""
        self.size = 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.buffer += data
        self.size += len(data)
        self.digest.update(data)
        while len(self.buffer) >= CHUNK:
            self._line(self.buffer[:CHUNK])
            self.buffer = self.buffer[CHUNK:]
        return len(data)

    def _line(self, chunk: bytes) -> None:
        sys.stdout.write(PREFIX + base64.b64encode(chunk).decode() + "\n")

    def close(self) -> None:
        if self.buffer:
            self._line(self.buffer)
            self.buffer = b""
        sys.stdout.write(f"{END}{self.size} {self.digest.hexdigest()}\n")
        sys.stdout.flush()


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print("usage: fetch_job.py <sweep_dir> [--checkpoints]", file=sys.stderr)
        return 2
    root = os.path.abspath(os.path.expanduser(argv[0]))
    with_checkpoints = "--checkpoints" in argv[1:]
    if not os.path.isfile(os.path.join(root, "manifest.json")):
        print(f"error: {root}: no sweep directory there (no manifest.json)", file=sys.stderr)
        return 2

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = info.name.split("/")
        directories = parts[1:] if info.isdir() else parts[1:-1]
        in_checkpoints = "checkpoints" in directories or (
            directories[:1] == ["_ray"] and any(p.startswith("checkpoint_") for p in directories)  # older sweeps
        )
        if in_checkpoints and not with_checkpoints:
            return None
        if parts[-1] == ".manifest.lock":
            return None
        return info

    out = _Base64Lines()
    with tarfile.open(fileobj=out, mode="w|gz") as archive:  # type: ignore[call-overload]
        archive.add(root, arcname=".", filter=keep)
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
