"""libwebp (through Pillow) as the reference lossy WebP encoder for `patchwire bench webp`.

    webp_oracle.py DIR --quality 80

Encodes every PNG in DIR as lossy WebP at the given quality with libwebp's default method 4
(what the paper's "WebP q80" used), decodes it again, and prints one JSON line:
{"encoder": "libwebp 1.6.0", "quality": 80, "images": N, "mean_bytes": ..., "mean_psnr_db": ...,
 "mean_encode_ms": ...}. PSNR is over all RGB values of each image, then averaged.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, features


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--quality", type=int, default=80)
    args = parser.parse_args()
    files = sorted(args.dir.glob("*.png"))
    if not files:
        print(f"error: no PNG files in {args.dir}", file=sys.stderr)
        return 2
    sizes, psnrs, times = [], [], []
    for path in files:
        img = Image.open(path).convert("RGB")
        buf = io.BytesIO()
        start = time.perf_counter()
        img.save(buf, format="WEBP", quality=args.quality, method=4)
        times.append((time.perf_counter() - start) * 1000)
        data = buf.getvalue()
        back = Image.open(io.BytesIO(data)).convert("RGB")
        sizes.append(len(data))
        psnrs.append(psnr(np.asarray(img), np.asarray(back)))
    print(json.dumps({
        "encoder": f"libwebp {features.version('webp')}",
        "quality": args.quality,
        "images": len(files),
        "mean_bytes": float(np.mean(sizes)),
        "mean_psnr_db": float(np.mean(psnrs)),
        "mean_encode_ms": float(np.mean(times)),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
