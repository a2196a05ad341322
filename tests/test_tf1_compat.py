"""TF1 programs port by changing the import: variable scopes and get_variable with TF1's reuse
rules and error texts, collections, gc.Module, TF1's initializers, the TF1 signatures that
differ from TF2's, TF1 names (tf.app, tf.flags, tf.contrib, tf.device, ...), and the error for
a TF1 name graphc lacks."""
import subprocess
import sys

import numpy as np
import pytest

import graphc as gc
from graphc.compat import MISSING
from support import build_error


@pytest.fixture(autouse=True)
def fresh_graph():
    with gc.Graph().as_default() as g:
        yield g


def run(fetches, feed_dict=None):
    with gc.Session(device="reference") as sess:
        sess.run(gc.global_variables_initializer())
        return sess.run(fetches, feed_dict)


# --- variable scopes ---------------------------------------------------------------------------------
def test_get_variable_is_named_by_variable_scopes_not_name_scopes():
    with gc.name_scope("step"):
        with gc.variable_scope("rnn") as scope:
            w = gc.get_variable("w", [2, 3])
            c = gc.constant(1.0, name="c")
            with gc.variable_scope("cell"):
                b = gc.get_variable("b", [3], initializer=gc.zeros_initializer())
    assert (w.name, b.name, c.name) == ("rnn/w:0", "rnn/cell/b:0", "step/rnn/c:0")
    assert scope.name == "rnn" and scope.original_name_scope == "step/rnn/"
    assert w.shape == (2, 3) and w.dtype is gc.float32
    np.testing.assert_array_equal(run(b), np.zeros(3, np.float32))


def test_reuse_true_shares_and_reuse_none_refuses_with_tf1s_texts():
    with gc.variable_scope("foo"):
        v = gc.get_variable("v", [1])
    with gc.variable_scope("foo", reuse=True):
        assert gc.get_variable("v", [1]) is v
        with gc.variable_scope("inner"):  # reuse is inherited
            assert gc.get_variable_scope().reuse is True
    with gc.variable_scope("foo") as scope:
        scope.reuse_variables()
        assert gc.get_variable("v") is v
    # the texts TF1 users search for, with the lines
    build_error(ValueError, lambda: _in_scope("foo", None, lambda: gc.get_variable("v", [1])),
                "Variable foo/v already exists, disallowed. Did you mean to set reuse=True", "test_tf1_compat.py")
    build_error(ValueError, lambda: _in_scope("foo", True, lambda: gc.get_variable("w", [1])),
                "Variable foo/w does not exist, or was not created with gc.get_variable()")
    build_error(ValueError, lambda: _in_scope("foo", True, lambda: gc.get_variable("v", [2])),
                "Trying to share variable foo/v, but specified shape (2,) and found shape (1,)")
    build_error(ValueError, lambda: _in_scope("foo", True, lambda: gc.get_variable("v", [1], dtype=gc.float64)),
                "specified dtype float64 and found dtype float32")
    build_error(gc.VariableScopeError, lambda: gc.variable_scope("x", reuse="yes").__enter__(), "reuse must be")


def _in_scope(name, reuse, make):
    with gc.variable_scope(name, reuse=reuse):
        return make()


def test_auto_reuse_makes_then_shares():
    def layer(x):
        with gc.variable_scope("shared", reuse=gc.AUTO_REUSE):
            w = gc.get_variable("w", [3, 2], initializer=gc.constant_initializer(0.5))
            return gc.matmul(x, w)
    x = np.ones((1, 3), np.float32)
    a, b = layer(x), layer(x)
    assert len(gc.trainable_variables()) == 1
    np.testing.assert_allclose(run([a, b]), [[[1.5, 1.5]], [[1.5, 1.5]]])


def test_default_name_scopes_are_made_unique_and_scope_objects_reenter():
    names = []
    for _ in range(3):
        with gc.variable_scope(None, default_name="dense"):
            names.append(gc.get_variable("kernel", [1]).var_name)
    assert names == ["dense/kernel", "dense_1/kernel", "dense_2/kernel"]
    with gc.variable_scope("outer") as outer:
        pass
    with gc.variable_scope("elsewhere"):
        with gc.variable_scope(outer):  # a scope object is re-entered as it is, wherever this is
            assert gc.get_variable("z", [1]).var_name == "outer/z"
    build_error(gc.VariableScopeError, lambda: gc.variable_scope(None).__enter__(), "default_name")


def test_scope_initializer_regularizer_and_dtype_are_inherited():
    with gc.variable_scope("s", initializer=gc.constant_initializer(2.0), dtype=gc.float64,
                           regularizer=gc.contrib.layers.l2_regularizer(0.1)):
        with gc.variable_scope("t"):
            v = gc.get_variable("v", [2])
        n = gc.get_variable("n", [], dtype=gc.int32)  # the scope's initializer, whatever the dtype
        gc.get_variable("u", [2], regularizer=gc.contrib.layers.l1_regularizer(1.0))
    k = gc.get_variable("k", [], dtype=gc.int32)  # without one, integers start at zero
    assert v.dtype is gc.float64 and n.dtype is gc.int32
    losses = gc.get_collection(gc.GraphKeys.REGULARIZATION_LOSSES)
    assert len(losses) == 3  # v, n (the scope's l2) and u (its own l1)
    got = run([v, n] + losses)
    np.testing.assert_allclose(got[0], [2.0, 2.0])
    assert got[1] == 2 and run(k) == 0
    np.testing.assert_allclose(got[2:], [0.1 * 4.0, 0.1 * 2.0, 4.0])


def test_get_variable_shape_errors_name_the_variable_and_the_line():
    build_error(gc.ShapeError, lambda: gc.get_variable("a", ["x"]), "get_variable 'a'", "shape",
                "test_tf1_compat.py")
    build_error(gc.VariableScopeError, lambda: gc.get_variable("b"), "needs shape=")
    build_error(gc.VariableScopeError, lambda: gc.get_variable("c", [2], initializer=np.zeros(3, np.float32)),
                "initial value has shape (3,)")
    build_error(gc.VariableScopeError, lambda: gc.get_variable("d", [2], partitioner=lambda *a: None),
                "partitioned")
    assert gc.get_variable("e", 4).shape == (4,)  # one int, as TF1 takes it
    v = gc.get_variable("f", initializer=np.arange(3, dtype=np.float32))  # a value: its shape
    np.testing.assert_array_equal(run(v), [0, 1, 2])


def test_collections_with_a_scope_filter_and_local_variables():
    with gc.variable_scope("enc"):
        a = gc.get_variable("w", [1])
    with gc.variable_scope("dec"):
        b = gc.get_variable("w", [1])
        count = gc.get_local_variable("count", [], initializer=gc.zeros_initializer())
    assert gc.get_collection(gc.GraphKeys.TRAINABLE_VARIABLES, scope="enc") == [a]
    assert gc.get_collection(gc.GraphKeys.GLOBAL_VARIABLES) == [a, b]
    assert gc.local_variables() == [count] and not count.trainable
    gc.add_to_collection("mine", a)
    gc.add_to_collections(["mine", "other"], b)
    assert gc.get_collection("mine") == [a, b] and gc.get_collection("other") == [b]
    gc.get_collection_ref("mine").clear()
    assert gc.get_collection("mine") == []
    with gc.Session(device="reference") as sess:
        sess.run([gc.initialize_all_variables(), gc.local_variables_initializer()])
        assert sess.run(count) == 0.0


# --- gc.Module ------------------------------------------------------------------------------------------
class Dense(gc.Module):
    def __init__(self, n_in, n_out, name=None):
        super().__init__(name=name)
        with self.name_scope:
            self.w = gc.Variable(np.ones((n_in, n_out), np.float32), name="w")
            self.b = gc.Variable(np.zeros(n_out, np.float32), name="b")

    @gc.Module.with_name_scope
    def __call__(self, x):
        return gc.matmul(x, self.w) + self.b


class MLP(gc.Module):
    def __init__(self):
        super().__init__()
        with self.name_scope:
            self.layers = [Dense(3, 4), Dense(4, 2)]
            self.frozen = {"scale": gc.Variable(2.0, trainable=False, name="scale")}

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x * self.frozen["scale"]


def test_module_tracks_variables_and_submodules_and_scopes_their_names():
    model = MLP()
    assert model.name == "mlp"
    assert [v.var_name for v in model.trainable_variables] == ["mlp/dense/b", "mlp/dense/w", "mlp/dense_1/b",
                                                               "mlp/dense_1/w"]
    assert len(model.variables) == 5 and len(model.submodules) == 2
    y = model(np.ones((1, 3), np.float32))
    hidden = model.layers[0](np.ones((1, 3), np.float32))
    assert hidden.name.startswith("mlp/dense/")  # with_name_scope: the call's ops are in the module's scope
    assert not y.name.startswith("mlp/")  # MLP.__call__ is not decorated: the caller's scope
    np.testing.assert_allclose(run(y), [[24.0, 24.0]])
    other = MLP()
    assert other.trainable_variables[0].var_name == "mlp_1/dense/b"
    with pytest.raises(ValueError, match="not a valid module name"):
        gc.Module(name="1bad")


# --- TF1's initializers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make, mean, std", [
    (lambda: gc.random_normal_initializer(), 0.0, 1.0),  # TF1's stddev 1.0, not gc.init's 0.05
    (lambda: gc.truncated_normal_initializer(mean=1.0, stddev=0.5), 1.0, 0.5 * 0.8796),
    (lambda: gc.random_uniform_initializer(), 0.5, np.sqrt(1 / 12)),
    (lambda: gc.variance_scaling_initializer(scale=2.0, mode="fan_in", distribution="uniform"), 0.0,
     np.sqrt(2.0 / 200)),
    (lambda: gc.glorot_uniform_initializer(), 0.0, np.sqrt(2.0 / 300)),
    (lambda: gc.contrib.layers.variance_scaling_initializer(), 0.0, np.sqrt(2.0 / 200)),
])
def test_tf1_initializers_have_tf1s_defaults(make, mean, std):
    v = gc.get_variable("v", [200, 100], initializer=make(), dtype=gc.float64)
    value = run(v)
    assert abs(value.mean() - mean) < 0.05 * max(std, 0.2)
    assert abs(value.std() - std) < 0.05 * std


# --- TF1 signatures -------------------------------------------------------------------------------------
def test_tf1_signatures_positions_and_old_keywords():
    x = np.array([[1.0, 3.0, 2.0], [4.0, 0.0, 5.0]], np.float32)
    cases = {
        "argmax_dimension": (gc.argmax(x, dimension=1), np.argmax(x, 1)),
        "argmax_name_third": (gc.argmax(x, 1, "am"), np.argmax(x, 1)),
        "softmax_dim": (gc.nn.softmax(x, dim=0), np.exp(x) / np.exp(x).sum(0)),
        "expand_dims_dim": (gc.expand_dims(x, dim=0), x[None]),
        "squeeze_dims": (gc.squeeze(x[None], squeeze_dims=[0]), x),
        "concat_0x_order": (gc.concat(1, [x, x]), np.concatenate([x, x], 1)),
        "concat_dim": (gc.concat([x, x], concat_dim=0), np.concatenate([x, x], 0)),
        "l2_normalize_dim": (gc.nn.l2_normalize(x, dim=1), x / np.linalg.norm(x, axis=1, keepdims=True)),
        "moments_keep_dims": (gc.nn.moments(x, [1], keep_dims=True)[0], x.mean(1, keepdims=True)),
        "pad_name_fourth": (gc.pad(x, [[0, 0], [1, 0]], "CONSTANT", "p", 7), np.pad(x, [[0, 0], [1, 0]],
                                                                                  constant_values=7)),
        "gather_validate": (gc.gather(x, [1, 0], True), x[[1, 0]]),
        "matmul_adjoint": (gc.matmul(x, x, adjoint_b=True), x @ x.T),
        "sce_dim": (gc.nn.softmax_cross_entropy_with_logits(labels=np.eye(3, dtype=np.float32)[:2], logits=x,
                                                             dim=-1),
                    -np.log((np.exp(x) / np.exp(x).sum(1, keepdims=True))[[0, 1], [0, 1]])),
        "to_int64": (gc.to_int64(x), x.astype(np.int64)),
        "to_double": (gc.to_double(x), x.astype(np.float64)),
    }
    got = run({k: v[0] for k, v in cases.items()})
    for k, (_, want) in cases.items():
        np.testing.assert_allclose(got[k], want, rtol=1e-6, err_msg=k)
    assert cases["to_int64"][0].dtype is gc.int64 and cases["to_double"][0].dtype is gc.float64
    f = np.ones((2, 2, 3, 1), np.float32)
    image = np.ones((1, 4, 4, 3), np.float32)
    a, b = run([gc.nn.conv2d(image, filter=f, strides=[1, 1, 1, 1], padding="VALID"),
                gc.nn.conv2d(image, f, [1, 1, 1, 1], "VALID", True, "NHWC")])
    np.testing.assert_allclose(a, np.full((1, 3, 3, 1), 12.0))
    np.testing.assert_allclose(b, a)
    build_error(TypeError, lambda: gc.argmax(x, axis=1, dimension=1), "argmax", "dimension", "not both")
    build_error(TypeError, lambda: gc.nn.softmax(x, axis=0, dim=0), "softmax", "dim")


# --- shapes as TF1 takes them -----------------------------------------------------------------------------
def test_a_plain_int_is_a_shape_and_bad_shapes_name_the_op_and_line():
    batch_size = 4
    assert gc.placeholder(gc.float32, shape=(batch_size)).shape == (4,)
    assert gc.zeros(3).shape == (3,) and gc.random_normal(2).shape == (2,)
    build_error(gc.ShapeError, lambda: gc.placeholder(gc.float32, shape=(2, "x")), "placeholder", "'x'",
                "test_tf1_compat.py")
    build_error(gc.ShapeError, lambda: gc.placeholder(gc.float32, shape=2.5), "placeholder", "2.5")
    build_error(gc.ShapeError, lambda: gc.zeros((2, 2.5)), "2.5", "test_tf1_compat.py")
    build_error(gc.ShapeError, lambda: gc.ones("ab"), "cannot use 'ab' as a shape")


def test_a_feed_of_lower_rank_says_the_tf1_fix():
    x = gc.placeholder(gc.float32, (None,))
    m = gc.placeholder(gc.float32, (None, 3))
    with gc.Session(device="reference") as sess:
        with pytest.raises(gc.FeedError, match=r"shape \(\) for 'Placeholder:0'.*Feed \[x\] for the number x"):
            sess.run(x * 2, {x: 3.0})
        with pytest.raises(gc.FeedError, match=r"np.reshape\(value, \(1, 3\)\)"):
            sess.run(m * 2, {m: [1.0, 2.0, 3.0]})
        with pytest.raises(gc.FeedError) as info:
            sess.run(m * 2, {m: np.ones((2, 4))})  # not a lower rank: no hint
        assert "lower rank" not in str(info.value)
        np.testing.assert_allclose(sess.run(x * 2, {x: [3.0]}), [6.0])


# --- TF1 names ----------------------------------------------------------------------------------------------
def test_a_missing_tf1_name_says_which_feature_and_whether_it_is_planned():
    with pytest.raises(AttributeError) as info:
        gc.merge_all_summaries()
    assert isinstance(info.value, gc.GraphcError)
    assert "tf.merge_all_summaries" in str(info.value) and "gc.summary" in str(info.value)
    assert "test_tf1_compat.py" in str(info.value)
    build_error(AttributeError, lambda: gc.train.SummaryWriter, "tf.train.SummaryWriter", "renamed in TF 1.0")
    build_error(AttributeError, lambda: gc.py_func, "not planned")
    build_error(AttributeError, lambda: gc.contrib.slim, "graphc has no tf.contrib beyond")
    build_error(AttributeError, lambda: gc.contrib.rnn.NoSuchCell, "tf.contrib.rnn.NoSuchCell")
    build_error(AttributeError, lambda: gc.divde, "not a TF1 name graphc covers", "divide")
    build_error(AttributeError, lambda: gc.nn.relux, "tf.nn.relux", "relu")
    assert not hasattr(gc, "no_such_name") and not hasattr(gc.train, "no_such_name")


@pytest.mark.parametrize("key", sorted(MISSING))
def test_every_name_in_the_missing_table_is_really_missing(key):
    """A name graphc gains must leave the table (its entry would then never be shown)."""
    namespace = gc
    *parents, leaf = key.split(".")
    for part in parents:
        namespace = getattr(namespace, part)
    assert not hasattr(namespace, leaf), f"graphc has tf.{key} now: remove it from MISSING in graphc/compat.py"


def test_contrib_aliases_and_pre_1_0_names():
    assert gc.contrib.rnn.BasicLSTMCell is gc.nn.rnn_cell.BasicLSTMCell
    assert gc.contrib.rnn.static_rnn is gc.nn.static_rnn
    assert gc.initialize_all_variables is gc.global_variables_initializer
    assert gc.all_variables is gc.global_variables
    w = gc.get_variable("w", [100, 100], initializer=gc.contrib.layers.xavier_initializer())
    assert abs(run(w).std() - np.sqrt(2 / 200)) < 0.01


def test_device_is_recorded_and_checked_against_the_session():
    with gc.device("/gpu:0"):
        y = gc.constant(np.ones(2, np.float32)) * 2
    with gc.device("/cpu:0"):
        z = gc.constant(1.0) + 1
    assert y.op.device == "/gpu:0" and z.op.device == "/cpu:0"
    with gc.Session(device="reference") as sess:
        assert sess.run(z) == 2.0  # a CPU placement runs anywhere
        with pytest.raises(gc.GraphcError, match=r"placed on '/gpu:0'.*allow_soft_placement"):
            sess.run(y)
    config = gc.ConfigProto(allow_soft_placement=True, log_device_placement=False)
    config.gpu_options.allow_growth = True
    with gc.Session(device="reference", config=config) as sess:
        np.testing.assert_allclose(sess.run(y), [2.0, 2.0])
    build_error(gc.GraphcError, lambda: gc.device("/tpu:0").__enter__(), "names no CPU or GPU")
    build_error(gc.GraphcError, lambda: gc.device(lambda op: "/cpu:0").__enter__(), "device function")
    with gc.device("/job:localhost/replica:0/task:0"):  # a job alone places nothing
        w = gc.constant(1.0)
    assert w.op.device == "" and gc.Session(device="reference").run(w) == 1.0


def test_app_run_and_flags_in_a_fresh_process(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        "import graphc as tf\n"
        "flags = tf.app.flags\n"
        "flags.DEFINE_integer('steps', 5, 'number of steps')\n"
        "flags.DEFINE_float('lr', 0.1, 'rate')\n"
        "tf.flags.DEFINE_boolean('fast', False, 'go fast')\n"
        "flags.DEFINE_string('name', 'x', 'a name')\n"
        "FLAGS = flags.FLAGS\n"
        "tf.logging.set_verbosity(tf.logging.INFO)\n"
        "def main(argv):\n"
        "    print(FLAGS.steps, FLAGS.lr, FLAGS.fast, FLAGS.name, argv[1:])\n"
        "    return 3\n"
        "if __name__ == '__main__':\n"
        "    tf.app.run()\n")
    done = subprocess.run([sys.executable, str(script), "--steps", "7", "--fast", "--name=y", "rest"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip() == "7 0.1 True y ['rest']"


def test_gfile_on_local_files(tmp_path):
    d = tmp_path / "a" / "b"
    gc.gfile.MakeDirs(str(d))
    assert gc.gfile.Exists(str(d)) and gc.gfile.IsDirectory(str(d))
    with gc.gfile.GFile(str(d / "f.txt"), "w") as f:
        f.write("hi")
    assert gc.gfile.ListDirectory(str(d)) == ["f.txt"] and gc.gfile.Glob(str(d / "*.txt"))
    gc.gfile.DeleteRecursively(str(tmp_path / "a"))
    assert not gc.gfile.Exists(str(d))


def test_numpy_bounds_of_random_draws_keep_the_draws_dtype():
    stddev = 1.0 / np.sqrt(16)  # an np.float64, as TF1 programs compute it
    assert gc.truncated_normal([2, 2], stddev=stddev).dtype is gc.float32
    assert gc.random_normal([2], mean=np.float64(1.0), stddev=stddev).dtype is gc.float32
    assert gc.random_uniform([2], np.float64(-0.5), np.float64(0.5)).dtype is gc.float32
