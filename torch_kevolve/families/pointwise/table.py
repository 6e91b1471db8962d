"""The pointwise operators: one row per operator, from which the kernels are generated.

A row names the schema arguments the expression reads (bound to a, b, c, ... in that order, each
cast to the compute dtype), the Triton expression, and the ATen overloads it serves: functional,
in-place (`op_`) and out variants all compute the same expression.
"""
from __future__ import annotations

from dataclasses import dataclass

# How the compute dtype follows the operands (torch._prims_common's promotion kinds, plus BOOL:
# every operand read as a boolean, as logical ops do).
DEFAULT, INT_TO_FLOAT, ALWAYS_BOOL, BOOL = "default", "int_to_float", "always_bool", "bool"
# Which compute dtypes a row accepts.
FLOAT, NUMERIC, INTEGRAL, ANY = "float", "numeric", "integral", "any"


@dataclass(frozen=True)
class PointwiseOp:
    """One elementwise operator: result = expression(a, b, ...) over broadcast operands.

    `operands`: schema argument names bound to a, b, c, ... (tensors or scalars).
    `promoted`: those that decide the compute dtype (default: all but `masks`).
    `masks`: operands read as booleans whatever their dtype (where's condition, masked_fill's mask).
    `encodings`: string arguments as numbers (gelu's approximate).
    `unbounded`: optional bounds that mean "no bound" when None, as "lowest" or "highest".
    """

    name: str
    operands: tuple[str, ...]
    expression: str
    overloads: tuple[str, ...]
    promotion: str = DEFAULT
    domain: str = NUMERIC
    promoted: tuple[str, ...] | None = None
    masks: tuple[str, ...] = ()
    encodings: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    unbounded: tuple[tuple[str, str], ...] = ()

    def promoting_operands(self) -> tuple[str, ...]:
        return self.promoted if self.promoted is not None else tuple(o for o in self.operands if o not in self.masks)


def _variants(name: str, *, functional=("default",), inplace=("default",), out=("out",)) -> tuple[str, ...]:
    """Overload names `name.X` for functional X, `name_.X` for in-place X, `name.X` for out X."""
    return tuple(f"{name}.{o}" for o in functional) + tuple(f"{name}_.{o}" for o in inplace) + \
        tuple(f"{name}.{o}" for o in out)


def _unary_float(name: str, expression: str) -> PointwiseOp:
    return PointwiseOp(name, ("self",), expression, _variants(name), INT_TO_FLOAT, FLOAT)


def _tensor_scalar(name: str, operands: tuple[str, ...], expression: str, **kwargs) -> PointwiseOp:
    """A binary operator with .Tensor/.Scalar overloads, their in-place forms and out forms."""
    overloads = _variants(name, functional=("Tensor", "Scalar"), inplace=("Tensor", "Scalar"),
                          out=kwargs.pop("out", ("out", "Scalar_out")))
    return PointwiseOp(name, operands, expression, overloads, **kwargs)


def _comparison(name: str, symbol: str) -> PointwiseOp:
    return _tensor_scalar(name, ("self", "other"), f"a {symbol} b", promotion=ALWAYS_BOOL, domain=ANY,
                          out=("Tensor_out", "Scalar_out"))


def _backward(name: str, operands: tuple[str, ...], expression: str, out: str = "grad_input") -> PointwiseOp:
    return PointwiseOp(name, operands, expression, (f"{name}.default", f"{name}.{out}"), DEFAULT, FLOAT)


_APPROXIMATE = (("approximate", (("none", 0), ("tanh", 1))),)

OPS: tuple[PointwiseOp, ...] = (
    # unary, float results
    _unary_float("exp", "exp(a, LIBDEVICE)"),
    _unary_float("exp2", "exp2(a, LIBDEVICE)"),
    _unary_float("expm1", "expm1(a, LIBDEVICE)"),
    _unary_float("log", "log(a, LIBDEVICE)"),
    _unary_float("log2", "log2(a, LIBDEVICE)"),
    _unary_float("log10", "log(a, LIBDEVICE) * 0.4342944819032518"),
    _unary_float("log1p", "log1p(a, LIBDEVICE)"),
    _unary_float("sqrt", "tl.sqrt_rn(a)"),
    _unary_float("rsqrt", "1 / tl.sqrt_rn(a)"),
    _unary_float("reciprocal", "1 / a"),
    _unary_float("sin", "sin(a, LIBDEVICE)"),
    _unary_float("cos", "cos(a, LIBDEVICE)"),
    _unary_float("tan", "tan(a, LIBDEVICE)"),
    _unary_float("sinh", "(exp(a, LIBDEVICE) - exp(-a, LIBDEVICE)) * 0.5"),
    _unary_float("cosh", "(exp(a, LIBDEVICE) + exp(-a, LIBDEVICE)) * 0.5"),
    _unary_float("tanh", "tanh(a, LIBDEVICE)"),
    _unary_float("sigmoid", "sigmoid(a, LIBDEVICE)"),
    _unary_float("erf", "erf(a, LIBDEVICE)"),
    # unary, same dtype
    PointwiseOp("abs", ("self",), "tl.abs(a)", _variants("abs")),
    PointwiseOp("neg", ("self",), "-a", _variants("neg")),
    PointwiseOp("floor", ("self",), "tl.floor(a)", _variants("floor"), domain=FLOAT),
    PointwiseOp("ceil", ("self",), "tl.ceil(a)", _variants("ceil"), domain=FLOAT),
    PointwiseOp("trunc", ("self",), "trunc(a)", _variants("trunc"), domain=FLOAT),
    PointwiseOp("frac", ("self",), "a - trunc(a)", _variants("frac"), domain=FLOAT),
    PointwiseOp("relu", ("self",), "tl.where(a < 0, 0, a)", _variants("relu")),
    PointwiseOp("logical_not", ("self",), "a == 0", _variants("logical_not"), BOOL, ANY, masks=("self",)),
    PointwiseOp("bitwise_not", ("self",), "~a", _variants("bitwise_not"), domain=INTEGRAL),
    PointwiseOp("isnan", ("self",), "a != a", ("isnan.default",), ALWAYS_BOOL, ANY),
    # activations
    PointwiseOp("gelu", ("self", "approximate"), "gelu(a, b, LIBDEVICE)", _variants("gelu"), domain=FLOAT,
                promoted=("self",), encodings=_APPROXIMATE),
    PointwiseOp("silu", ("self",), "a * sigmoid(a, LIBDEVICE)", _variants("silu"), domain=FLOAT),
    PointwiseOp("mish", ("self",), "mish(a, LIBDEVICE)", _variants("mish"), domain=FLOAT),
    PointwiseOp("elu", ("self", "alpha", "scale", "input_scale"), "elu(a, b, c, d, LIBDEVICE)", _variants("elu"),
                domain=FLOAT, promoted=("self",)),
    PointwiseOp("selu", ("self",), "elu(a, 1.6732632423543772, 1.0507009873554805, 1.0, LIBDEVICE)",
                _variants("selu", out=()), domain=FLOAT),
    PointwiseOp("leaky_relu", ("self", "negative_slope"), "tl.where(a > 0, a, a * b)", _variants("leaky_relu"),
                domain=FLOAT, promoted=("self",)),
    PointwiseOp("hardtanh", ("self", "min_val", "max_val"), "clamp(a, b, c)", _variants("hardtanh"),
                domain=FLOAT, promoted=("self",)),
    PointwiseOp("hardsigmoid", ("self",), "clamp(a / 6 + 0.5, 0.0, 1.0)", _variants("hardsigmoid"), domain=FLOAT),
    PointwiseOp("hardswish", ("self",), "a * clamp(a + 3, 0.0, 6.0) / 6", _variants("hardswish"), domain=FLOAT),
    PointwiseOp("softplus", ("self", "beta", "threshold"), "softplus(a, b, c, LIBDEVICE)",
                _variants("softplus", inplace=()), domain=FLOAT, promoted=("self",)),
    PointwiseOp("threshold", ("self", "threshold", "value"), "tl.where(a <= b, c, a)", _variants("threshold"),
                promoted=("self",)),
    # backward of activations
    _backward("sigmoid_backward", ("grad_output", "output"), "a * (1 - b) * b"),
    _backward("tanh_backward", ("grad_output", "output"), "a * (1 - b * b)"),
    PointwiseOp("threshold_backward", ("grad_output", "self", "threshold"), "tl.where(b <= c, 0, a)",
                ("threshold_backward.default", "threshold_backward.grad_input"), promoted=("grad_output", "self")),
    PointwiseOp("gelu_backward", ("grad_output", "self", "approximate"), "gelu_backward(a, b, c, LIBDEVICE)",
                ("gelu_backward.default", "gelu_backward.grad_input"), domain=FLOAT,
                promoted=("grad_output", "self"), encodings=_APPROXIMATE),
    _backward("silu_backward", ("grad_output", "self"), "silu_backward(a, b, LIBDEVICE)"),
    PointwiseOp("elu_backward", ("grad_output", "alpha", "scale", "input_scale", "is_result", "self_or_result"),
                "elu_backward(a, b, c, d, e, f, LIBDEVICE)", ("elu_backward.default", "elu_backward.grad_input"),
                domain=FLOAT, promoted=("grad_output", "self_or_result")),
    PointwiseOp("leaky_relu_backward", ("grad_output", "self", "negative_slope"), "tl.where(b > 0, a, a * c)",
                ("leaky_relu_backward.default", "leaky_relu_backward.grad_input"), domain=FLOAT,
                promoted=("grad_output", "self")),
    PointwiseOp("hardtanh_backward", ("grad_output", "self", "min_val", "max_val"),
                "tl.where((b <= c) | (b >= d), 0.0, a)", ("hardtanh_backward.default", "hardtanh_backward.grad_input"),
                domain=FLOAT, promoted=("grad_output", "self")),
    PointwiseOp("softplus_backward", ("grad_output", "self", "beta", "threshold"),
                "softplus_backward(a, b, c, d, LIBDEVICE)",
                ("softplus_backward.default", "softplus_backward.grad_input"), domain=FLOAT,
                promoted=("grad_output", "self")),
    _backward("hardsigmoid_backward", ("grad_output", "self"), "tl.where((b > -3) & (b < 3), a / 6, 0.0)"),
    _backward("hardswish_backward", ("grad_output", "self"),
              "tl.where(b < -3, 0.0, tl.where(b <= 3, a * (b / 3 + 0.5), a))", out="out"),
    # binary arithmetic
    # add.Scalar_out and sub.Scalar_out are left out: their meta kernels reject alpha (torch 2.13).
    _tensor_scalar("add", ("self", "other", "alpha"), "a + b * c", promoted=("self", "other"), out=("out",)),
    _tensor_scalar("sub", ("self", "other", "alpha"), "a - b * c", promoted=("self", "other"), out=("out",)),
    PointwiseOp("rsub", ("self", "other", "alpha"), "b - a * c", ("rsub.Tensor", "rsub.Scalar"),
                promoted=("self", "other")),
    _tensor_scalar("mul", ("self", "other"), "a * b"),
    _tensor_scalar("div", ("self", "other"), "a / b", promotion=INT_TO_FLOAT, domain=FLOAT),
    _tensor_scalar("remainder", ("self", "other"), "remainder(a, b)", domain=FLOAT, out=("Tensor_out", "Scalar_out")),
    _tensor_scalar("fmod", ("self", "other"), "a % b", domain=FLOAT, out=("Tensor_out", "Scalar_out")),
    PointwiseOp("pow", ("self", "exponent"), "pow(a, b, LIBDEVICE)",
                ("pow.Tensor_Tensor", "pow.Tensor_Scalar", "pow.Scalar", "pow_.Tensor", "pow_.Scalar",
                 "pow.Tensor_Tensor_out", "pow.Tensor_Scalar_out", "pow.Scalar_out"), domain=FLOAT),
    PointwiseOp("maximum", ("self", "other"), "maximum(a, b)", ("maximum.default", "maximum.out"), domain=ANY),
    PointwiseOp("minimum", ("self", "other"), "minimum(a, b)", ("minimum.default", "minimum.out"), domain=ANY),
    PointwiseOp("fmax", ("self", "other"), "fmax(a, b)", ("fmax.default", "fmax.out"), domain=FLOAT),
    PointwiseOp("fmin", ("self", "other"), "fmin(a, b)", ("fmin.default", "fmin.out"), domain=FLOAT),
    PointwiseOp("xlogy", ("self", "other"), "xlogy(a, b, LIBDEVICE)",
                ("xlogy.Tensor", "xlogy.Scalar_Self", "xlogy.Scalar_Other", "xlogy_.Tensor", "xlogy_.Scalar_Other",
                 "xlogy.OutTensor", "xlogy.OutScalar_Self", "xlogy.OutScalar_Other"), INT_TO_FLOAT, FLOAT),
    # clamps
    PointwiseOp("clamp", ("self", "min", "max"), "clamp(a, b, c)",
                _variants("clamp", functional=("default", "Tensor"), inplace=("default", "Tensor"),
                          out=("out", "Tensor_out")), unbounded=(("min", "lowest"), ("max", "highest"))),
    PointwiseOp("clamp_min", ("self", "min"), "maximum(a, b)",
                _variants("clamp_min", functional=("default", "Tensor"), inplace=("default", "Tensor"),
                          out=("out", "Tensor_out"))),
    PointwiseOp("clamp_max", ("self", "max"), "minimum(a, b)",
                _variants("clamp_max", functional=("default", "Tensor"), inplace=("default", "Tensor"),
                          out=("out", "Tensor_out"))),
    # comparisons, logical and bitwise
    _comparison("eq", "=="),
    _comparison("ne", "!="),
    _comparison("lt", "<"),
    _comparison("le", "<="),
    _comparison("gt", ">"),
    _comparison("ge", ">="),
    PointwiseOp("logical_and", ("self", "other"), "a & b", _variants("logical_and"), BOOL, ANY, masks=("self", "other")),
    PointwiseOp("logical_or", ("self", "other"), "a | b", _variants("logical_or"), BOOL, ANY, masks=("self", "other")),
    PointwiseOp("logical_xor", ("self", "other"), "a ^ b", _variants("logical_xor"), BOOL, ANY, masks=("self", "other")),
    _tensor_scalar("bitwise_and", ("self", "other"), "a & b", domain=INTEGRAL, out=("Tensor_out", "Scalar_out")),
    _tensor_scalar("bitwise_or", ("self", "other"), "a | b", domain=INTEGRAL, out=("Tensor_out", "Scalar_out")),
    _tensor_scalar("bitwise_xor", ("self", "other"), "a ^ b", domain=INTEGRAL, out=("Tensor_out", "Scalar_out")),
    # selection and ternary
    PointwiseOp("where", ("condition", "self", "other"), "tl.where(a, b, c)",
                ("where.self", "where.ScalarSelf", "where.ScalarOther", "where.self_out"),
                domain=ANY, masks=("condition",)),
    PointwiseOp("masked_fill", ("self", "mask", "value"), "tl.where(b, c, a)",
                _variants("masked_fill", functional=("Scalar", "Tensor"), inplace=("Scalar", "Tensor"),
                          out=("Scalar_out", "Tensor_out")), domain=ANY, promoted=("self",), masks=("mask",)),
    PointwiseOp("lerp", ("self", "end", "weight"), "lerp(a, b, c)",
                _variants("lerp", functional=("Scalar", "Tensor"), inplace=("Scalar", "Tensor"),
                          out=("Scalar_out", "Tensor_out")), domain=FLOAT),
    PointwiseOp("addcmul", ("self", "tensor1", "tensor2", "value"), "a + d * b * c", _variants("addcmul"),
                promoted=("self", "tensor1", "tensor2")),
    PointwiseOp("addcdiv", ("self", "tensor1", "tensor2", "value"), "a + d * (b / c)", _variants("addcdiv"),
                domain=FLOAT, promoted=("self", "tensor1", "tensor2")),
)
