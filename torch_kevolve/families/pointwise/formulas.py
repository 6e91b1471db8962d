"""Triton helpers the pointwise kernels' expressions call: casts by dtype code and the math that
triton.language lacks.

`LIBDEVICE` is a constexpr: True when compiling for a GPU, where libdevice gives correctly rounded
(or few-ulp) results; False under the interpreter, which cannot run libdevice, where the same value
comes from triton.language's own functions (within the evaluator's tolerances).
"""
import triton
import triton.language as tl
from triton.language.extra import libdevice

# Compute dtypes by code (a constexpr int, so that launches carry no dtype objects).
FLOAT32, INT64, INT32, INT16, INT8, UINT8, BOOL = range(7)


@triton.jit
def cast(x, CODE: tl.constexpr):
    """`x` (a tensor or a number) converted to the compute dtype of `CODE`; BOOL means x != 0
    (compared in fp32: the interpreter cannot compare 16-bit floats directly)."""
    if CODE == 0:
        return tl.cast(x, tl.float32)
    elif CODE == 1:
        return tl.cast(x, tl.int64)
    elif CODE == 2:
        return tl.cast(x, tl.int32)
    elif CODE == 3:
        return tl.cast(x, tl.int16)
    elif CODE == 4:
        return tl.cast(x, tl.int8)
    elif CODE == 5:
        return tl.cast(x, tl.uint8)
    else:
        return tl.cast(x, tl.float32) != 0


@triton.jit
def to_output(x, out_ptr):
    """`x` converted to the output's dtype (booleans through fp32: the interpreter cannot cast int1 to bf16)."""
    if x.dtype == tl.int1 and out_ptr.dtype.element_ty != tl.int1:
        return x.to(tl.float32).to(out_ptr.dtype.element_ty)
    else:
        return x.to(out_ptr.dtype.element_ty)


@triton.jit
def exp(x, LIBDEVICE: tl.constexpr):
    if LIBDEVICE:
        return libdevice.exp(x)
    else:
        return tl.exp(x)


@triton.jit
def exp2(x, LIBDEVICE: tl.constexpr):
    if LIBDEVICE:
        return libdevice.exp2(x)
    else:
        return tl.exp2(x)


@triton.jit
def log2(x, LIBDEVICE: tl.constexpr):
    if LIBDEVICE:
        return libdevice.log2(x)
    else:
        return tl.log2(x)


@triton.jit
def log(x, LIBDEVICE: tl.constexpr):
    if LIBDEVICE:
        return libdevice.log(x)
    else:
        return tl.log(x)


@triton.jit
def sin(x, LIBDEVICE: tl.constexpr):
    if LIBDEVICE:
        return libdevice.sin(x)
    else:
        return tl.sin(x)


@triton.jit
def cos(x, LIBDEVICE: tl.constexpr):
    if LIBDEVICE:
        return libdevice.cos(x)
    else:
        return tl.cos(x)


@triton.jit
def tan(x, LIBDEVICE: tl.constexpr):
    if LIBDEVICE:
        return libdevice.tan(x)
    else:
        return tl.sin(x) / tl.cos(x)


@triton.jit
def expm1(x, LIBDEVICE: tl.constexpr):
    if LIBDEVICE:
        return libdevice.expm1(x)
    else:
        return tl.exp(x) - 1


@triton.jit
def log1p(x, LIBDEVICE: tl.constexpr):
    if LIBDEVICE:
        return libdevice.log1p(x)
    else:
        return tl.log(1 + x)


@triton.jit
def tanh(x, LIBDEVICE: tl.constexpr):
    if LIBDEVICE:
        return libdevice.tanh(x)
    else:
        return 1 - 2 / (tl.exp(2 * x) + 1)


@triton.jit
def erf(x, LIBDEVICE: tl.constexpr):
    if LIBDEVICE:
        return libdevice.erf(x)
    else:
        return tl.erf(x)


@triton.jit
def trunc(x):
    return tl.where(x < 0, tl.ceil(x), tl.floor(x))


@triton.jit
def sigmoid(x, LIBDEVICE: tl.constexpr):
    return 1 / (1 + exp(-x, LIBDEVICE))


@triton.jit
def pow(x, y, LIBDEVICE: tl.constexpr):
    """x ** y with C pow's special cases (negative bases with integral exponents keep their sign)."""
    if LIBDEVICE:
        return libdevice.pow(x, y)
    else:
        x64 = x.to(tl.float64)
        y64 = y.to(tl.float64)
        magnitude = tl.exp2(y64 * tl.log2(tl.abs(x64)))
        integral = tl.floor(y64) == y64
        odd = tl.where(integral, tl.abs(y64 % 2) == 1, False)
        negative_base = tl.where(odd, -magnitude, tl.where(integral, magnitude, float("nan")))
        value = tl.where(x64 < 0, tl.where(tl.abs(y64) == float("inf"), magnitude, negative_base), magnitude)
        value = tl.where(y64 == 0, 1.0, value)
        value = tl.where(x64 == 1, 1.0, value)
        return value.to(tl.float32)


@triton.jit
def maximum(x, y):
    """The larger of x and y; NaN if either is NaN."""
    return tl.where((x > y) | (x != x), x, y)


@triton.jit
def minimum(x, y):
    """The smaller of x and y; NaN if either is NaN."""
    return tl.where((x < y) | (x != x), x, y)


@triton.jit
def fmax(x, y):
    """The larger of x and y, ignoring a NaN operand."""
    return tl.where((x > y) | (y != y), x, y)


@triton.jit
def fmin(x, y):
    """The smaller of x and y, ignoring a NaN operand."""
    return tl.where((x < y) | (y != y), x, y)


@triton.jit
def clamp(x, lo, hi):
    """ATen's clamp: max then min, a NaN bound gives NaN."""
    return minimum(maximum(x, lo), hi)


@triton.jit
def remainder(x, y):
    """Python's modulo on floats: the result takes the divisor's sign."""
    r = x % y
    return tl.where((r != 0) & ((r < 0) != (y < 0)), r + y, r)


@triton.jit
def gelu(x, tanh_approximation, LIBDEVICE: tl.constexpr):
    exact = 0.5 * x * (1 + erf(x * 0.7071067811865476, LIBDEVICE))
    approximate = 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x), LIBDEVICE))
    return tl.where(tanh_approximation != 0, approximate, exact)


@triton.jit
def gelu_backward(g, x, tanh_approximation, LIBDEVICE: tl.constexpr):
    cdf = 0.5 * (1 + erf(x * 0.7071067811865476, LIBDEVICE))
    pdf = exp(-0.5 * x * x, LIBDEVICE) * 0.3989422804014327
    exact = g * (cdf + x * pdf)
    inner = 0.7978845608028654 * (x + 0.044715 * x * x * x)
    t = tanh(inner, LIBDEVICE)
    slope = 0.7978845608028654 * (1 + 3 * 0.044715 * x * x)
    approximate = g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * slope)
    return tl.where(tanh_approximation != 0, approximate, exact)


@triton.jit
def softplus(x, beta, threshold, LIBDEVICE: tl.constexpr):
    return tl.where(x * beta > threshold, x, log1p(exp(x * beta, LIBDEVICE), LIBDEVICE) / beta)


@triton.jit
def softplus_backward(g, x, beta, threshold, LIBDEVICE: tl.constexpr):
    z = exp(x * beta, LIBDEVICE)
    return tl.where(x * beta > threshold, g, g * z / (z + 1))


@triton.jit
def elu(x, alpha, scale, input_scale, LIBDEVICE: tl.constexpr):
    return tl.where(x > 0, x * scale, expm1(x * input_scale, LIBDEVICE) * alpha * scale)


@triton.jit
def elu_backward(g, alpha, scale, input_scale, is_result, y, LIBDEVICE: tl.constexpr):
    """`y` is the forward's result when is_result, else its input."""
    from_result = g * input_scale * (y + alpha * scale)
    from_input = g * input_scale * alpha * scale * exp(y * input_scale, LIBDEVICE)
    return tl.where(y > 0, g * scale, tl.where(is_result != 0, from_result, from_input))


@triton.jit
def silu_backward(g, x, LIBDEVICE: tl.constexpr):
    s = sigmoid(x, LIBDEVICE)
    return g * s * (1 + x * (1 - s))


@triton.jit
def mish(x, LIBDEVICE: tl.constexpr):
    return x * tanh(softplus(x, 1.0, 20.0, LIBDEVICE), LIBDEVICE)


@triton.jit
def xlogy(x, y, LIBDEVICE: tl.constexpr):
    return tl.where(y != y, y, tl.where(x == 0, 0.0, x * log(y, LIBDEVICE)))


@triton.jit
def lerp(start, end, weight):
    """ATen's lerp: from the nearer end, so that weight 1 gives `end` exactly."""
    return tl.where(tl.abs(weight) < 0.5, start + weight * (end - start), end - (end - start) * (1 - weight))
