"""Graph fuzzing: hypothesis builds random computational graphs and checks every gradient.

Every node keeps, beside its Tensor, the same function written in plain numpy of the leaf values
(a closure). Graphs grow by random ops on random broadcastable shapes, re-use nodes (diamonds, x * x),
cut them with detach() and no_grad(), and interleave backward() / grad() with and without
retain_graph. Each check compares the gradients with float64 central differences of the numpy
function; k backward passes with retain_graph accumulate k times the gradient; a backward that
reaches a released node raises. Values are kept away from kinks (relu, abs, maximum), poles
(division) and overflow (exp) so that central differences are exact to ~1e-8.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

import tinygrad_jp as tg
from tinygrad_jp import Tensor

EPS = 1e-6
MAX_NODES = 14
MAX_SIZE = 24
MAX_ABS = 30.0
MARGIN = 1e-2  # distance kept from kinks and ties

NumpyFn = Callable[[dict, dict], np.ndarray]


@dataclass(eq=False)
class Node:
    tensor: Tensor
    fn: NumpyFn  # (leaf values, memo) -> value, in plain numpy
    ancestors: frozenset  # ids of interior nodes backward would visit (including this one)
    leaves: frozenset  # ids of leaves with requires_grad that backward would reach


def _unary_ops() -> dict:
    def sigmoid(a):
        return 1 / (1 + np.exp(-a))

    return {
        "neg": (lambda t: -t, np.negative, None),
        "tanh": (lambda t: t.tanh(), np.tanh, None),
        "sigmoid": (lambda t: t.sigmoid(), sigmoid, None),
        "exp": (lambda t: t.exp(), np.exp, lambda a: np.all(a < 2)),
        "relu": (lambda t: t.relu(), lambda a: np.maximum(a, 0), lambda a: np.all(np.abs(a) > MARGIN)),
        "abs": (lambda t: abs(t), np.abs, lambda a: np.all(np.abs(a) > MARGIN)),
        "square": (lambda t: t * t, np.square, None),
        "scale": (lambda t: t * 0.5 - 1.0, lambda a: a * 0.5 - 1.0, None),
        "F.relu": (tg.F.relu, lambda a: np.maximum(a, 0), lambda a: np.all(np.abs(a) > MARGIN)),
    }


def _binary_ops() -> dict:
    return {
        "add": (lambda a, b: a + b, np.add, None),
        "sub": (lambda a, b: a - b, np.subtract, None),
        "mul": (lambda a, b: a * b, np.multiply, None),
        "div": (lambda a, b: a / b, np.divide, lambda a, b: np.all(np.abs(b) > 0.5)),
        "maximum": (lambda a, b: a.maximum(b), np.maximum, lambda a, b: np.all(np.abs(a - b) > MARGIN)),
        "tg.maximum": (lambda a, b: tg.maximum(a, b), np.maximum, lambda a, b: np.all(np.abs(a - b) > MARGIN)),
    }


UNARY = _unary_ops()
BINARY = _binary_ops()


def _broadcastable(a: tuple, b: tuple) -> bool:
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return True


class GraphMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.nodes: list[Node] = []
        self.leaf_tensors: dict[int, Tensor] = {}
        self.values: dict[int, np.ndarray] = {}
        self.released: set[int] = set()
        self.poisoned: set[int] = set()  # interior nodes in an unknown state after a refused backward
        self.ids = itertools.count()

    # ------------------------------------------------------------------ building
    def _append(self, node: Node) -> None:
        """Keep a bounded pool: forget nodes whose graph is spent, else the older half.

        Forgotten nodes live on inside the numpy closures of the nodes built on them.
        """
        self.nodes.append(node)
        if len(self.nodes) > MAX_NODES:
            spent = self.released | self.poisoned
            keep = [n for n in self.nodes if not (n.ancestors & spent)]
            self.nodes = keep if len(keep) < len(self.nodes) else self.nodes[len(self.nodes) // 2:]

    def _leaf(self, value: np.ndarray, requires_grad: bool = True) -> Node:
        t = Tensor(value, requires_grad=requires_grad)
        if not requires_grad:
            node = Node(t, lambda L, memo, v=value: v, frozenset(), frozenset())
        else:
            lid = next(self.ids)
            self.leaf_tensors[lid] = t
            self.values[lid] = t.data.copy()
            node = Node(t, lambda L, memo, lid=lid: L[lid], frozenset(), frozenset({lid}))
        self._append(node)
        return node

    def _add(self, tensor: Tensor, parents: list[Node], np_op: Callable[..., np.ndarray]) -> Node:
        """Record the result of an op applied to `parents`, after checking its forward value."""
        nid = next(self.ids)

        def fn(L, memo, parents=parents, nid=nid):
            if nid not in memo:
                memo[nid] = np.asarray(np_op(*[p.fn(L, memo) for p in parents]), dtype=np.float64)
            return memo[nid]

        expected = fn(self.values, {})
        assert tensor.shape == expected.shape, (tensor.shape, expected.shape)
        assert tensor.dtype == np.float64
        np.testing.assert_allclose(tensor.data, expected, rtol=1e-12, atol=1e-12)
        if expected.size > MAX_SIZE or not np.all(np.abs(expected) < MAX_ABS):
            return None  # checked, but too big to build on
        live = [p for p in parents if p.tensor.requires_grad]
        assert tensor.requires_grad == bool(live)
        ancestors = frozenset().union(*(p.ancestors for p in live)) | ({nid} if live else set())
        leaves = frozenset().union(*(p.leaves for p in live))
        node = Node(tensor, fn, ancestors, leaves)
        self._append(node)
        return node

    def _pick(self, data, where=lambda n: True, label: str = "node") -> Node | None:
        """A random node satisfying `where`, or None (the step then does nothing).

        A failed assume() would throw away the whole sequence of steps, so rules skip instead.
        """
        candidates = [n for n in self.nodes if where(n)]
        if not candidates:
            return None
        # Half the time one of the newest nodes, so that graphs grow deep rather than wide.
        return data.draw(st.sampled_from(candidates[-3:]) | st.sampled_from(candidates), label=label)

    @initialize(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), data=st.data())
    def first_leaf(self, shape, data):
        self._leaf(data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-2, 2)), label="leaf"))

    @rule(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), requires_grad=st.booleans(), data=st.data())
    def new_leaf(self, shape, requires_grad, data):
        self._leaf(data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-2, 2)), label="leaf"), requires_grad)

    @rule(name=st.sampled_from(sorted(UNARY)), data=st.data())
    def unary(self, name, data):
        op, ref, ok = UNARY[name]
        x = self._pick(data, lambda n: ok is None or ok(n.tensor.data))
        if x is not None:
            self._add(op(x.tensor), [x], ref)

    @rule(name=st.sampled_from(sorted(BINARY)), data=st.data(), swap=st.booleans())
    def binary(self, name, data, swap):
        op, ref, ok = BINARY[name]
        a = self._pick(data, label="a")
        if a is None:
            return
        b = self._pick(data, lambda n: _broadcastable(n.tensor.shape, a.tensor.shape), label="b")  # b may be a
        if swap:
            a, b = b, a
        if ok is None or ok(a.tensor.data, b.tensor.data):
            self._add(op(a.tensor, b.tensor), [a, b], ref)

    @rule(data=st.data(), constant=st.floats(-2, 2))
    def with_a_python_number(self, data, constant):
        x = self._pick(data)
        if x is None:
            return
        self._add(constant - x.tensor * constant, [x], lambda a: constant - a * constant)

    @rule(data=st.data(), mean=st.booleans(), keepdims=st.booleans())
    def reduce(self, data, mean, keepdims):
        x = self._pick(data)
        if x is None:
            return
        nd = x.tensor.ndim
        axis = data.draw(st.one_of(st.none(), st.integers(-nd, nd - 1) if nd else st.none(),
                                   st.lists(st.integers(0, max(nd - 1, 0)), unique=True).map(tuple)
                                   if nd else st.none()), label="axis")
        t = x.tensor.mean(axis=axis, keepdims=keepdims) if mean else x.tensor.sum(axis=axis, keepdims=keepdims)
        np_op = np.mean if mean else np.sum
        self._add(t, [x], lambda a: np_op(a, axis=axis, keepdims=keepdims))

    @rule(data=st.data(), how=st.sampled_from(["flat", "reversed", "unit", "column"]))
    def reshape(self, data, how):
        x = self._pick(data)
        if x is None:
            return
        shape = x.tensor.shape
        target = {"flat": (-1,), "reversed": shape[::-1], "unit": (1, *shape), "column": (-1, 1)}[how]
        self._add(x.tensor.reshape(target), [x], lambda a: a.reshape(target))

    @rule(data=st.data())
    def transpose(self, data):
        x = self._pick(data, lambda n: n.tensor.ndim >= 2)
        if x is None:
            return
        axes = tuple(data.draw(st.permutations(range(x.tensor.ndim)), label="axes"))
        self._add(x.tensor.transpose(axes), [x], lambda a: a.transpose(axes))

    @rule(data=st.data(), lead=st.integers(1, 3))
    def broadcast_to(self, data, lead):
        x = self._pick(data)
        if x is None:
            return
        target = (lead, *(3 if n == 1 else n for n in x.tensor.shape))
        self._add(x.tensor.broadcast_to(target), [x], lambda a: np.broadcast_to(a, target))

    @rule(data=st.data(), kind=st.sampled_from(["int", "slice", "array", "column"]))
    def getitem(self, data, kind):
        x = self._pick(data, lambda n: n.tensor.ndim >= (2 if kind == "column" else 1))
        if x is None:
            return
        n0 = x.tensor.shape[0]
        if kind == "int":
            index = data.draw(st.integers(-n0, n0 - 1), label="i")
        elif kind == "slice":
            index = slice(data.draw(st.integers(0, n0 - 1), label="start"), None, data.draw(st.integers(1, 2)))
        elif kind == "array":  # always with a repeat: repeated indices must accumulate
            rows = data.draw(st.lists(st.integers(0, n0 - 1), min_size=1, max_size=3), label="rows")
            index = np.array([*rows, rows[0]])
        else:
            index = (slice(None), data.draw(st.integers(0, x.tensor.shape[1] - 1), label="j"))
        self._add(x.tensor[index], [x], lambda a: a[index])

    @rule(data=st.data(), m=st.integers(1, 3), vector=st.booleans())
    def matmul(self, data, m, vector):
        a = self._pick(data, lambda n: n.tensor.ndim >= 1, label="a")
        if a is None:
            return
        k = a.tensor.shape[-1]

        def aligned(n):
            s = n.tensor.shape
            if n.tensor.ndim == 1:
                return s[0] == k
            return n.tensor.ndim >= 2 and s[-2] == k and _broadcastable(s[:-2], a.tensor.shape[:-1][:-1])

        partners = [n for n in self.nodes if aligned(n)]
        if partners and data.draw(st.booleans(), label="reuse"):
            b = data.draw(st.sampled_from(partners), label="b")
        else:
            shape = (k,) if vector else (k, m)
            b = self._leaf(data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-1, 1)), label="w"))
        self._add(a.tensor @ b.tensor, [a, b], np.matmul)

    @rule(data=st.data())
    def diamond(self, data):
        x = self._pick(data, lambda n: np.all(n.tensor.data < 2))
        if x is not None:
            self._add(x.tensor.tanh() * x.tensor.exp() + x.tensor, [x], lambda a: np.tanh(a) * np.exp(a) + a)

    @rule(data=st.data(), name=st.sampled_from(sorted(UNARY)), detach=st.booleans())
    def cut(self, data, name, detach):
        """detach(), or an op under no_grad(): the result is a constant for every later gradient."""
        op, _, ok = UNARY[name]
        x = self._pick(data, lambda n: ok is None or ok(n.tensor.data))
        if x is None:
            return
        if detach:
            t = x.tensor.detach()
        else:
            with tg.no_grad():
                t = op(x.tensor)
        assert not t.requires_grad and t.grad_fn is None
        value = t.data.copy()
        self._append(Node(t, lambda L, memo, v=value: v, frozenset(), frozenset()))

    # ------------------------------------------------------------------ checking
    def _usable(self, n: Node) -> bool:
        return n.tensor.requires_grad and not (n.ancestors & self.poisoned)

    def _numeric(self, node: Node, v: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per leaf: central differences of sum(v * f) and an estimate of their own error.

        Differences with steps h and h/2 are combined (Richardson) into an O(h⁴) estimate; their gap
        bounds its error, which matters where chained ops amplify curvature (a diamond applied 13
        times has slope 2¹³ at 0).
        """
        def diff(lid, idx, h):
            vals = []
            for step in (h, -h):
                L = dict(self.values)
                L[lid] = self.values[lid].copy()
                L[lid][idx] += step
                vals.append(np.sum(v * node.fn(L, {})))
            return (vals[0] - vals[1]) / (2 * h)

        out = {}
        for lid in node.leaves:
            shape = self.values[lid].shape
            g, err = np.zeros(shape), np.zeros(shape)
            for idx in np.ndindex(shape):
                coarse, fine = diff(lid, idx, EPS), diff(lid, idx, EPS / 2)
                g[idx] = (4 * fine - coarse) / 3
                err[idx] = abs(fine - coarse)
            out[lid] = (g, err)
        return out

    def _zero_grads(self):
        for t in self.leaf_tensors.values():
            t.grad = None

    def _fresh(self, n: Node) -> bool:
        return self._usable(n) and not (n.ancestors & self.released)

    def _stale(self, n: Node) -> bool:
        return self._usable(n) and bool(n.ancestors & self.released)

    @precondition(lambda self: any(self._fresh(n) for n in self.nodes))
    @rule(data=st.data(), retained=st.integers(0, 2), release=st.booleans(), use_grad=st.booleans())
    def check_gradients(self, data, retained, release, use_grad):
        """`retained` passes with retain_graph=True and a last one that releases the graph or not.

        The gradients of all passes add up to (retained + 1) × the gradient.
        """
        fresh = [n for n in self.nodes if self._fresh(n)]
        deepest = max(fresh, key=lambda n: len(n.ancestors))
        node = data.draw(st.just(deepest) | st.sampled_from(fresh), label="out")
        v = data.draw(hnp.arrays(np.float64, node.tensor.shape, elements=st.floats(0.5, 1.5)), label="v")
        self._check(node, v, retained, release, use_grad)

    def teardown(self):
        """Every run ends with a check of its deepest live graph, however few check steps it drew."""
        fresh = [n for n in self.nodes if self._fresh(n)]
        if fresh:
            node = max(fresh, key=lambda n: len(n.ancestors))
            self._check(node, np.linspace(0.5, 1.5, node.tensor.size).reshape(node.tensor.shape), 1, True, False)

    def _check(self, node: Node, v: np.ndarray, retained: int, release: bool, use_grad: bool) -> None:
        expected = self._numeric(node, v)
        loss = (node.tensor * v).sum()
        self._zero_grads()
        leaves = list(expected)
        if use_grad:
            total = {lid: 0.0 for lid in leaves}
            for i in range(retained + 1):
                gs = tg.grad(loss, [self.leaf_tensors[lid] for lid in leaves], retain_graph=i < retained or not release)
                for lid, g in zip(leaves, gs):
                    total[lid] = total[lid] + g.data
            assert all(t.grad is None for t in self.leaf_tensors.values())  # grad() leaves .grad alone
        else:
            for i in range(retained + 1):
                loss.backward(retain_graph=i < retained or not release)
            total = {lid: self.leaf_tensors[lid].grad for lid in leaves}
            for lid, t in self.leaf_tensors.items():
                if lid not in expected:
                    assert t.grad is None, "a leaf outside the graph received a gradient"
        for lid in leaves:
            assert total[lid].shape == self.values[lid].shape
            g, err = expected[lid]
            k = retained + 1
            bad = np.abs(total[lid] - k * g) > k * (1e-6 + 1e-5 * np.abs(g) + err)
            assert not bad.any(), f"leaf {lid}: analytic {total[lid]} but numerical {k} x {g} (error ~{err})"
        if release:
            self.released |= node.ancestors

    @precondition(lambda self: any(self._stale(n) for n in self.nodes))
    @rule(data=st.data(), use_grad=st.booleans())
    def backward_through_a_released_graph_raises(self, data, use_grad):
        node = self._pick(data, self._stale)
        loss = (node.tensor * 1.0).sum()
        with pytest.raises(RuntimeError, match="second time"):
            if use_grad and node.leaves:
                tg.grad(loss, [self.leaf_tensors[lid] for lid in node.leaves])
            else:
                loss.backward()
        # Nodes visited before the released one are now released too; which ones depends on the schedule.
        self.poisoned |= node.ancestors

    @precondition(lambda self: any(not n.tensor.requires_grad for n in self.nodes))
    @rule(data=st.data())
    def tensors_without_a_graph_refuse_backward(self, data):
        node = self._pick(data, lambda n: not n.tensor.requires_grad)
        with pytest.raises(RuntimeError, match="requires grad"):
            node.tensor.sum().backward()


GraphMachine.TestCase.settings = settings(
    settings.default, max_examples=2 * settings.default.max_examples, stateful_step_count=40
)
TestGraphs = GraphMachine.TestCase
