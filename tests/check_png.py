#!/usr/bin/env python3
"""Checks that a file is a real, non-blank PNG screenshot (standard library only).

Decodes the image (8-bit RGB/RGBA, as Qt writes screenshots), then requires a plausible window
size and enough distinct colours that something was drawn, not an empty or single-colour frame.
Usage: check_png.py FILE.png [MIN_WIDTH MIN_HEIGHT MIN_COLOURS]
"""
import struct
import sys
import zlib


def fail(msg):
    print(f"check_png: {sys.argv[1]}: {msg}", file=sys.stderr)
    sys.exit(1)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def decode(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("no PNG signature")
    pos, idat, ihdr = 8, bytearray(), None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            fail("truncated chunk")
        if zlib.crc32(kind + body) != struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]:
            fail(f"bad CRC in {kind!r}")
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if ihdr is None or not idat:
        fail("missing IHDR or IDAT")
    width, height, depth, colour, _, _, interlace = ihdr
    channels = {2: 3, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        fail(f"unexpected format (depth {depth}, colour type {colour}, interlace {interlace})")
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    if len(raw) != height * (stride + 1):
        fail("image data does not match its size")
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif f == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif f == 3:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + (a + prev[i]) // 2) & 0xFF
        elif f == 4:
            for i in range(stride):
                a, c = (line[i - channels], prev[i - channels]) if i >= channels else (0, 0)
                line[i] = (line[i] + paeth(a, prev[i], c)) & 0xFF
        elif f != 0:
            fail(f"unknown filter type {f}")
        rows.append(line)
        prev = line
    return width, height, channels, rows


def main():
    if len(sys.argv) not in (2, 5):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    min_w, min_h, min_colours = (int(x) for x in sys.argv[2:5]) if len(sys.argv) == 5 else (400, 300, 64)
    with open(sys.argv[1], "rb") as fh:
        width, height, channels, rows = decode(fh.read())
    if width < min_w or height < min_h:
        fail(f"{width}x{height} is smaller than {min_w}x{min_h}")
    colours = set()
    for line in rows:
        colours.update(bytes(line[i:i + 3]) for i in range(0, len(line), channels))
    if len(colours) < min_colours:
        fail(f"only {len(colours)} distinct colours: blank or nearly blank")
    print(f"check_png: {width}x{height}, {len(colours)} distinct colours: a real image")


main()
