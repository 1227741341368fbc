"""ONNX import: graphs built with onnx.helper in the test, compared with onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, random_dense

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from nnsim.errors import NnsimError  # noqa: E402
from nnsim.interop import export_onnx, load_model  # noqa: E402

RNG = np.random.default_rng(11)


def save(path, nodes, initializers, input_shape, output_width, opset=17):
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", output_width])],
        initializer=[numpy_helper.from_array(array, name) for name, array in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def runtime(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def one_line_error(path) -> str:
    with pytest.raises(NnsimError) as error:
        load_model(path)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_gemm_layers_honour_alpha_beta_and_trans_b(tmp_path):
    (w1, b1), (w2, b2) = random_dense([6, 5, 3], seed=1)
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], name="fc1", alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["h"], ["r"], name="relu1"),
        helper.make_node("Gemm", ["r", "W2t", "B2"], ["z"], name="fc2", transB=1),
        helper.make_node("Softmax", ["z"], ["y"], name="softmax"),
    ]
    path = save(
        tmp_path / "gemm.onnx",
        nodes,
        {"W1": w1, "B1": b1, "W2t": np.ascontiguousarray(w2.T), "B2": b2.reshape(1, 3)},
        ["N", 6],
        3,
    )
    model = load_model(path)
    assert [(layer.name, layer.activation) for layer in model.layers] == [
        ("fc1", "relu"),
        ("fc2", "softmax"),
    ]
    x = RNG.standard_normal((8, 6)).astype(np.float32)
    assert_close(model.forward(x), runtime(path, x))


def test_matmul_add_in_either_order_through_flatten_and_identity(tmp_path):
    (w1, b1), (w2, b2), (w3, _) = random_dense([16, 7, 5, 4], seed=2)
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"], name="flatten", axis=1),
        helper.make_node("MatMul", ["flat", "W1"], ["m1"], name="mm1"),
        helper.make_node("Add", ["m1", "B1"], ["a1"], name="layer1"),
        helper.make_node("Relu", ["a1"], ["r1"], name="relu1"),
        helper.make_node("MatMul", ["r1", "W2"], ["m2"], name="mm2"),
        helper.make_node("Add", ["B2", "m2"], ["a2"], name="layer2"),  # bias first
        helper.make_node("Identity", ["a2"], ["i2"], name="same"),
        helper.make_node("Relu", ["i2"], ["r2"], name="relu2"),
        helper.make_node("MatMul", ["r2", "W3"], ["y"], name="last"),  # no bias: zeros
    ]
    path = save(
        tmp_path / "matmul.onnx",
        nodes,
        {"W1": w1, "B1": b1, "W2": w2, "B2": b2, "W3": w3},
        ["N", 1, 4, 4],
        4,
    )
    model = load_model(path)
    assert model.sizes == (16, 7, 5, 4)
    assert [layer.name for layer in model.layers] == ["layer1", "layer2", "last"]
    assert [layer.activation for layer in model.layers] == ["relu", "relu", "linear"]
    x = RNG.standard_normal((5, 1, 4, 4)).astype(np.float32)
    assert_close(model.forward(x.reshape(5, 16)), runtime(path, x))


def test_an_exported_network_imports_and_matches_onnxruntime(tmp_path):
    from conftest import make_idx_dataset, trained_sim

    from nnsim.state import capture

    sim = trained_sim(make_idx_dataset(tmp_path / "toy"), [10, 10], seed=9)
    path = export_onnx(*capture(sim), tmp_path / "nnsim.onnx")
    model = load_model(path)
    assert [(layer.name, layer.activation) for layer in model.layers] == [
        ("dense1", "relu"),
        ("dense2", "softmax"),
    ]
    x = RNG.uniform(-1, 1, (6, 784)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert_close(model.forward(x), session.run(None, {"images": x})[0])


def test_an_unsupported_op_is_named_with_its_node(tmp_path):
    weights = RNG.standard_normal((1, 1, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "K"], ["y"], name="conv1")]
    path = save(tmp_path / "conv.onnx", nodes, {"K": weights}, ["N", 1, 5, 5], 9)
    assert one_line_error(path) == (
        f"'{path}': ONNX node 'conv1' is a Conv; nnsim imports dense networks only "
        "(Gemm, MatMul+Add, Relu, Softmax, Flatten, Identity)"
    )


def test_external_data_is_refused(tmp_path):
    ((w, b),) = random_dense([4, 3])
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="fc")]
    path = save(tmp_path / "external.onnx", nodes, {"W": w, "B": b}, ["N", 4], 3)
    model = onnx.load(str(path))
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    assert "initializer 'W' is stored in an external file" in one_line_error(path)


def test_shapes_that_do_not_chain_and_weights_that_are_not_constants(tmp_path):
    ((w, b),) = random_dense([4, 3])
    wrong = save(
        tmp_path / "wrong.onnx",
        [helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="fc")],
        {"W": w, "B": b},
        ["N", 5],
        3,
    )
    assert "has 5 values per sample but the first layer takes 4" in one_line_error(wrong)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "computed",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    )
    computed = tmp_path / "computed.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(computed))
    assert "2 inputs" in one_line_error(computed)


def test_damaged_onnx_files_are_one_line(tmp_path):
    ((w, b),) = random_dense([4, 3])
    good = save(
        tmp_path / "good.onnx",
        [helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="fc")],
        {"W": w, "B": b},
        ["N", 4],
        3,
    )
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good.read_bytes()[:-20])
    assert "truncated.onnx" in one_line_error(truncated)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff" * 64)
    assert "is not an ONNX model" in one_line_error(garbage)
    nan = save(
        tmp_path / "nan.onnx",
        [helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="fc")],
        {"W": np.full((4, 3), np.nan, np.float32), "B": b},
        ["N", 4],
        3,
    )
    assert "weights hold NaN" in one_line_error(nan)
    huge = tmp_path / "huge.onnx"
    tensor = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[1 << 16, 1 << 16])
    tensor.raw_data = b"\0" * 16  # declares 16 GiB, holds 16 bytes
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")],
        "huge",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1 << 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1 << 16])],
        initializer=[tensor],
    )
    huge.write_bytes(helper.make_model(graph).SerializeToString())
    assert "is too small for the declared shape" in one_line_error(huge)
