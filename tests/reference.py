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

    def rnd(v: float) -> int:
        return int(math.copysign(math.floor(abs(v) + 0.5), v))

    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64)):
        img = features[int(batch_indices[k])]
        xs, ys, xe, ye = (rnd(v * spatial_scale) for v in (x1, y1, x2, y2))
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
