"""Higher-order helpers built on gradients(): Hessian-vector products, forward-mode JVPs
(by the double-VJP trick) and full Hessians for small inputs."""
from __future__ import annotations

from ..graph import user_location
from ..ops import reduce, shape as sh
from ..ops.control import stop_gradient
from ..ops.source import convert_to_tensor, zeros_like
from .gradients import GradientError, _as_list, gradients


def hessian_vector_product(ys, xs, vs, name: str = "hessian_vector_product") -> list:
    """H·v where H is the Hessian of sum(ys) with respect to xs, without forming H."""
    xs, vs = _as_list(xs), _as_list(vs)
    if len(xs) != len(vs):
        raise GradientError(f"hessian_vector_product at {user_location()}: {len(xs)} xs but {len(vs)} vs")
    grads = gradients(ys, xs, name=name)
    products = [reduce.reduce_sum(g * stop_gradient(convert_to_tensor(v)))
                for g, v in zip(grads, vs) if g is not None]
    if not products:
        return [None] * len(xs)
    return gradients(products, xs, name=name)


def jvp(ys, xs, vs, name: str = "jvp") -> list:
    """Forward-mode derivative J·v of each y along ``vs`` (one per x).

    The double-VJP trick: g(u) = J^T u is linear in a dummy cotangent u, so the gradient of
    <g(u), v> with respect to u is J v.
    """
    ys_list, xs, vs = _as_list(ys), _as_list(xs), _as_list(vs)
    if len(xs) != len(vs):
        raise GradientError(f"jvp at {user_location()}: {len(xs)} xs but {len(vs)} vs")
    ys_list = [convert_to_tensor(y) for y in ys_list]
    dummies = [zeros_like(y) for y in ys_list]
    vjps = gradients(ys_list, xs, grad_ys=dummies, name=name)
    pairs = [(g, convert_to_tensor(v)) for g, v in zip(vjps, vs) if g is not None]
    if not pairs:
        return [None] * len(ys_list)
    inner = [reduce.reduce_sum(g * v) for g, v in pairs]
    return gradients(inner, dummies, name=name, unconnected_gradients="zero")


def hessians(ys, xs, name: str = "hessians") -> list:
    """The Hessian of sum(ys) with respect to each x, shaped ``x.shape + x.shape``.

    It takes one gradient per element of x, so it is meant for small inputs; x must have a
    fully known shape.
    """
    results = []
    for x in _as_list(xs):
        x_shape = x.shape
        if not x_shape.is_fully_defined():
            raise GradientError(f"hessians at {user_location()}: '{x.name}' has shape {x_shape}; hessians "
                                "needs a fully known shape")
        n = x_shape.num_elements()
        (g,) = gradients(ys, [x], name=name)
        if g is None:
            results.append(None)
            continue
        flat = sh.reshape(g, (n,))
        rows = []
        for i in range(n):
            (row,) = gradients(flat[i], [x], name=name, unconnected_gradients="zero")
            rows.append(sh.reshape(row, (n,)))
        results.append(sh.reshape(sh.stack(rows), tuple(x_shape) + tuple(x_shape)))
    return results
