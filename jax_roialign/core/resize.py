"""Per-axis resampling tables of every framework's resize (``docs/conventions.md`` section 8).

Every resize here is separable: each spatial axis is resampled on its own by a table,
output ``o`` reading the window ``x[clip(start[o] + t, 0, length - 1)]`` for taps
``t = 0 .. taps - 1`` with weights ``weights[o, t]`` (a tap outside the axis reads the
border pixel, which is how the frameworks clamp).  Sizes, scales and flags are static, so
the tables are computed here once, in NumPy, at trace time: they enter the compiled
program as constants and cost nothing at run time.

Coordinates are computed in the precision the framework uses (float32 almost everywhere,
emulated with NumPy float32 arithmetic, which rounds every operation as C++ does), since
one rounding can move a nearest-neighbour index or a tap at an exact tie; the weights are
kept in float64 and rounded once to the compute dtype when applied.

The builders are cached: equal arguments give the very same :class:`AxisTable` object,
which is hashable by identity, so a jitted caller that takes tables as static arguments
compiles once per distinct resize.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import numpy as np

f32 = np.float32


@dataclasses.dataclass(frozen=True, eq=False)
class AxisTable:
    """The resampling of one axis of ``length`` inputs to ``size = len(start)`` outputs.

    ``out[o] = sum_t weights[o, t] * x[clip(start[o] + t, 0, length - 1)]``, except that an
    output with ``outside[o]`` takes the fill value (ONNX ``tf_crop_and_resize``
    extrapolation).  start (size,) int64; weights (size, taps) float64; outside (size,) bool.
    Equality and hash are by identity (the builders are cached).
    """

    length: int
    start: np.ndarray
    weights: np.ndarray
    outside: np.ndarray

    def __post_init__(self) -> None:
        for name in ("start", "weights", "outside"):
            getattr(self, name).setflags(write=False)

    @property
    def size(self) -> int:
        return int(self.start.shape[0])

    @property
    def taps(self) -> int:
        return int(self.weights.shape[1])

    def indices(self) -> np.ndarray:
        """(size, taps) int64: the input index each tap reads, clamped to the axis."""
        return np.clip(self.start[:, None] + np.arange(self.taps)[None, :], 0, self.length - 1)

    def matrix(self) -> np.ndarray:
        """The dense (size, length) float64 matrix of the table (outside rows are zero)."""
        m = np.zeros((self.size, self.length))
        rows = np.repeat(np.arange(self.size), self.taps)
        np.add.at(m, (rows, self.indices().reshape(-1)), self.weights.reshape(-1))
        m[self.outside] = 0.0
        return m

    def is_identity(self) -> bool:
        """Whether the table copies the axis unchanged (output o reads input o with weight 1)."""
        if self.size != self.length or self.outside.any():
            return False
        return bool(np.array_equal(self.matrix(), np.eye(self.length)))

    def is_selection(self) -> bool:
        """Whether every output copies one input (nearest neighbour): its values stay exact."""
        nonzero = self.weights != 0
        return bool(np.all(nonzero.sum(axis=1) <= 1) and np.all(self.weights[nonzero] == 1.0))


def make_table(length: int, start, weights, outside=None) -> AxisTable:
    """An AxisTable from window starts (size,) and weights (size, taps); taps >= 1."""
    start = np.asarray(start, np.int64).reshape(-1)
    weights = np.asarray(weights, np.float64).reshape(start.shape[0], -1)
    if weights.shape[1] == 0:
        weights = np.zeros((start.shape[0], 1))
    outside = np.zeros(start.shape[0], bool) if outside is None else np.asarray(outside, bool)
    return AxisTable(int(length), start, weights, outside)


def selection_table(length: int, index, outside=None) -> AxisTable:
    """Nearest neighbour: output o copies input index[o] (clamped to the axis)."""
    index = np.clip(np.asarray(index, np.int64), 0, length - 1)
    return make_table(length, index, np.ones((index.shape[0], 1)), outside)


def identity_table(length: int) -> AxisTable:
    return selection_table(length, np.arange(length))


def window_table(length: int, lo, hi, weight_of: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> AxisTable:
    """Output o over the input positions lo[o] <= j < hi[o] (possibly beyond the axis).

    weight_of(o, j) gives the weights at broadcast (o, j) arrays; positions j >= hi[o]
    get weight 0.  A window wider than the axis is fine: its outer taps read the border.
    """
    lo = np.asarray(lo, np.int64)
    hi = np.maximum(np.asarray(hi, np.int64), lo)
    taps = max(int((hi - lo).max(initial=1)), 1)
    o = np.arange(lo.shape[0])[:, None]
    j = lo[:, None] + np.arange(taps)[None, :]
    w = np.where(j < hi[:, None], weight_of(np.broadcast_to(o, j.shape), j), 0.0)
    return make_table(length, lo, w)


# ----------------------------------------------------------------------------------- kernels
def cubic_kernel(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter a (float64), zero for |t| >= 2."""
    t = np.abs(np.asarray(t, np.float64))
    near = ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
    far = ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a
    return np.where(t <= 1.0, near, np.where(t < 2.0, far, 0.0))


def triangle_kernel(t: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, 1.0 - np.abs(np.asarray(t, np.float64)))


def lanczos_kernel(t: np.ndarray, radius: int) -> np.ndarray:
    """TensorFlow's Lanczos kernel: 1 for |t| <= 1e-3, zero beyond the radius."""
    t = np.abs(np.asarray(t, np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        value = radius * np.sin(np.pi * t) * np.sin(np.pi * t / radius) / (np.pi**2 * t * t)
    return np.where(t > radius, 0.0, np.where(t <= 1e-3, 1.0, value))


def gaussian_kernel(t: np.ndarray, radius: float = 1.5) -> np.ndarray:
    """TensorFlow's Gaussian kernel: sigma = radius / 3, zero at |t| >= radius."""
    t = np.abs(np.asarray(t, np.float64))
    sigma = radius / 3.0
    return np.where(t < radius, np.exp(-t * t / (2.0 * sigma * sigma)), 0.0)


def mitchell_kernel(t: np.ndarray) -> np.ndarray:
    """Mitchell-Netravali (B = C = 1/3), as TensorFlow's mitchellcubic."""
    t = np.abs(np.asarray(t, np.float64))
    near = (7.0 * t - 12.0) * t * t + 16.0 / 3.0
    far = (((-7.0 / 3.0) * t + 12.0) * t - 20.0) * t + 32.0 / 3.0
    return np.where(t >= 2.0, 0.0, np.where(t >= 1.0, far, near) / 6.0)


def _float32_kernel(method: str, a: float) -> Callable[[np.ndarray], np.ndarray]:
    """onnxruntime's antialias filters, evaluated in float32 (triangle, or cubic with a)."""
    a = f32(a)

    def kernel(t: np.ndarray) -> np.ndarray:
        t = np.abs(np.asarray(t, np.float32))
        if method == "linear":
            return np.where(t < f32(1), f32(1) - t, f32(0))
        near = ((a + f32(2)) * t - (a + f32(3))) * t * t + f32(1)
        far = (((t - f32(5)) * t + f32(8)) * t - f32(4)) * a
        return np.where(t < f32(1), near, np.where(t < f32(2), far, f32(0)))

    return kernel


# ========================================================================= ONNX (the canonical model)
COORDINATE_MODES: tuple[str, ...] = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
    "tf_crop_and_resize",
)
NEAREST_MODES: tuple[str, ...] = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
ONNX_METHODS: tuple[str, ...] = ("nearest", "linear", "cubic")
# onnxruntime 1.32 treats a float32 coordinate within this distance of k + 0.5 as a tie for
# round_prefer_floor / round_prefer_ceil (measured over every pair of sizes 1..30 and the
# half_pixel, asymmetric and tf_half_pixel_for_nn modes: 9.5e-7 is a tie, 1.9e-6 is not).
ORT_TIE = 1e-6


def onnx_output_size(length: int, scale: float) -> int:
    """ONNX Resize output length from a scale: trunc(float32(scale) * float32(length))."""
    return int(f32(scale) * f32(length))


def onnx_coordinates(
    mode: str, length: int, size: int, scale: float, roi: tuple[float, float] = (0.0, 1.0)
) -> np.ndarray:
    """Source coordinate of every output (float32), as onnxruntime maps x_resized -> x_original.

    scale is the float32 scale of the axis (the given one, or size / length from sizes);
    roi (start, end) matters to tf_crop_and_resize only.  A scale of exactly 1 maps o -> o
    whatever the mode (onnxruntime skips the transform, roi included).
    """
    x = np.arange(size, dtype=np.float32)
    s = f32(scale)
    if s == f32(1):
        return x
    n_in, n_out, half = f32(length), f32(size), f32(0.5)
    if mode == "asymmetric":
        return x / s
    if mode == "half_pixel":
        return (x + half) / s - half
    if mode == "pytorch_half_pixel":
        return (x + half) / s - half if size > 1 else np.zeros(size, np.float32)
    if mode == "tf_half_pixel_for_nn":
        return (x + half) / s
    if mode == "align_corners":
        return x * (n_in - f32(1)) / (n_out - f32(1)) if size > 1 else np.zeros(size, np.float32)
    if mode == "tf_crop_and_resize":
        lo, hi = f32(roi[0]), f32(roi[1])
        if size > 1:
            return lo * (n_in - f32(1)) + (x * (hi - lo) * (n_in - f32(1))) / (n_out - f32(1))
        return np.full(size, 0.5 * float(lo + hi) * float(n_in - f32(1)), np.float32)
    if mode == "half_pixel_symmetric":
        adjustment = n_out / (s * n_in)
        offset = (n_in / f32(2)) * (f32(1) - adjustment)
        return (float(offset) + (x.astype(np.float64) + 0.5) / float(s) - 0.5).astype(np.float32)
    raise ValueError(f"coordinate_mode must be one of {COORDINATE_MODES}, got {mode!r}")


def onnx_nearest_index(coords: np.ndarray, nearest_mode: str, scale: float) -> np.ndarray:
    """onnxruntime's nearest pixel of each float32 coordinate (unclamped).

    "simple" is Resize-10 / Upsample: ceil when downsampling (scale < 1), else truncation.
    """
    c = np.asarray(coords, np.float32).astype(np.float64)
    if nearest_mode == "simple":
        return (np.ceil(c) if scale < 1 else np.trunc(c)).astype(np.int64)
    if nearest_mode == "floor":
        return np.floor(c).astype(np.int64)
    if nearest_mode == "ceil":
        return np.ceil(c).astype(np.int64)
    k = np.floor(c)
    tie = np.abs(c - (k + 0.5)) <= ORT_TIE
    rounded = np.floor(c + 0.5)
    if nearest_mode == "round_prefer_floor":
        return np.where(tie, k, rounded).astype(np.int64)
    if nearest_mode == "round_prefer_ceil":
        return np.where(tie, k + 1, rounded).astype(np.int64)
    raise ValueError(f"nearest_mode must be one of {NEAREST_MODES}, got {nearest_mode!r}")


def _onnx_antialias(
    length: int, coords: np.ndarray, scale: float, method: str, a: float, exclude_outside: bool
) -> AxisTable:
    """onnxruntime's antialiased linear / cubic: a filter widened by max(length / size, 1).

    The window of output o is [floor(c + 0.5 - support + 0.5), floor(c + 0.5 + support + 0.5))
    around c + 0.5 (c its coordinate); weights filter((j - c) / stretch) in float32,
    normalized in float64 unless their sum is 0 or 1.  exclude_outside drops the taps
    outside the axis before normalizing; otherwise they read the border pixel.
    """
    ratio = f32(1) / f32(scale)  # input pixels per output pixel
    radius = f32(1) if method == "linear" else f32(2)
    support = radius * ratio if ratio >= f32(1) else radius
    stretch = f32(1) / ratio if ratio >= f32(1) else f32(1)
    center = f32(0.5) + np.asarray(coords, np.float32)
    lo = np.floor((center - support).astype(np.float64) + 0.5).astype(np.int64)
    hi = np.floor((center + support).astype(np.float64) + 0.5).astype(np.int64)
    if exclude_outside:
        lo, hi = np.maximum(lo, 0), np.minimum(hi, length)
    kernel = _float32_kernel(method, a)

    def weight_of(o: np.ndarray, j: np.ndarray) -> np.ndarray:
        return kernel((j.astype(np.float32) - center[o] + f32(0.5)) * stretch).astype(np.float64)

    table = window_table(length, lo, hi, weight_of)
    total = table.weights.sum(axis=1, keepdims=True)
    normalize = (total != 0) & (total != 1)
    weights = np.where(normalize, table.weights / np.where(normalize, total, 1.0), table.weights)
    return make_table(length, table.start, weights)


@functools.lru_cache(maxsize=512)
def onnx_axis(
    length: int,
    size: int,
    scale: float,
    method: str,
    coordinate_mode: str = "half_pixel",
    nearest_mode: str = "round_prefer_floor",
    cubic_coeff_a: float = -0.75,
    exclude_outside: bool = False,
    antialias: bool = False,
    roi: tuple[float, float] = (0.0, 1.0),
) -> AxisTable:
    """One axis of ONNX Resize as onnxruntime computes it (``docs/conventions.md`` 8.2).

    method "nearest", "linear" or "cubic"; scale the float32 coordinate scale of the axis.
    linear clamps the coordinate to [0, length - 1]; cubic reads four taps around it,
    clamped (or, with exclude_outside, dropped and the rest renormalized); antialias
    (linear, cubic) widens the filter when downsampling.  Outputs of tf_crop_and_resize
    whose coordinate falls outside [0, length - 1] are marked outside.
    """
    coords = onnx_coordinates(coordinate_mode, length, size, scale, roi)
    outside = None
    if coordinate_mode == "tf_crop_and_resize":
        outside = (coords < f32(0)) | (coords > f32(length - 1))
    if method == "nearest":
        return selection_table(length, onnx_nearest_index(coords, nearest_mode, scale), outside)
    if antialias:
        table = _onnx_antialias(length, coords, scale, method, cubic_coeff_a, exclude_outside)
        return make_table(length, table.start, table.weights, outside)
    if method == "linear":
        c = np.clip(coords, f32(0), f32(length - 1))
        lo = np.minimum(c.astype(np.int64), length - 1)
        frac = c.astype(np.float64) - lo
        return make_table(length, lo, np.stack([1.0 - frac, frac], axis=1), outside)
    if method == "cubic":
        lo = np.floor(coords).astype(np.int64)
        frac = (coords - np.floor(coords)).astype(np.float64)
        weights = cubic_kernel(frac[:, None] - np.arange(-1, 3)[None, :], cubic_coeff_a)
        start = lo - 1
        if exclude_outside:
            position = start[:, None] + np.arange(4)[None, :]
            weights = np.where((position < 0) | (position >= length), 0.0, weights)
            weights = weights / weights.sum(axis=1, keepdims=True)
        return make_table(length, start, weights, outside)
    raise ValueError(f"method must be one of {ONNX_METHODS}, got {method!r}")


@functools.lru_cache(maxsize=512)
def area_axis(length: int, size: int, scale: float | None = None) -> AxisTable:
    """Exact area averaging: output o is the mean of the input over [o / s, (o + 1) / s).

    s = size / length, or the given scale; cells are clipped to the axis and each input
    pixel j (covering [j, j + 1)) weighs its overlap with the cell over the cell's width.
    """
    width = length / size if scale is None else 1.0 / scale
    lo_edge = np.arange(size) * width
    hi_edge = np.minimum(lo_edge + width, length)
    cell = hi_edge - lo_edge
    lo = np.floor(lo_edge).astype(np.int64)
    hi = np.ceil(hi_edge).astype(np.int64)

    def weight_of(o: np.ndarray, j: np.ndarray) -> np.ndarray:
        overlap = np.minimum(j + 1.0, hi_edge[o]) - np.maximum(j, lo_edge[o])
        return np.maximum(overlap, 0.0) / np.where(cell[o] > 0, cell[o], 1.0)

    return window_table(length, lo, hi, weight_of)


# ================================================================================== PyTorch
def torch_scale(length: int, size: int, align_corners: bool, scale_factor: float | None, dtype=np.float32):
    """area_pixel_compute_scale: the input step per output pixel, in the op's dtype.

    align_corners: (length - 1) / (size - 1) (0 for size 1); else 1 / scale_factor when a
    scale factor reaches the kernel, else length / size.
    """
    if align_corners:
        return dtype(length - 1) / dtype(size - 1) if size > 1 else dtype(0)
    if scale_factor is not None and scale_factor > 0:
        return dtype(1.0 / scale_factor)
    return dtype(length) / dtype(size)


def torch_source(scale, size: int, align_corners: bool, cubic: bool, dtype=np.float32) -> np.ndarray:
    """area_pixel_compute_source_index for every output: negative values clamp to 0 except for cubic."""
    o = np.arange(size, dtype=dtype)
    if align_corners:
        return dtype(scale) * o
    src = dtype(scale) * (o + dtype(0.5)) - dtype(0.5)
    return src if cubic else np.maximum(src, dtype(0))


@functools.lru_cache(maxsize=512)
def torch_axis(
    length: int,
    size: int,
    mode: str,
    align_corners: bool = False,
    scale_factor: float | None = None,
    antialias: bool = False,
    double: bool = False,
) -> AxisTable:
    """One axis of torch.nn.functional.interpolate on a floating tensor (section 8.3).

    scale_factor is the factor that reaches the kernel (None when size was given or
    recompute_scale_factor=True); double: the coordinates of bilinear / bicubic are
    computed in float64 (float64 input), else float32.
    """
    dtype = np.float64 if double else np.float32
    if mode == "area":  # adaptive average pooling: [floor(o L / S), ceil((o + 1) L / S))
        o = np.arange(size)
        lo, hi = (o * length) // size, -((-(o + 1) * length) // size)
        return window_table(length, lo, hi, lambda o, j: 1.0 / (hi[o] - lo[o]))
    if mode in ("nearest", "nearest-exact"):
        scale = torch_scale(length, size, False, scale_factor)
        if mode == "nearest":
            if size == length:
                return identity_table(length)
            if size == 2 * length:
                return selection_table(length, np.arange(size) >> 1)
            return selection_table(length, np.floor(scale * np.arange(size, dtype=np.float32)).astype(np.int64))
        src = torch_source(scale, size, False, False)
        return selection_table(length, np.floor(src + f32(0.5)).astype(np.int64))
    if mode not in ("bilinear", "bicubic"):
        raise ValueError(f"mode must be nearest, nearest-exact, bilinear, bicubic or area, got {mode!r}")
    if size == length and (antialias or mode == "bilinear"):
        return identity_table(length)
    scale = torch_scale(length, size, align_corners, scale_factor, dtype)
    if antialias:
        return make_table(length, *pil_window(length, size, float(scale), mode)[:2])
    cubic = mode == "bicubic"
    src = torch_source(scale, size, align_corners, cubic, dtype)
    lo = np.minimum(np.floor(src).astype(np.int64), length - 1)
    frac = np.clip(src.astype(np.float64) - lo, 0.0, 1.0)
    if not cubic:
        return make_table(length, lo, np.stack([1.0 - frac, frac], axis=1))
    return make_table(length, lo - 1, cubic_kernel(frac[:, None] - np.arange(-1, 3)[None, :], -0.75))


def pil_window(length: int, size: int, scale: float, mode: str) -> tuple[np.ndarray, np.ndarray, float]:
    """torch's antialiased (PIL-style) windows in float64: (start, weights, largest weight).

    support = (1 or 2) * max(scale, 1); output o covers [trunc(c - support + 0.5), trunc(c +
    support + 0.5)) around c = scale * (o + 0.5), cut to the axis; weights
    filter((j - c + 0.5) / max(scale, 1)) normalized (bicubic: Keys a = -0.5, PIL's).
    """
    radius = 1.0 if mode == "bilinear" else 2.0
    support = radius * scale if scale >= 1.0 else radius
    stretch = 1.0 / scale if scale >= 1.0 else 1.0
    max_taps = int(math.ceil(support)) * 2 + 1
    center = scale * (np.arange(size) + 0.5)
    lo = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
    count = np.clip(np.minimum(np.trunc(center + support + 0.5).astype(np.int64), length) - lo, 0, max_taps)
    j = lo[:, None] + np.arange(max_taps)[None, :]
    t = (j - center[:, None] + 0.5) * stretch
    w = triangle_kernel(t) if mode == "bilinear" else cubic_kernel(t, -0.5)
    w = np.where(np.arange(max_taps)[None, :] < count[:, None], w, 0.0)
    total = w.sum(axis=1, keepdims=True)
    w = np.where(total != 0, w / np.where(total != 0, total, 1.0), w)
    return lo, w, float(w.max(initial=0.0))


# ============================================================================== TensorFlow
def tf_scale(length: int, size: int, align_corners: bool) -> np.float32:
    """CalculateResizeScale (float32)."""
    if align_corners and size > 1:
        return f32(length - 1) / f32(size - 1)
    return f32(length) / f32(size)


def _tf_source(length: int, size: int, align_corners: bool, half_pixel_centers: bool, shift: float) -> np.ndarray:
    """(o + 0.5) * scale - shift with half-pixel centres, o * scale otherwise (float32)."""
    s = tf_scale(length, size, align_corners)
    o = np.arange(size, dtype=np.float32)
    return (o + f32(0.5)) * s - f32(shift) if half_pixel_centers else o * s


@functools.lru_cache(maxsize=512)
def tf_axis(length: int, size: int, method: str, align_corners: bool = False, half_pixel_centers: bool = False):
    """One axis of tf.compat.v1.image.resize_{bilinear, nearest_neighbor, bicubic, area} (section 8.4)."""
    if method == "bilinear":
        c = _tf_source(length, size, align_corners, half_pixel_centers, 0.5)
        lo = np.floor(c)
        frac = (c - lo).astype(np.float64)
        return make_table(length, lo.astype(np.int64), np.stack([1.0 - frac, frac], axis=1))
    if method == "nearest":
        c = _tf_source(length, size, align_corners, half_pixel_centers, 0.0).astype(np.float64)
        # roundf (half away from zero) with align_corners, floor otherwise.
        index = np.floor(np.abs(c) + 0.5) * np.sign(c) if align_corners else np.floor(c)
        return selection_table(length, index.astype(np.int64))
    if method == "bicubic":
        return _tf_bicubic(length, size, align_corners, half_pixel_centers)
    if method == "area":
        return _tf_area(length, size, align_corners)
    raise ValueError(f"method must be bilinear, nearest, bicubic or area, got {method!r}")


def _tf_cubic_table(a: float) -> tuple[np.ndarray, np.ndarray]:
    """TensorFlow's 1025-entry float32 tables of the cubic kernel on [0, 1] and [1, 2]."""
    x = (np.arange(1025, dtype=np.float64) / 1024.0).astype(np.float32).astype(np.float64)
    near = (((a + 2) * x - (a + 3)) * x * x + 1).astype(np.float32)
    x1 = x + 1.0
    far = (((a * x1 - 5 * a) * x1 + 8 * a) * x1 - 4 * a).astype(np.float32)
    return near.astype(np.float64), far.astype(np.float64)


def _tf_bicubic(length: int, size: int, align_corners: bool, half_pixel_centers: bool) -> AxisTable:
    """resize_bicubic: coefficients looked up at round(frac * 1024) (half to even).

    Half-pixel centres: Keys a = -0.5, taps outside the axis dropped and the rest
    renormalized; legacy: a = -0.75 with the taps clamped.
    """
    c = _tf_source(length, size, align_corners, half_pixel_centers, 0.5)
    lo = np.floor(c)
    offset = np.rint((c - lo).astype(np.float32) * f32(1024)).astype(np.int64)
    near, far = _tf_cubic_table(-0.5 if half_pixel_centers else -0.75)
    weights = np.stack([far[offset], near[offset], near[1024 - offset], far[1024 - offset]], axis=1)
    start = lo.astype(np.int64) - 1
    if half_pixel_centers:
        position = start[:, None] + np.arange(4)[None, :]
        weights = np.where((position < 0) | (position >= length), 0.0, weights)
        weights = weights / weights.sum(axis=1, keepdims=True)
    return make_table(length, start, weights)


def _tf_area(length: int, size: int, align_corners: bool) -> AxisTable:
    """resize_area: the cell [o s, (o + 1) s) (float32 s) integrated over input pixels, over s."""
    s = tf_scale(length, size, align_corners)
    if s == 0:  # one input pixel and align_corners: every output copies it
        return selection_table(length, np.zeros(size, np.int64))
    o = np.arange(size, dtype=np.float32)
    lo_edge, hi_edge = o * s, (o + f32(1)) * s
    lo = np.floor(lo_edge).astype(np.int64)
    hi = np.ceil(hi_edge).astype(np.int64)

    def weight_of(o: np.ndarray, j: np.ndarray) -> np.ndarray:
        jf = j.astype(np.float32)
        overlap = np.minimum(jf + f32(1), hi_edge[o]) - np.maximum(jf, lo_edge[o])
        return overlap.astype(np.float64) / float(s)

    return window_table(length, lo, hi, weight_of)


# (kernel, radius) of tf.image.resize's ScaleAndTranslate methods.
TF_KERNELS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float]] = {
    "bilinear": (triangle_kernel, 1.0),
    "bicubic": (lambda t: cubic_kernel(t, -0.5), 2.0),
    "lanczos3": (lambda t: lanczos_kernel(t, 3), 3.0),
    "lanczos5": (lambda t: lanczos_kernel(t, 5), 5.0),
    "gaussian": (gaussian_kernel, 1.5),
    "mitchellcubic": (mitchell_kernel, 2.0),
}


@functools.lru_cache(maxsize=512)
def tf_scale_and_translate_axis(length: int, size: int, method: str, antialias: bool) -> AxisTable:
    """ScaleAndTranslate (translation 0), behind tf.image.resize's kernels (section 8.4).

    Output o samples at (o + 0.5) / s - 0.5 with s = size / length (float32); the kernel is
    stretched by max(1 / s, 1) when antialiasing; taps within its radius and inside the
    axis count, weights normalized (unless their sum is about 0).
    """
    kernel, radius = TF_KERNELS[method]
    inverse = f32(1.0 / float(f32(size) / f32(length)))
    stretch = max(float(inverse), 1.0) if antialias else 1.0
    sample = ((np.arange(size) + 0.5).astype(np.float32) * inverse).astype(np.float64)
    span = radius * stretch
    lo = np.clip(np.ceil(sample - span - 0.5).astype(np.int64), 0, length - 1)
    hi = np.clip(np.floor(sample + span - 0.5).astype(np.int64), 0, length - 1) + 1
    table = window_table(length, lo, hi, lambda o, j: kernel((j + 0.5 - sample[o]) / stretch))
    total = table.weights.sum(axis=1, keepdims=True)
    usable = np.abs(total) >= 1000 * np.finfo(np.float32).tiny
    weights = np.where(usable, table.weights / np.where(usable, total, 1.0), table.weights)
    return make_table(length, table.start, weights)


def tf_preserve_aspect_ratio(shape: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """tf.image.resize(preserve_aspect_ratio=True): the largest size that fits, rounded half to even."""
    s = min(f32(size[0]) / f32(shape[0]), f32(size[1]) / f32(shape[1]))
    return int(np.rint(s * f32(shape[0]))), int(np.rint(s * f32(shape[1])))


# ================================================================================== OpenCV
def cv2_output_size(shape: tuple[int, int], dsize, fx: float, fy: float) -> tuple[tuple[int, int], float, float]:
    """((out_h, out_w), inverse x scale, inverse y scale) of cv2.resize.

    A dsize (w, h) with both positive wins and the scales become dsize / size; else the
    output is round(size * f) (half to even) and the given f is the coordinate scale.
    """
    h, w = shape
    if dsize is not None and dsize[0] > 0 and dsize[1] > 0:
        return (int(dsize[1]), int(dsize[0])), dsize[0] / w, dsize[1] / h
    return (int(np.rint(h * fy)), int(np.rint(w * fx))), float(fx), float(fy)


def cv2_fast_area(length: int, inverse_scale: float) -> int:
    """The integer downscale factor when 1 / inverse_scale is one (within double epsilon), else 0."""
    scale = 1.0 / inverse_scale
    whole = int(round(scale))
    return whole if abs(scale - whole) < np.finfo(float).eps else 0


def _cv2_linear_coordinates(length: int, size: int, inverse_scale: float, area_mode: bool):
    """(sx, fx): source pixel and float32 fraction of each output, as cv2.resize's setup loop."""
    scale = 1.0 / inverse_scale
    o = np.arange(size, dtype=np.float64)
    if not area_mode:
        fx = ((o + 0.5) * scale - 0.5).astype(np.float32)
        sx = np.floor(fx).astype(np.int64)
        return sx, (fx - sx.astype(np.float32)).astype(np.float32)
    sx = np.floor(o * scale).astype(np.int64)
    fx = ((o + 1) - (sx + 1) * inverse_scale).astype(np.float32)
    fx = np.where(fx <= 0, f32(0), fx - np.floor(fx)).astype(np.float32)
    return sx, fx


def cv2_cubic_coefficients(fx: np.ndarray) -> np.ndarray:
    """interpolateCubic (A = -0.75) in float32; the last coefficient is 1 minus the others."""
    a, x = f32(-0.75), np.asarray(fx, np.float32)
    one = f32(1)
    c0 = ((a * (x + one) - f32(5) * a) * (x + one) + f32(8) * a) * (x + one) - f32(4) * a
    c1 = ((a + f32(2)) * x - (a + f32(3))) * x * x + one
    c2 = ((a + f32(2)) * (one - x) - (a + f32(3))) * (one - x) * (one - x) + one
    return np.stack([c0, c1, c2, one - c0 - c1 - c2], axis=1).astype(np.float32)


@functools.lru_cache(maxsize=512)
def cv2_axis(length: int, size: int, inverse_scale: float, interpolation: str, horizontal: bool) -> AxisTable:
    """One axis of cv2.resize for nearest, nearest_exact, linear, cubic, or area upscaling.

    Float32 weights.  linear clamps the source pixel and zeroes the fraction at the left and
    right borders (the x axis); along y the rows are clamped and the weights kept.  area
    upscaling runs the linear tables with area coordinates.  (Area downscaling:
    :func:`cv2_area_axis`.)
    """
    scale = 1.0 / inverse_scale
    if interpolation == "nearest":
        return selection_table(length, np.floor(np.arange(size) * scale).astype(np.int64))
    if interpolation == "nearest_exact":  # OpenCV 5: f = scale / 2, then f += scale per output, in double
        step = length / size
        positions = np.cumsum(np.concatenate([[step * 0.5], np.full(size - 1, step)]))  # sequential sums
        return selection_table(length, np.floor(positions).astype(np.int64))
    sx, fx = _cv2_linear_coordinates(length, size, inverse_scale, interpolation == "area")
    if interpolation == "cubic":
        return make_table(length, sx - 1, cv2_cubic_coefficients(fx).astype(np.float64))
    if interpolation not in ("linear", "area"):
        raise ValueError(f"interpolation must be nearest, nearest_exact, linear, cubic or area, got {interpolation!r}")
    if horizontal:
        left, right = sx < 0, sx >= length - 1
        fx = np.where(left | right, f32(0), fx)
        sx = np.where(left, 0, np.where(right, length - 1, sx))
    weights = np.stack([f32(1) - fx, fx], axis=1).astype(np.float32)
    return make_table(length, sx, weights.astype(np.float64))


def cv2_area_cells(length: int, size: int, scale: float) -> list[tuple[int, int, np.float32]]:
    """computeResizeAreaTab: (output, input, float32 weight) in OpenCV's order.

    Cell [o s, o s + s) clipped to the axis; slivers under 1e-3 pixels are dropped; the
    weights are overlaps over the cell width.
    """
    cells = []
    for o in range(size):
        lo_edge = o * scale
        hi_edge = lo_edge + scale
        width = min(scale, length - lo_edge)
        first, last = int(math.ceil(lo_edge)), int(math.floor(hi_edge))
        last = min(last, length - 1)
        first = min(first, last)
        if first - lo_edge > 1e-3:
            cells.append((o, first - 1, f32((first - lo_edge) / width)))
        cells.extend((o, j, f32(1.0 / width)) for j in range(first, last))
        if hi_edge - last > 1e-3:
            cells.append((o, last, f32(min(min(hi_edge - last, 1.0), width) / width)))
    return cells


@functools.lru_cache(maxsize=512)
def cv2_area_axis(length: int, size: int, inverse_scale: float) -> AxisTable:
    """INTER_AREA downscaling of one axis (float32 weights; an integer factor averages blocks)."""
    factor = cv2_fast_area(length, inverse_scale)
    if factor:
        start = np.arange(size) * factor
        return make_table(length, start, np.full((size, factor), 1.0 / factor))
    m = np.zeros((size, length))
    for o, j, w in cv2_area_cells(length, size, 1.0 / inverse_scale):
        m[o, j] += float(w)
    return matrix_table(m)


def matrix_table(m: np.ndarray) -> AxisTable:
    """The window table of a dense (size, length) matrix (each row's nonzero span)."""
    nonzero = m != 0
    any_nonzero = nonzero.any(axis=1)
    first = np.where(any_nonzero, nonzero.argmax(axis=1), 0)
    last = np.where(any_nonzero, m.shape[1] - 1 - nonzero[:, ::-1].argmax(axis=1), 0)
    return window_table(m.shape[1], first, last + 1, lambda o, j: m[o, np.minimum(j, m.shape[1] - 1)])


# Transposes computed so far, both ways (a table's transpose's transpose is the table itself).
_TRANSPOSED: dict[AxisTable, AxisTable] = {}
_MAX_TRANSPOSED = 4096


def transposed(table: AxisTable) -> AxisTable:
    """The table of the transposed operator: ``length`` outputs over ``size`` inputs.

    Its matrix is ``table.matrix().T``: input i receives every output that reads it, the
    reads clamped at a border folded onto the border row, outputs marked outside
    dropped (their value is the fill, a constant), zero weights dropped.  Built from the
    taps without a dense matrix; input i's window spans the first to the last output
    reading it (a banded table: a 2x upsample gives windows of about 4 outputs, step 2).
    Cached both ways: ``transposed(transposed(t)) is t``.
    """
    cached = _TRANSPOSED.get(table)
    if cached is not None:
        return cached
    outputs = np.repeat(np.arange(table.size), table.taps)
    inputs = table.indices().reshape(-1)
    weights = table.weights.reshape(-1)
    keep = (weights != 0) & ~np.repeat(table.outside, table.taps)
    outputs, inputs, weights = outputs[keep], inputs[keep], weights[keep]
    first = np.full(table.length, table.size, np.int64)
    last = np.full(table.length, -1, np.int64)
    np.minimum.at(first, inputs, outputs)
    np.maximum.at(last, inputs, outputs)
    empty = last < first
    first, last = np.where(empty, 0, first), np.where(empty, 0, last)
    taps = int(max((last - first).max(initial=0), 0)) + 1
    window = np.zeros((table.length, taps))
    np.add.at(window, (inputs, outputs - first[inputs]), weights)
    result = make_table(table.size, first, window)
    if len(_TRANSPOSED) >= _MAX_TRANSPOSED:
        _TRANSPOSED.clear()
    _TRANSPOSED[table], _TRANSPOSED[result] = result, table
    return result


# ================================================================================== Chainer
@functools.lru_cache(maxsize=512)
def chainer_axis(length: int, size: int, mode: str, align_corners: bool) -> AxisTable:
    """chainer.functions.resize_images (float64 coordinates).

    bilinear: align_corners samples linspace(0, length - 1, size), else max((o + 0.5) L / S
    - 0.5, 0), reading floor and min(floor + 1, L - 1); nearest: floor(o L / S).
    """
    if mode == "nearest":
        return selection_table(length, np.floor(np.arange(size) * (length / size)).astype(np.int64))
    if mode != "bilinear":
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    if align_corners:
        c = np.linspace(0, length - 1, num=size)
    else:
        c = np.maximum((np.arange(size) + 0.5) * (length / size) - 0.5, 0)
    frac, lo = np.modf(c)
    return make_table(length, lo.astype(np.int64), np.stack([1.0 - frac, frac], axis=1))


# ======================================================================= integer (uint8) paths
def round_half_away(v: np.ndarray) -> np.ndarray:
    return np.where(v < 0, np.trunc(v - 0.5), np.trunc(v + 0.5))


@dataclasses.dataclass(frozen=True, eq=False)
class FixedPointTable:
    """An integer pass: ``clip((sum_t q[o, t] * x[clip(start[o] + t)] + bias) >> shift, 0, 255)``.

    table carries the starts (its float weights are what q quantizes); q (size, taps) int64.
    """

    table: AxisTable
    q: np.ndarray
    shift: int
    bias: int


@functools.lru_cache(maxsize=256)
def torch_uint8_axis(
    length: int, size: int, mode: str, align_corners: bool, scale_factor: float | None, antialias: bool
) -> FixedPointTable:
    """torch's uint8 bilinear / bicubic pass (_compute_index_ranges_int16_weights).

    float64 weights (antialias: the PIL windows; otherwise the float path's taps with the
    taps beyond either border folded onto the border pixel), quantized to int16 with the
    largest precision p < 22 for which round(max weight * 2^(p+1)) < 2^15.
    """
    scale = float(torch_scale(length, size, align_corners, scale_factor, np.float64))
    if antialias:
        start, weights, largest = pil_window(length, size, scale, mode)
    else:
        taps = 2 if mode == "bilinear" else 4
        src = torch_source(scale, size, align_corners, taps == 4, np.float64)
        lo = np.minimum(np.floor(src).astype(np.int64), length - 1)
        frac = np.clip(src - lo, 0.0, 1.0)
        half = taps // 2
        first = lo - half + 1
        kernel = triangle_kernel if taps == 2 else (lambda t: cubic_kernel(t, -0.75))
        raw = kernel(np.arange(taps)[None, :] + 1 - half - frac[:, None])
        start = np.maximum(first, 0)
        count = np.clip(np.minimum(lo + half + 1, length) - start, 0, taps)
        # Fold the weight of each tap onto the window slot torch accumulates it in; torch
        # takes the precision from the largest partial sum along the way.
        weights = np.zeros((size, taps))
        largest = 0.0
        for o in range(size):
            slot = 0
            for t in range(taps):
                position = first[o] + t
                if position <= 0:
                    slot = 0
                elif position >= length - 1:
                    slot = count[o] - 1
                weights[o, slot] += raw[o, t]
                largest = max(largest, weights[o, slot])
                slot += 1
    precision = 0
    while precision < 22 and int(0.5 + largest * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    q = round_half_away(weights * (1 << precision)).astype(np.int64)
    return FixedPointTable(make_table(length, start, weights), q, precision, 1 << max(precision - 1, 0))


@dataclasses.dataclass(frozen=True, eq=False)
class OnnxLinearUint8:
    """onnxruntime's uint8 linear taps of one axis: neighbours i1, i2, float32 distances
    d1 = |c - i1|, d2 = |c - i2| and their 10-bit integer versions e1, e2 (0.5 / 512 each
    where i1 == i2), for the clamped coordinate c; outside as in :func:`onnx_axis`."""

    i1: np.ndarray
    i2: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    e1: np.ndarray
    e2: np.ndarray
    outside: np.ndarray


@functools.lru_cache(maxsize=256)
def onnx_linear_uint8_axis(
    length: int, size: int, scale: float, coordinate_mode: str, roi: tuple[float, float] = (0.0, 1.0)
) -> OnnxLinearUint8:
    """The taps of onnxruntime's uint8 linear Resize (no antialias) along one axis."""
    raw = onnx_coordinates(coordinate_mode, length, size, scale, roi)
    c = np.clip(raw, f32(0), f32(length - 1)).astype(np.float32)
    i1 = np.minimum(c.astype(np.int64), length - 1)
    i2 = np.minimum(i1 + 1, length - 1)
    same = i1 == i2
    d1 = np.where(same, f32(0.5), np.abs(c - i1.astype(np.float32))).astype(np.float32)
    d2 = np.where(same, f32(0.5), np.abs(c - i2.astype(np.float32))).astype(np.float32)
    fixed = (c * f32(1024)).astype(np.int64)
    e1 = np.where(same, 512, np.abs(fixed - i1 * 1024))
    e2 = np.where(same, 512, np.abs(fixed - i2 * 1024))
    outside = np.zeros(size, bool)
    if coordinate_mode == "tf_crop_and_resize":
        outside = (raw < f32(0)) | (raw > f32(length - 1))
    return OnnxLinearUint8(i1, i2, d1, d2, e1, e2, outside)


@functools.lru_cache(maxsize=256)
def quantized(table: AxisTable, bits: int) -> FixedPointTable:
    """The table with weights rounded half away from zero to ``bits`` fraction bits (onnxruntime antialias)."""
    q = round_half_away(table.weights * (1 << bits)).astype(np.int64)
    return FixedPointTable(table, q, bits, 1 << (bits - 1))


# ---------------------------------------------------------------- integer rules (static, hashable)
@dataclasses.dataclass(frozen=True)
class FixedPointRule:
    """A horizontal integer pass, then a vertical one (None: the axis is not resampled).

    torch's uint8 bilinear / bicubic and onnxruntime's uint8 antialias.  Outputs outside
    either table take fill (onnxruntime's ``uint8(extrapolation_value)``).
    """

    h: FixedPointTable | None
    w: FixedPointTable | None
    fill: int = 0


@dataclasses.dataclass(frozen=True)
class OnnxLinearUint8Rule:
    """onnxruntime's uint8 linear Resize: layout "NCHW" (float32, truncated) or "NHWC" (10-bit integers)."""

    h: OnnxLinearUint8
    w: OnnxLinearUint8
    layout: str
    fill: int = 0


@dataclasses.dataclass(frozen=True)
class Cv2Uint8Rule:
    """cv2.resize on uint8 (section 8.5): kind and the two tables.

    "linear": 11-bit horizontal sums, then OpenCV's vertical rounding
    ``(((b0 (S0 >> 4)) >> 16) + ((b1 (S1 >> 4)) >> 16) + 2) >> 2``; "cubic": 11-bit
    horizontal sums, then a float32 vertical sum with weights b / 2^22, rounded half to
    even; "area": float32 sums horizontally then vertically in OpenCV's order, rounded
    half to even; "block": integer block sums times float32(1 / (fy fx)), rounded;
    "block2x2": 2x2 block sums, ``(s + 2) >> 2``.
    """

    kind: str
    h: AxisTable
    w: AxisTable


@functools.lru_cache(maxsize=256)
def cv2_block_axis(length: int, size: int, factor: int) -> AxisTable:
    """Sums of blocks of ``factor`` inputs (weights 1), for OpenCV's integer-factor INTER_AREA on uint8."""
    return make_table(length, np.arange(size) * factor, np.ones((size, factor)))
