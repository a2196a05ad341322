"""Writes the ONNX files that tests/onnx/test_exported_models.py imports, with the outputs
that their source framework computes (run in the bench environment, which has torch):

    .venv-bench/bin/python tests/onnx/models/make_models.py

Each model is small (the files live in the repository): a LeNet-style CNN and an LSTM
classifier exported with ``torch.onnx.export``, and, where skl2onnx installs, a scikit-learn
pipeline (scaler, PCA, logistic regression). Each ``NAME.onnx`` comes with ``NAME.npz``
holding the inputs and the source framework's outputs (plain arrays: np.load with
allow_pickle=False reads it)."""
from __future__ import annotations

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _save(name: str, **arrays) -> None:
    np.savez(os.path.join(HERE, f"{name}.npz"), **arrays)
    print(f"wrote {name}.onnx and {name}.npz ({', '.join(f'{k}{v.shape}' for k, v in arrays.items())})")


def torch_models() -> None:
    import torch
    from torch import nn
    torch.manual_seed(0)

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.bn = nn.BatchNorm2d(16)
            self.fc1 = nn.Linear(16 * 5 * 5, 64)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.nn.functional.avg_pool2d(torch.relu(self.bn(self.conv2(x))), 2)
            x = torch.flatten(x, 1)
            return torch.log_softmax(self.fc2(torch.tanh(self.fc1(x))), dim=1)

    class LSTMClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(input_size=8, hidden_size=16, num_layers=1, batch_first=True)
            self.head = nn.Linear(16, 4)

        def forward(self, x):
            out, (h, c) = self.lstm(x)
            return self.head(out[:, -1, :]), h

    for name, module, example, names, dynamic in [
            ("torch_lenet", LeNet(), torch.randn(3, 1, 28, 28), (["images"], ["log_probs"]),
             {"images": {0: "batch"}, "log_probs": {0: "batch"}}),
            ("torch_lstm", LSTMClassifier(), torch.randn(2, 7, 8), (["sequence"], ["scores", "h_n"]), None)]:
        module.eval()
        with torch.no_grad():
            # a trained-looking BatchNorm: statistics that are not the identity
            for m in module.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
            expected = module(example)
        expected = expected if isinstance(expected, tuple) else (expected,)
        torch.onnx.export(module, (example,), os.path.join(HERE, f"{name}.onnx"), input_names=names[0],
                          output_names=names[1], dynamic_axes=dynamic, opset_version=17, dynamo=False)
        _save(name, **{names[0][0]: example.numpy()},
              **{n: e.numpy() for n, e in zip(names[1], expected)})


def sklearn_model() -> None:
    try:
        from skl2onnx import to_onnx
    except ImportError:
        print("skl2onnx is not installed: no scikit-learn model", file=sys.stderr)
        return
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    pipe = make_pipeline(StandardScaler(), PCA(16, random_state=0), LogisticRegression(max_iter=500))
    pipe.fit(x[:1200], y[:1200])
    onx = to_onnx(pipe, x[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options={"zipmap": False})
    with open(os.path.join(HERE, "sklearn_pipeline.onnx"), "wb") as f:
        f.write(onx.SerializeToString())
    sample = x[1200:1232]
    _save("sklearn_pipeline", X=sample, label=pipe.predict(sample).astype(np.int64),
          probabilities=pipe.predict_proba(sample).astype(np.float32))


if __name__ == "__main__":
    torch_models()
    sklearn_model()
