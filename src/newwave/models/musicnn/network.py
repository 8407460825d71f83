"""musicnn (Pons & Serra, 2019) in PyTorch, loaded from the original TF1 checkpoints.

Front end: musically motivated convolutions over the log-mel patch — two timbral
(7x38, 7x67 over time x frequency) and three temporal (128x1, 64x1, 32x1) filter
banks, each max-pooled over frequency. Mid end: three 1-d convolutions (kernel 7)
with residual connections. Back end: max- and mean-pooling over time, *interleaved*
(TF flattened a [features, 2] tensor), batch norm, dense 200 + ReLU, batch norm (the
penultimate embedding), dense 50, sigmoid. Every block is conv -> ReLU -> batch norm;
every batch norm uses eps 1e-3 (TF's default).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from newwave.models.musicnn.checkpoint import Checkpoint

BN_EPS = 1e-3


def _same_pad(kernel: int) -> tuple[int, int]:
    """TF's 'same' padding: the extra row goes after."""
    return (kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2


class Musicnn(nn.Module):
    def __init__(self, num_classes: int = 50, midend_filters: int = 64,
                 backend_units: int = 200) -> None:
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList([nn.Conv2d(1, 204, (7, 38)), nn.Conv2d(1, 204, (7, 67))])
        self.timbral_bn = nn.ModuleList([nn.BatchNorm2d(204, eps=BN_EPS) for _ in range(2)])
        self.temporal_kernels = (128, 64, 32)
        self.temporal = nn.ModuleList([nn.Conv2d(1, 51, (k, 1)) for k in self.temporal_kernels])
        self.temporal_bn = nn.ModuleList([nn.BatchNorm2d(51, eps=BN_EPS) for _ in range(3)])
        frontend_features = 2 * 204 + 3 * 51
        self.midend = nn.ModuleList([nn.Conv1d(frontend_features, midend_filters, 7),
                                     nn.Conv1d(midend_filters, midend_filters, 7),
                                     nn.Conv1d(midend_filters, midend_filters, 7)])
        self.midend_bn = nn.ModuleList([nn.BatchNorm1d(midend_filters, eps=BN_EPS)
                                        for _ in range(3)])
        pooled = 2 * (frontend_features + 3 * midend_filters)
        self.pool_bn = nn.BatchNorm1d(pooled, eps=BN_EPS)
        self.dense = nn.Linear(pooled, backend_units)
        self.dense_bn = nn.BatchNorm1d(backend_units, eps=BN_EPS)
        self.output = nn.Linear(backend_units, num_classes)

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[batch, 187, 96]`` log-mel patches -> (tag probabilities ``[batch, 50]``,
        penultimate embeddings ``[batch, 200]``)."""
        x = self.input_bn(patches.unsqueeze(1))  # [B, 1, T, F]
        frontend = []
        timbral_input = F.pad(x, (0, 0, 3, 3))
        for conv, bn in zip(self.timbral, self.timbral_bn):
            frontend.append(bn(F.relu(conv(timbral_input))).amax(dim=3))  # [B, C, T]
        for kernel, conv, bn in zip(self.temporal_kernels, self.temporal, self.temporal_bn):
            padded = F.pad(x, (0, 0, *_same_pad(kernel)))
            frontend.append(bn(F.relu(conv(padded))).amax(dim=3))
        features = [torch.cat(frontend, dim=1)]  # [B, 561, T]
        hidden = features[0]
        for i, (conv, bn) in enumerate(zip(self.midend, self.midend_bn)):
            out = bn(F.relu(conv(F.pad(hidden, (3, 3)))))
            hidden = out if i == 0 else out + hidden
            features.append(hidden)
        stacked = torch.cat(features, dim=1)  # [B, 753, T]
        pooled = torch.stack([stacked.amax(dim=2), stacked.mean(dim=2)], dim=2).flatten(1)
        embedding = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        return torch.sigmoid(self.output(embedding)), embedding

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Musicnn:
        """Build the network and copy every weight from a musicnn TF1 checkpoint."""
        model = cls()
        tensors = checkpoint.read_all()

        def conv(module: nn.Module, name: str) -> None:
            kernel = tensors[f"{name}/kernel"]  # TF: [kh, kw, in, out]
            weight = kernel.transpose(3, 2, 0, 1)  # torch 2-d: [out, in, kh, kw]
            if isinstance(module, nn.Conv1d):  # kw spans all input features
                weight = kernel[:, :, 0, :].transpose(2, 1, 0)  # [out, features, k]
            _copy(module.weight, weight)
            _copy(module.bias, tensors[f"{name}/bias"])

        def batch_norm(module: nn.Module, name: str) -> None:
            _copy(module.weight, tensors[f"{name}/gamma"])
            _copy(module.bias, tensors[f"{name}/beta"])
            _copy(module.running_mean, tensors[f"{name}/moving_mean"])
            _copy(module.running_var, tensors[f"{name}/moving_variance"])

        # TF named layers in creation order: conv2d, conv2d_1, ...; batch_normalization, _1, ...
        convs = [*model.timbral, *model.temporal, *model.midend]
        bns = [model.input_bn, *model.timbral_bn, *model.temporal_bn, *model.midend_bn,
               model.pool_bn, model.dense_bn]
        for i, module in enumerate(convs):
            conv(module, "conv2d" if i == 0 else f"conv2d_{i}")
        for i, module in enumerate(bns):
            batch_norm(module, "batch_normalization" if i == 0 else f"batch_normalization_{i}")
        _copy(model.dense.weight, tensors["dense/kernel"].T)
        _copy(model.dense.bias, tensors["dense/bias"])
        _copy(model.output.weight, tensors["dense_1/kernel"].T)
        _copy(model.output.bias, tensors["dense_1/bias"])
        return model.eval()


def _copy(target: torch.Tensor, source: np.ndarray) -> None:
    if tuple(target.shape) != source.shape:
        raise ValueError(f"checkpoint tensor of shape {source.shape} does not fit "
                         f"{tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(torch.from_numpy(np.ascontiguousarray(source)))
