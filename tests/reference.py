"""Literal NumPy transcriptions of docs/conventions.md, sample by sample, in float64.

Independent of the library's formulation (it loops over samples the way the C++/CUDA
kernels do), so agreement with it tests the separable closed form, the max loop and
every edge rule.  Slow: meant for small maps and a handful of boxes.
"""

from __future__ import annotations

import math

import numpy as np


def bilinear_terms(img: np.ndarray, y: float, x: float) -> list[np.ndarray]:
    """The four weighted corner terms of one sample of img (H, W, C); zeros out of range."""
    h, w, _ = img.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return [np.zeros(img.shape[2])] * 4
    y, x = max(y, 0.0), max(x, 0.0)
    y_lo, x_lo = int(math.floor(y)), int(math.floor(x))
    if y_lo >= h - 1:
        y_lo = y_hi = h - 1
        y = float(y_lo)
    else:
        y_hi = y_lo + 1
    if x_lo >= w - 1:
        x_lo = x_hi = w - 1
        x = float(x_lo)
    else:
        x_hi = x_lo + 1
    ly, lx = y - y_lo, x - x_lo
    hy, hx = 1.0 - ly, 1.0 - lx
    return [
        hy * hx * img[y_lo, x_lo],
        hy * lx * img[y_lo, x_hi],
        ly * hx * img[y_hi, x_lo],
        ly * lx * img[y_hi, x_hi],
    ]


def roi_align(
    features: np.ndarray,
    boxes: np.ndarray,
    batch_indices: np.ndarray,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
    mode: str,
) -> np.ndarray:
    """RoIAlign of NHWC features and (K, 4) boxes: (K, out_h, out_w, C) float64."""
    features = np.asarray(features, np.float64)
    n, _, _, c = features.shape
    ph_n, pw_n = output_size
    out = np.zeros((len(boxes), ph_n, pw_n, c))
    off = 0.5 if aligned else 0.0
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64)):
        b = int(batch_indices[k])
        if not 0 <= b < n:
            continue
        img = features[b]
        x_start, y_start = x1 * spatial_scale - off, y1 * spatial_scale - off
        roi_w = x2 * spatial_scale - off - x_start
        roi_h = y2 * spatial_scale - off - y_start
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_w, bin_h = roi_w / pw_n, roi_h / ph_n
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / pw_n)
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / ph_n)
        for ph in range(ph_n):
            for pw in range(pw_n):
                values = []
                for iy in range(gh):
                    y = y_start + ph * bin_h + (iy + 0.5) * bin_h / gh
                    for ix in range(gw):
                        x = x_start + pw * bin_w + (ix + 0.5) * bin_w / gw
                        terms = bilinear_terms(img, y, x)
                        if mode == "corner_max":
                            values.append(np.maximum.reduce(terms))
                        else:
                            values.append(terms[0] + terms[1] + terms[2] + terms[3])
                if not values:
                    continue
                if mode == "avg":
                    out[k, ph, pw] = np.sum(values, axis=0) / max(gh * gw, 1)
                else:
                    out[k, ph, pw] = np.max(values, axis=0)
    return out


def crop_and_resize(
    image: np.ndarray,
    boxes: np.ndarray,
    box_indices: np.ndarray,
    crop_size: tuple[int, int],
    method: str,
    extrapolation_value: float,
) -> np.ndarray:
    """tf.image.crop_and_resize of NHWC image and normalized [y1, x1, y2, x2] boxes, float64."""
    image = np.asarray(image, np.float64)
    _, h, w, c = image.shape
    ch, cw = crop_size
    out = np.full((len(boxes), ch, cw, c), float(extrapolation_value))
    for k, (y1, x1, y2, x2) in enumerate(np.asarray(boxes, np.float64)):
        img = image[int(box_indices[k])]
        for i in range(ch):
            y = y1 * (h - 1) + i * (y2 - y1) * (h - 1) / (ch - 1) if ch > 1 else 0.5 * (y1 + y2) * (h - 1)
            if not 0 <= y <= h - 1:
                continue
            for j in range(cw):
                x = x1 * (w - 1) + j * (x2 - x1) * (w - 1) / (cw - 1) if cw > 1 else 0.5 * (x1 + x2) * (w - 1)
                if not 0 <= x <= w - 1:
                    continue
                if method == "nearest":
                    out[k, i, j] = img[int(math.floor(y + 0.5)), int(math.floor(x + 0.5))]
                    continue
                t, bt = int(math.floor(y)), int(math.ceil(y))
                lf, rt = int(math.floor(x)), int(math.ceil(x))
                yl, xl = y - t, x - lf
                top = img[t, lf] + (img[t, rt] - img[t, lf]) * xl
                bottom = img[bt, lf] + (img[bt, rt] - img[bt, lf]) * xl
                out[k, i, j] = top + (bottom - top) * yl
    return out


def _c_round(v: float) -> int:
    """C's round(): halves away from zero."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def roi_pool(
    features: np.ndarray,
    boxes: np.ndarray,
    batch_indices: np.ndarray,
    output_size: tuple[int, int],
    spatial_scale: float,
) -> np.ndarray:
    """torchvision's RoIPool of NHWC features: (K, out_h, out_w, C) float64."""
    features = np.asarray(features, np.float64)
    _, h, w, c = features.shape
    ph_n, pw_n = output_size
    out = np.zeros((len(boxes), ph_n, pw_n, c))
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64)):
        img = features[int(batch_indices[k])]
        xs, ys, xe, ye = (_c_round(v * spatial_scale) for v in (x1, y1, x2, y2))
        bin_h = max(ye - ys + 1, 1) / ph_n
        bin_w = max(xe - xs + 1, 1) / pw_n
        for ph in range(ph_n):
            hs = min(max(math.floor(ph * bin_h) + ys, 0), h)
            he = min(max(math.ceil((ph + 1) * bin_h) + ys, 0), h)
            for pw in range(pw_n):
                ws = min(max(math.floor(pw * bin_w) + xs, 0), w)
                we = min(max(math.ceil((pw + 1) * bin_w) + xs, 0), w)
                if he > hs and we > ws:
                    out[k, ph, pw] = img[hs:he, ws:we].reshape(-1, c).max(axis=0)
    return out


def roi_align_rotated(
    features: np.ndarray,
    boxes: np.ndarray,
    batch_indices: np.ndarray,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool = True,
    clockwise: bool = False,
    radians: bool = False,
    float32_grid: bool = False,
) -> np.ndarray:
    """Rotated RoIAlign of NHWC features and (K, 5) [cx, cy, w, h, angle] boxes: (K, out_h, out_w, C).

    docs/conventions.md section 5: the grid laid out in the box frame, each point turned
    by the angle (degrees unless radians; negated when clockwise) about the centre, read
    bilinearly, averaged over max(gh * gw, 1).  aligned=False: no half-pixel offset and
    width / height clamped to >= 1 (mmcv).  float32_grid: mmcv's ceilf of the quotient.
    """
    features = np.asarray(features, np.float64)
    n, _, _, c = features.shape
    ph_n, pw_n = output_size
    out = np.zeros((len(boxes), ph_n, pw_n, c))
    off = 0.5 if aligned else 0.0
    for k, (cx, cy, bw, bh, angle) in enumerate(np.asarray(boxes, np.float64)):
        b = int(batch_indices[k])
        if not 0 <= b < n:
            continue
        cx, cy = cx * spatial_scale - off, cy * spatial_scale - off
        bw, bh = bw * spatial_scale, bh * spatial_scale
        if not aligned:
            bw, bh = max(bw, 1.0), max(bh, 1.0)
        theta = angle if radians else angle * math.pi / 180.0
        theta = -theta if clockwise else theta
        cos, sin = math.cos(theta), math.sin(theta)

        def grid(size: float, pooled: int) -> int:
            q = size / pooled
            return sampling_ratio if sampling_ratio > 0 else math.ceil(np.float32(q) if float32_grid else q)

        gh, gw = grid(bh, ph_n), grid(bw, pw_n)
        bin_h, bin_w = bh / ph_n, bw / pw_n
        for ph in range(ph_n):
            for pw in range(pw_n):
                total = np.zeros(c)
                for iy in range(gh):
                    yy = -bh / 2 + ph * bin_h + (iy + 0.5) * bin_h / gh
                    for ix in range(gw):
                        xx = -bw / 2 + pw * bin_w + (ix + 0.5) * bin_w / gw
                        y = yy * cos - xx * sin + cy
                        x = yy * sin + xx * cos + cx
                        total += sum(bilinear_terms(features[b], y, x))
                out[k, ph, pw] = total / max(gh * gw, 1)
    return out


def ps_roi_align(
    features: np.ndarray,
    boxes: np.ndarray,
    batch_indices: np.ndarray,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
) -> np.ndarray:
    """Position-sensitive RoIAlign: (K, out_h, out_w, C / (out_h * out_w)), empty bins 0.

    Bin (p, q) of output channel c is half-pixel avg RoIAlign of bin (p, q) on input
    channel (c * out_h + p) * out_w + q.
    """
    ph_n, pw_n = output_size
    full = roi_align(features, boxes, batch_indices, output_size, spatial_scale, sampling_ratio, True, "avg")
    c_out = full.shape[3] // (ph_n * pw_n)
    out = np.zeros(full.shape[:3] + (c_out,))
    for c in range(c_out):
        for ph in range(ph_n):
            for pw in range(pw_n):
                out[:, ph, pw, c] = full[:, ph, pw, (c * ph_n + ph) * pw_n + pw]
    return out


def ps_roi_pool(
    features: np.ndarray,
    boxes: np.ndarray,
    batch_indices: np.ndarray,
    output_size: tuple[int, int],
    spatial_scale: float,
) -> np.ndarray:
    """Position-sensitive RoIPool as torchvision's forward pass: (K, out_h, out_w, C_out) float64.

    Corners rounded half away from zero, size max(end - start, 1), bins clipped to
    [0, H - 1] x [0, W - 1], the mean over each bin, 0 when empty.
    """
    features = np.asarray(features, np.float64)
    n, h, w, c = features.shape
    ph_n, pw_n = output_size
    c_out = c // (ph_n * pw_n)
    out = np.zeros((len(boxes), ph_n, pw_n, c_out))
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64)):
        b = int(batch_indices[k])
        if not 0 <= b < n:
            continue
        xs, ys, xe, ye = (_c_round(v * spatial_scale) for v in (x1, y1, x2, y2))
        bin_h, bin_w = max(ye - ys, 1) / ph_n, max(xe - xs, 1) / pw_n
        for ph in range(ph_n):
            hs = min(max(math.floor(ph * bin_h) + ys, 0), h - 1)
            he = min(max(math.ceil((ph + 1) * bin_h) + ys, 0), h - 1)
            for pw in range(pw_n):
                ws = min(max(math.floor(pw * bin_w) + xs, 0), w - 1)
                we = min(max(math.ceil((pw + 1) * bin_w) + xs, 0), w - 1)
                if he <= hs or we <= ws:
                    continue
                for co in range(c_out):
                    channel = (co * ph_n + ph) * pw_n + pw
                    out[k, ph, pw, co] = features[b, hs:he, ws:we, channel].mean()
    return out


def mmcv_roi_pool(
    features: np.ndarray,
    boxes: np.ndarray,
    batch_indices: np.ndarray,
    output_size: tuple[int, int],
    spatial_scale: float,
) -> np.ndarray:
    """mmcv's RoIPool of NHWC features: (K, out_h, out_w, C) float64.

    No rounding: start = x1 * s, size = (x2 + 1) * s - start, a box of size <= 0
    skipped (zeros); bin [floor(q * bin + start), ceil((q + 1) * bin + start)) clipped
    to [0, W]; the max over it, 0 when empty.
    """
    features = np.asarray(features, np.float64)
    _, h, w, c = features.shape
    ph_n, pw_n = output_size
    out = np.zeros((len(boxes), ph_n, pw_n, c))
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64)):
        img = features[int(batch_indices[k])]
        xs, ys = x1 * spatial_scale, y1 * spatial_scale
        roi_w, roi_h = (x2 + 1) * spatial_scale - xs, (y2 + 1) * spatial_scale - ys
        if roi_w <= 0 or roi_h <= 0:
            continue
        bin_h, bin_w = roi_h / ph_n, roi_w / pw_n
        for ph in range(ph_n):
            hs = min(max(math.floor(ph * bin_h + ys), 0), h)
            he = min(max(math.ceil((ph + 1) * bin_h + ys), 0), h)
            for pw in range(pw_n):
                ws = min(max(math.floor(pw * bin_w + xs), 0), w)
                we = min(max(math.ceil((pw + 1) * bin_w + xs), 0), w)
                if he > hs and we > ws:
                    out[k, ph, pw] = img[hs:he, ws:we].reshape(-1, c).max(axis=0)
    return out
